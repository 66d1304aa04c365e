//! Drill impact: per drilled criterion, its score before (in the drilled evaluation), in the
//! drill session, and in the trainee's next practice session of the scenario.
//!
//! The criterion's own score is compared when the drill session's grade carries criterion
//! scores. A drill graded before they reached analytics is compared by the criterion's skill
//! instead, and reported on a row of its own (basis `Skill`), so no mean mixes the two.
//! When the drilled evaluation is no longer current (a regrade replaced it), the criterion's
//! score the drill recorded stands for before.

use std::collections::BTreeMap;

use super::{Drill, Fact, Grade, ratio};

/// What a drill is compared by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    Criterion,
    Skill,
}

/// One graded drill session with the grades it is compared against.
pub struct DrillOutcome<'a> {
    pub drill: &'a Drill,
    /// The drill session's grade.
    pub grade: &'a Grade,
    /// The drilled evaluation's grade while it is still its session's current grade.
    pub drilled: Option<&'a Grade>,
    /// The grade of the trainee's next practice session of the scenario ([`next_practice`]).
    pub next: Option<&'a Grade>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Impact {
    pub criterion: String,
    pub skill: String,
    pub basis: Basis,
    pub drills: i64,
    pub mean_before: f64,
    pub mean_after: f64,
    /// Drills followed by a graded next practice session.
    pub next_practice: i64,
    pub mean_next: f64,
    /// Mean of (next - before) over the drills followed by one.
    pub next_lift: f64,
}

impl Impact {
    pub fn lift(&self) -> f64 {
        self.mean_after - self.mean_before
    }
}

fn score_of(g: &Grade, drill: &Drill, basis: Basis) -> Option<i64> {
    let (list, key) = match basis {
        Basis::Criterion => (&g.criteria, &drill.criterion),
        Basis::Skill => (&g.skills, &drill.skill),
    };
    list.iter().find(|(k, _)| k == key).map(|(_, s)| *s)
}

/// The first practice session among `candidates` (graded, neither a drill nor a real call)
/// of the drill's trainee and scenario that started after the drill session did.
pub fn next_practice<'a>(drill: &Fact, candidates: &'a [Fact]) -> Option<&'a Fact> {
    let start = drill.start_us?;
    candidates
        .iter()
        .filter(|f| {
            f.grade.is_some()
                && f.origin.drill.is_none()
                && !f.origin.real_call
                && f.trainee == drill.trainee
                && f.scenario == drill.scenario
                && f.start_us.is_some_and(|s| s > start)
        })
        .min_by(|a, b| (a.start_us, &a.session).cmp(&(b.start_us, &b.session)))
}

#[derive(Default)]
struct Sums {
    n: i64,
    before: i64,
    after: i64,
    next_n: i64,
    next: i64,
    next_minus_before: i64,
}

