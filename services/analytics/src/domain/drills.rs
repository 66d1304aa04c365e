//! Drill impact: per drilled criterion, the mean score of its skill before (in the drilled
//! evaluation) and after (in the drill session). Skill against skill, since a grade event
//! carries skill scores; when the drilled evaluation is no longer current (a regrade replaced
//! it), the criterion's own score, which the drill recorded, stands for before.

use std::collections::BTreeMap;

use super::{Drill, ratio};

/// One graded drill session: its drill and its skill scores (thousandths), and the skill
/// scores of the drilled evaluation when it is still current.
pub struct DrillOutcome<'a> {
    pub drill: &'a Drill,
    pub skills: &'a [(String, i64)],
    pub drilled_skills: Option<&'a [(String, i64)]>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impact {
    pub criterion: String,
    pub skill: String,
    pub drills: i64,
    pub mean_before: f64,
    pub mean_after: f64,
}

impl Impact {
    pub fn lift(&self) -> f64 {
        self.mean_after - self.mean_before
    }
}

/// Most drilled criterion first (then by name). A drill whose session did not score the
/// skill (the rubric changed) says nothing about it and is left out.
pub fn impact(outcomes: &[DrillOutcome<'_>]) -> Vec<Impact> {
    let mut sums: BTreeMap<(&str, &str), (i64, i64, i64)> = BTreeMap::new();
    for o in outcomes {
        let Some((_, after)) = o.skills.iter().find(|(s, _)| *s == o.drill.skill) else {
            continue;
        };
        let before = o
            .drilled_skills
            .and_then(|k| k.iter().find(|(s, _)| *s == o.drill.skill))
            .map_or(o.drill.before_milli, |(_, score)| *score);
        let e = sums
            .entry((o.drill.criterion.as_str(), o.drill.skill.as_str()))
            .or_default();
        e.0 += 1;
        e.1 += before;
        e.2 += after;
    }
    let mut out: Vec<Impact> = sums
        .into_iter()
        .map(|((criterion, skill), (n, before, after))| Impact {
            criterion: criterion.to_owned(),
            skill: skill.to_owned(),
            drills: n,
            mean_before: ratio(before as f64 / 1000.0, n),
            mean_after: ratio(after as f64 / 1000.0, n),
        })
        .collect();
    out.sort_by(|a, b| b.drills.cmp(&a.drills).then(a.criterion.cmp(&b.criterion)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drill(criterion: &str, skill: &str, before: i64) -> Drill {
        Drill {
            evaluation: "organizations/o/evaluations/e".into(),
            criterion: criterion.into(),
            skill: skill.into(),
            before_milli: before,
        }
    }

    #[test]
    fn means_before_and_after_per_criterion() {
        let (a, b) = (
            drill("objections", "objection_handling", 20_000),
            drill("objections", "objection_handling", 40_000),
        );
        let c = drill("close", "closing", 50_000);
        let s1 = vec![("objection_handling".to_owned(), 60_000)];
        let s2 = vec![
            ("objection_handling".to_owned(), 80_000),
            ("rapport".to_owned(), 10_000),
        ];
        let s3 = vec![("rapport".to_owned(), 90_000)];
        // a's drilled evaluation is current: its skill score (10) is before, not a's 20.
        let drilled = vec![("objection_handling".to_owned(), 10_000)];
        let got = impact(&[
            DrillOutcome {
                drill: &a,
                skills: &s1,
                drilled_skills: Some(&drilled),
            },
            DrillOutcome {
                drill: &b,
                skills: &s2,
                drilled_skills: None,
            },
            DrillOutcome {
                drill: &c,
                skills: &s3,
                drilled_skills: None,
            },
        ]);
        assert_eq!(got.len(), 1, "a drill without its skill scored is left out");
        assert_eq!(got[0].drills, 2);
        assert!((got[0].mean_before - 25.0).abs() < 1e-9);
        assert!((got[0].mean_after - 70.0).abs() < 1e-9);
        assert!((got[0].lift() - 45.0).abs() < 1e-9);
    }
}
