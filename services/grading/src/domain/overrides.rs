//! Manager overrides of an evaluation's scores: checking a request against the evaluation's
//! criteria, and the effective numbers that follow from the overrides. Plain Rust.

/// Longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// More criterion overrides than any rubric has criteria is a malformed request.
pub const MAX_CRITERION_OVERRIDES: usize = 100;

/// One criterion as graded, with the override in force (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub id: String,
    pub skill: String,
    /// The grader's score on [scale_min, scale_max].
    pub score: f64,
    pub scale_min: i32,
    pub scale_max: i32,
    pub weight: f64,
    pub override_score: Option<f64>,
}

/// A score on [scale_min, scale_max] mapped linearly onto 0–100.
pub fn normalized(score: f64, scale_min: i32, scale_max: i32) -> f64 {
    let span = f64::from(scale_max) - f64::from(scale_min);
    if span <= 0.0 {
        return 0.0;
    }
    ((score - f64::from(scale_min)) / span * 100.0).clamp(0.0, 100.0)
}

impl Criterion {
    fn normalized(&self, score: f64) -> f64 {
        normalized(score, self.scale_min, self.scale_max)
    }

    /// The normalized change the override makes (0 without one).
    fn shift(&self) -> f64 {
        self.override_score
            .map_or(0.0, |o| self.normalized(o) - self.normalized(self.score))
    }
}

/// What a request asks to change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    pub overall: Option<f64>,
    pub criteria: Vec<(String, f64)>,
    pub reason: String,
}

/// Checks `req` against the evaluation's criteria; each problem is (field, description).
pub fn check(req: &Request, criteria: &[Criterion]) -> Vec<(String, String)> {
    let mut bad: Vec<(String, String)> = Vec::new();
    let add = |bad: &mut Vec<(String, String)>, f: String, d: String| bad.push((f, d));
    if req.overall.is_none() && req.criteria.is_empty() {
        add(
            &mut bad,
            "criterion_overrides".into(),
            "set overall_score, criterion_overrides or both".into(),
        );
    }
    if let Some(o) = req.overall
        && !(o.is_finite() && (0.0..=100.0).contains(&o))
    {
        add(&mut bad, "overall_score".into(), "must be 0 to 100".into());
    }
    if req.criteria.len() > MAX_CRITERION_OVERRIDES {
        add(
            &mut bad,
            "criterion_overrides".into(),
            "at most 100 entries".into(),
        );
    }
    for (i, (id, score)) in req.criteria.iter().enumerate() {
        let field = format!("criterion_overrides[{i}]");
        if req.criteria[..i].iter().any(|(other, _)| other == id) {
            add(
                &mut bad,
                format!("{field}.criterion_id"),
                "names a criterion twice".into(),
            );
            continue;
        }
        match criteria.iter().find(|c| &c.id == id) {
            None => add(
                &mut bad,
                format!("{field}.criterion_id"),
                "is not a criterion of this evaluation".into(),
            ),
            Some(c) => {
                if !(score.is_finite()
                    && *score >= f64::from(c.scale_min)
                    && *score <= f64::from(c.scale_max))
                {
                    add(
                        &mut bad,
                        format!("{field}.score"),
                        format!(
                            "must be on the criterion's scale, {} to {}",
                            c.scale_min, c.scale_max
                        ),
                    );
                }
            }
        }
    }
    check_reason(&req.reason, &mut bad);
    bad
}

/// What a clear request asks to remove.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clear {
    pub criteria: Vec<String>,
    pub overall: bool,
    pub reason: String,
}

/// Checks a clear request: the malformed parts as (field, description), then the fields
/// named that carry no override (nothing to clear there).
pub fn check_clear(
    req: &Clear,
    criteria: &[Criterion],
    overall_overridden: bool,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut bad: Vec<(String, String)> = Vec::new();
    let mut bare: Vec<String> = Vec::new();
    if !req.overall && req.criteria.is_empty() {
        bad.push((
            "criterion_ids".into(),
            "name a criterion, set overall, or both".into(),
        ));
    }
    if req.criteria.len() > MAX_CRITERION_OVERRIDES {
        bad.push(("criterion_ids".into(), "at most 100 entries".into()));
    }
    for (i, id) in req.criteria.iter().enumerate() {
        let field = format!("criterion_ids[{i}]");
        if req.criteria[..i].contains(id) {
            bad.push((field, "names a criterion twice".into()));
            continue;
        }
        match criteria.iter().find(|c| &c.id == id) {
            None => bad.push((field, "is not a criterion of this evaluation".into())),
            Some(c) if c.override_score.is_none() => bare.push(field),
            Some(_) => {}
        }
    }
    if req.overall && !overall_overridden {
        bare.push("overall".into());
    }
    check_reason(&req.reason, &mut bad);
    (bad, bare)
}

fn check_reason(reason: &str, bad: &mut Vec<(String, String)>) {
    let reason = reason.trim();
    if reason.is_empty() {
        bad.push(("reason".into(), "is required".into()));
    } else if reason.chars().count() > MAX_REASON_CHARS {
        bad.push(("reason".into(), "at most 1000 characters".into()));
    }
}