/// Most drilled criterion first (then by name and basis). A drill whose session did not
/// score the criterion's skill either (the rubric changed) says nothing and is left out.
pub fn impact(outcomes: &[DrillOutcome<'_>]) -> Vec<Impact> {
    let mut sums: BTreeMap<(&str, &str, Basis), Sums> = BTreeMap::new();
    for o in outcomes {
        let basis = if score_of(o.grade, o.drill, Basis::Criterion).is_some() {
            Basis::Criterion
        } else {
            Basis::Skill
        };
        let Some(after) = score_of(o.grade, o.drill, basis) else {
            continue;
        };
        let before = o
            .drilled
            .and_then(|g| score_of(g, o.drill, basis))
            .unwrap_or(o.drill.before_milli);
        let e = sums
            .entry((o.drill.criterion.as_str(), o.drill.skill.as_str(), basis))
            .or_default();
        e.n += 1;
        e.before += before;
        e.after += after;
        if let Some(next) = o.next.and_then(|g| score_of(g, o.drill, basis)) {
            e.next_n += 1;
            e.next += next;
            e.next_minus_before += next - before;
        }
    }
    let mean = |sum: i64, n: i64| ratio(sum as f64 / 1000.0, n);
    let mut out: Vec<Impact> = sums
        .into_iter()
        .map(|((criterion, skill, basis), s)| Impact {
            criterion: criterion.to_owned(),
            skill: skill.to_owned(),
            basis,
            drills: s.n,
            mean_before: mean(s.before, s.n),
            mean_after: mean(s.after, s.n),
            next_practice: s.next_n,
            mean_next: mean(s.next, s.next_n),
            next_lift: mean(s.next_minus_before, s.next_n),
        })
        .collect();
    out.sort_by(|a, b| {
        b.drills
            .cmp(&a.drills)
            .then(a.criterion.cmp(&b.criterion))
            .then(a.basis.cmp(&b.basis))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::Origin;
    use super::*;

    fn drill(criterion: &str, skill: &str, before: i64) -> Drill {
        Drill {
            evaluation: "organizations/o/evaluations/e".into(),
            criterion: criterion.into(),
            skill: skill.into(),
            before_milli: before,
        }
    }

    fn grade(skills: &[(&str, i64)], criteria: &[(&str, i64)]) -> Grade {
        let own = |l: &[(&str, i64)]| l.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        Grade {
            evaluation: "organizations/o/evaluations/x".into(),
            score_milli: 0,
            passed: false,
            closed: false,
            graded_us: 0,
            skills: own(skills),
            override_rev: 0,
            criteria: own(criteria),
        }
    }

    #[test]
    fn skill_basis_for_grades_without_criteria() {
        let (a, b) = (
            drill("objections", "objection_handling", 20_000),
            drill("objections", "objection_handling", 40_000),
        );
        let c = drill("close", "closing", 50_000);
        let s1 = grade(&[("objection_handling", 60_000)], &[]);
        let s2 = grade(&[("objection_handling", 80_000), ("rapport", 10_000)], &[]);
        let s3 = grade(&[("rapport", 90_000)], &[]);
        // a's drilled evaluation is current: its skill score (10) is before, not a's 20.
        let drilled = grade(&[("objection_handling", 10_000)], &[]);
        let got = impact(&[
            DrillOutcome {
                drill: &a,
                grade: &s1,
                drilled: Some(&drilled),
                next: None,
            },
            DrillOutcome {
                drill: &b,
                grade: &s2,
                drilled: None,
                next: None,
            },
            DrillOutcome {
                drill: &c,
                grade: &s3,
                drilled: None,
                next: None,
            },
        ]);
        assert_eq!(got.len(), 1, "a drill without its skill scored is left out");
        assert_eq!((got[0].basis, got[0].drills), (Basis::Skill, 2));
        assert!((got[0].mean_before - 25.0).abs() < 1e-9);
        assert!((got[0].mean_after - 70.0).abs() < 1e-9);
        assert!((got[0].lift() - 45.0).abs() < 1e-9);
        assert_eq!(got[0].next_practice, 0);
    }

    #[test]
    fn criterion_basis_compares_the_criterion_before_in_the_drill_and_next() {
        let a = drill("objections", "objection_handling", 20_000);
        let b = drill("objections", "objection_handling", 30_000);
        // The skill moves differently from the criterion: only the criterion counts.
        let drilled = grade(&[("objection_handling", 90_000)], &[("objections", 10_000)]);
        let in_a = grade(&[("objection_handling", 0)], &[("objections", 50_000)]);
        let in_b = grade(&[], &[("objections", 70_000)]);
        let next_a = grade(&[("objection_handling", 0)], &[("objections", 40_000)]);
        // An old drill (no criterion scores) gets a row of its own.
        let old = grade(&[("objection_handling", 35_000)], &[]);
        let got = impact(&[
            DrillOutcome {
                drill: &a,
                grade: &in_a,
                drilled: Some(&drilled),
                next: Some(&next_a),
            },
            DrillOutcome {
                drill: &b,
                grade: &in_b,
                drilled: None,
                next: None,
            },
            DrillOutcome {
                drill: &b,
                grade: &old,
                drilled: None,
                next: None,
            },
        ]);
        assert_eq!(got.len(), 2);
        let c = &got[0];
        assert_eq!(
            (c.basis, c.drills, c.next_practice),
            (Basis::Criterion, 2, 1)
        );
        assert!((c.mean_before - 20.0).abs() < 1e-9, "10 and 30: {c:?}");
        assert!((c.mean_after - 60.0).abs() < 1e-9);
        assert!((c.mean_next - 40.0).abs() < 1e-9);
        assert!((c.next_lift - 30.0).abs() < 1e-9, "40 - 10");
        let s = &got[1];
        assert_eq!((s.basis, s.drills), (Basis::Skill, 1));
        assert!((s.mean_after - 35.0).abs() < 1e-9);
    }

    #[test]
    fn next_practice_is_the_first_later_plain_session_of_the_scenario() {
        let fact = |session: &str, scenario: &str, start: i64, is_drill: bool, real: bool| Fact {
            session: session.into(),
            trainee: "organizations/o/members/t".into(),
            scenario: scenario.into(),
            start_us: Some(start),
            grade: Some(grade(&[], &[])),
            origin: Origin {
                real_call: real,
                drill: is_drill.then(|| drill("c", "s", 0)),
            },
            ..Fact::default()
        };
        let d = fact("d", "s1", 100, true, false);
        let candidates = vec![
            fact("earlier", "s1", 50, false, false),
            fact("other-scenario", "s2", 110, false, false),
            fact("another-drill", "s1", 120, true, false),
            fact("real", "s1", 130, false, true),
            fact("second", "s1", 300, false, false),
            fact("first", "s1", 200, false, false),
        ];
        assert_eq!(
            next_practice(&d, &candidates).map(|f| f.session.as_str()),
            Some("first")
        );
        assert!(next_practice(&d, &candidates[..4]).is_none());
    }
}