/// The effective overall score: the overall override if set, else the grader's overall moved
/// by each overridden criterion's normalized change, weighted as the overall weighs it.
pub fn effective_overall(grader_overall: f64, criteria: &[Criterion], overall: Option<f64>) -> f64 {
    if let Some(o) = overall {
        return o;
    }
    let total: f64 = criteria.iter().map(|c| c.weight.max(0.0)).sum();
    if total <= 0.0 {
        return grader_overall;
    }
    let shift: f64 = criteria
        .iter()
        .map(|c| c.weight.max(0.0) * c.shift())
        .sum::<f64>()
        / total;
    round2((grader_overall + shift).clamp(0.0, 100.0))
}

/// The effective skill scores: each grader skill score moved like the overall, over the
/// criteria of that skill.
pub fn effective_skills(grader: &[(String, f64)], criteria: &[Criterion]) -> Vec<(String, f64)> {
    grader
        .iter()
        .map(|(skill, score)| {
            let of: Vec<&Criterion> = criteria.iter().filter(|c| &c.skill == skill).collect();
            let total: f64 = of.iter().map(|c| c.weight.max(0.0)).sum();
            if total <= 0.0 {
                return (skill.clone(), *score);
            }
            let shift: f64 = of
                .iter()
                .map(|c| c.weight.max(0.0) * c.shift())
                .sum::<f64>()
                / total;
            (skill.clone(), round2((score + shift).clamp(0.0, 100.0)))
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(id: &str, skill: &str, score: f64, weight: f64) -> Criterion {
        Criterion {
            id: id.into(),
            skill: skill.into(),
            score,
            scale_min: 1,
            scale_max: 5,
            weight,
            override_score: None,
        }
    }

    #[test]
    fn criterion_override_moves_overall_by_its_weighted_share() {
        // Two criteria weighted 1 and 3; the first goes from 1 (0 %) to 5 (100 %).
        let mut cs = vec![
            crit("a", "rapport", 1.0, 1.0),
            crit("b", "closing", 3.0, 3.0),
        ];
        let grader = 37.5;
        assert_eq!(effective_overall(grader, &cs, None), grader);
        cs[0].override_score = Some(5.0);
        assert_eq!(effective_overall(grader, &cs, None), 62.5);
        assert_eq!(effective_overall(grader, &cs, Some(10.0)), 10.0);
        let skills = effective_skills(&[("rapport".into(), 0.0), ("closing".into(), 50.0)], &cs);
        assert_eq!(
            skills,
            vec![("rapport".into(), 100.0), ("closing".into(), 50.0)]
        );
    }

    #[test]
    fn clear_tells_malformed_from_nothing_to_clear() {
        let mut cs = vec![
            crit("a", "rapport", 1.0, 1.0),
            crit("b", "closing", 2.0, 1.0),
        ];
        cs[0].override_score = Some(4.0);
        let req = |criteria: &[&str], overall: bool, reason: &str| Clear {
            criteria: criteria.iter().map(|c| (*c).to_owned()).collect(),
            overall,
            reason: reason.into(),
        };
        assert_eq!(
            check_clear(&req(&["a"], false, "ok"), &cs, false),
            (vec![], vec![])
        );
        let (bad, bare) = check_clear(&req(&["a", "b"], true, "ok"), &cs, false);
        assert!(bad.is_empty());
        assert_eq!(bare, ["criterion_ids[1]", "overall"]);
        let (bad, _) = check_clear(&req(&["zzz", "a", "a"], false, " "), &cs, true);
        let fields: Vec<&str> = bad.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["criterion_ids[0]", "criterion_ids[2]", "reason"]);
        let (bad, _) = check_clear(&req(&[], false, "ok"), &cs, true);
        assert_eq!(bad.len(), 1);
        assert_eq!(normalized(3.0, 1, 5), 50.0);
    }

    #[test]
    fn check_refuses_what_the_rubric_does_not_allow() {
        let cs = vec![crit("a", "rapport", 1.0, 1.0)];
        let ok = Request {
            overall: None,
            criteria: vec![("a".into(), 4.0)],
            reason: "listened well".into(),
        };
        assert!(check(&ok, &cs).is_empty());
        let fields = |r: &Request| {
            check(r, &cs)
                .into_iter()
                .map(|(f, _)| f)
                .collect::<Vec<_>>()
        };
        let mut r = ok.clone();
        r.criteria = vec![("a".into(), 6.0)];
        assert_eq!(fields(&r), ["criterion_overrides[0].score"]);
        r.criteria = vec![("zzz".into(), 3.0)];
        assert_eq!(fields(&r), ["criterion_overrides[0].criterion_id"]);
        r.criteria = vec![("a".into(), 3.0), ("a".into(), 2.0)];
        assert_eq!(fields(&r), ["criterion_overrides[1].criterion_id"]);
        r.criteria.clear();
        assert_eq!(fields(&r), ["criterion_overrides"]);
        r.overall = Some(f64::NAN);
        r.reason = " ".into();
        assert_eq!(fields(&r), ["overall_score", "reason"]);
        r.overall = Some(100.0);
        r.reason = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(fields(&r), ["reason"]);
    }
}
