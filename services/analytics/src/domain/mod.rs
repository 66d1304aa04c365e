//! Domain logic of the analytics service: plain Rust, no I/O.
//!
//! The read model is one [`Fact`] per session plus rollups. Every rollup row is a sum of
//! per-fact *contributions* ([`Fact::contributions`]), so an event is applied as
//! "retract the fact's old contribution, merge the event, add the new contribution". That
//! one rule makes reordering, duplicates and regrades safe: whatever a fact looks like after
//! the events, the rollups hold exactly the sum of the current facts.

pub mod certifications;
pub mod coaching;
pub mod drills;
pub mod events;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Scores are kept as integer thousandths so that adding and subtracting millions of
/// contributions never drifts (floating-point sums would).
pub fn score_to_milli(score: f64) -> i64 {
    if !score.is_finite() {
        return 0;
    }
    (score.clamp(0.0, 100.0) * 1000.0).round() as i64
}

/// The UTC day (days since 1970-01-01) of a time in microseconds.
pub fn day_of(us: i64) -> i64 {
    us.div_euclid(MICROS_PER_DAY)
}

/// The current evaluation of a session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grade {
    pub evaluation: String,
    pub score_milli: i64,
    pub passed: bool,
    pub closed: bool,
    /// When the grade happened (the event's occur time); the newest current grade wins.
    pub graded_us: i64,
    /// (skill, score in thousandths), sorted by skill, one entry per skill.
    pub skills: Vec<(String, i64)>,
    /// The evaluation's override revision these numbers carry (0: the grader's own); of two
    /// copies of one evaluation the higher revision wins.
    #[serde(default)]
    pub override_rev: i64,
    /// (criterion id, score in thousandths), sorted by criterion, one entry per criterion;
    /// empty when the grade event carried none (graded before they reached analytics).
    #[serde(default)]
    pub criteria: Vec<(String, i64)>,
}

/// One session as analytics sees it, merged from whichever events arrived so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fact {
    pub session: String,
    /// Organization id (the `{organization}` of its name).
    pub org: String,
    pub trainee: String,
    pub scenario: String,
    pub assignment: String,
    pub start_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub ended: bool,
    pub cancelled: bool,
    pub grading_failed: bool,
    pub grade: Option<Grade>,
    /// Evaluations replaced by a regrade; kept so a late original never comes back.
    pub superseded: Vec<String>,
    /// Where the session comes from (filled by whichever session event brings it).
    pub origin: Origin,
}

/// A session's origin: an uploaded real call, and/or a drill of an earlier evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub real_call: bool,
    pub drill: Option<Drill>,
}

/// What a drill session practises again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drill {
    pub evaluation: String,
    pub criterion: String,
    pub skill: String,
    /// The criterion's score in the drilled evaluation, in thousandths.
    pub before_milli: i64,
}

/// What a session event tells about its session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionInfo {
    pub session: String,
    pub trainee: String,
    pub scenario: String,
    pub assignment: String,
    pub start_us: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Only the call service's session events know it; the default is practice.
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    Started(SessionInfo),
    Ended {
        info: SessionInfo,
        cancelled: bool,
    },
    Graded {
        info: SessionInfo,
        grade: Grade,
        supersedes: String,
    },
    Failed(SessionInfo),
}

impl SessionEvent {
    pub fn info(&self) -> &SessionInfo {
        match self {
            Self::Started(i) | Self::Failed(i) => i,
            Self::Ended { info, .. } | Self::Graded { info, .. } => info,
        }
    }
}

fn fill(slot: &mut String, value: &str) {
    if slot.is_empty() && !value.is_empty() {
        *slot = value.to_owned();
    }
}

/// Per-day numbers: sums and counts only, so any set of rows adds up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayStats {
    pub sessions: i64,
    pub duration_ms_sum: i64,
    pub duration_n: i64,
    pub graded: i64,
    pub score_milli_sum: i64,
    pub passed: i64,
    pub closed: i64,
}

impl DayStats {
    pub fn add(&mut self, o: &DayStats) {
        self.sessions += o.sessions;
        self.duration_ms_sum += o.duration_ms_sum;
        self.duration_n += o.duration_n;
        self.graded += o.graded;
        self.score_milli_sum += o.score_milli_sum;
        self.passed += o.passed;
        self.closed += o.closed;
    }
    pub fn sub(&mut self, o: &DayStats) {
        self.sessions -= o.sessions;
        self.duration_ms_sum -= o.duration_ms_sum;
        self.duration_n -= o.duration_n;
        self.graded -= o.graded;
        self.score_milli_sum -= o.score_milli_sum;
        self.passed -= o.passed;
        self.closed -= o.closed;
    }
    pub fn is_zero(&self) -> bool {
        *self == DayStats::default()
    }
    pub fn average_score(&self) -> f64 {
        ratio(self.score_milli_sum as f64 / 1000.0, self.graded)
    }
    pub fn pass_rate(&self) -> f64 {
        ratio(self.passed as f64, self.graded)
    }
    pub fn close_rate(&self) -> f64 {
        ratio(self.closed as f64, self.graded)
    }
    pub fn average_duration_ms(&self) -> f64 {
        ratio(self.duration_ms_sum as f64, self.duration_n)
    }
}

pub fn ratio(sum: f64, n: i64) -> f64 {
    if n > 0 { sum / n as f64 } else { 0.0 }
}

/// The rollup dimensions: the whole organization, or one trainee, scenario or assignment;
/// practice calls and real calls roll up apart (the `Real*` dimensions), so no summary mixes
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Org,
    Trainee,
    Scenario,
    Assignment,
    RealOrg,
    RealTrainee,
    RealScenario,
    RealAssignment,
}

impl Dim {
    pub fn code(self) -> &'static str {
        match self {
            Dim::Org => "o",
            Dim::Trainee => "t",
            Dim::Scenario => "s",
            Dim::Assignment => "a",
            Dim::RealOrg => "ro",
            Dim::RealTrainee => "rt",
            Dim::RealScenario => "rs",
            Dim::RealAssignment => "ra",
        }
    }

    /// This dimension over real calls (`real`) or practice calls.
    pub fn of(self, real: bool) -> Dim {
        match (self, real) {
            (Dim::Org | Dim::RealOrg, false) => Dim::Org,
            (Dim::Trainee | Dim::RealTrainee, false) => Dim::Trainee,
            (Dim::Scenario | Dim::RealScenario, false) => Dim::Scenario,
            (Dim::Assignment | Dim::RealAssignment, false) => Dim::Assignment,
            (Dim::Org | Dim::RealOrg, true) => Dim::RealOrg,
            (Dim::Trainee | Dim::RealTrainee, true) => Dim::RealTrainee,
            (Dim::Scenario | Dim::RealScenario, true) => Dim::RealScenario,
            (Dim::Assignment | Dim::RealAssignment, true) => Dim::RealAssignment,
        }
    }
}

/// Key of a daily rollup row: (org, dim, key, day).
pub type DailyKey = (String, Dim, String, i64);
/// Key of a daily skill rollup row: (org, dim, key, day, skill).
pub type SkillKey = (String, Dim, String, i64, String);
/// Key of a daily usage row: (org, day, provider, model).
pub type UsageKey = (String, i64, String, String);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageStats {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micros: i64,
    pub requests: i64,
}

impl UsageStats {
    pub fn add(&mut self, o: &UsageStats) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cost_micros += o.cost_micros;
        self.requests += o.requests;
    }
}

impl Fact {
    pub fn new(session: &str, org: &str) -> Self {
        Self {
            session: session.to_owned(),
            org: org.to_owned(),
            ..Self::default()
        }
    }

    /// Whether the fact counts in the numbers: its start is known and it was not
    /// cancelled (a graded session always counts).
    pub fn counted(&self) -> bool {
        self.start_us.is_some() && (self.grade.is_some() || !self.cancelled)
    }

    pub fn day(&self) -> Option<i64> {
        self.start_us.map(day_of)
    }

    /// The fact's numbers for its day (zero if it does not count).
    pub fn stats(&self) -> DayStats {
        if !self.counted() {
            return DayStats::default();
        }
        let mut s = DayStats {
            sessions: 1,
            ..DayStats::default()
        };
        if let Some(d) = self.duration_ms {
            s.duration_ms_sum = d;
            s.duration_n = 1;
        }
        if let Some(g) = &self.grade {
            s.graded = 1;
            s.score_milli_sum = g.score_milli;
            s.passed = i64::from(g.passed);
            s.closed = i64::from(g.closed);
        }
        s
    }

    /// The rollup dimensions this fact belongs to (the real-call ones for a real call).
    pub fn dims(&self) -> Vec<(Dim, &str)> {
        let real = self.origin.real_call;
        let mut dims = vec![(Dim::Org.of(real), "")];
        for (dim, key) in [
            (Dim::Trainee, &self.trainee),
            (Dim::Scenario, &self.scenario),
            (Dim::Assignment, &self.assignment),
        ] {
            if !key.is_empty() {
                dims.push((dim.of(real), key.as_str()));
            }
        }
        dims
    }

    /// Merges one event. Identity fields fill in whichever event brings them first; the
    /// current grade is the newest one not superseded by a regrade, whatever the order.
    pub fn apply(&mut self, event: &SessionEvent) {
        let info = event.info();
        fill(&mut self.trainee, &info.trainee);
        fill(&mut self.scenario, &info.scenario);
        fill(&mut self.assignment, &info.assignment);
        if self.start_us.is_none() {
            self.start_us = info.start_us;
        }
        // A session is a real call or a drill from its start: once known, it stays.
        self.origin.real_call |= info.origin.real_call;
        if self.origin.drill.is_none() {
            self.origin.drill = info.origin.drill.clone();
        }
        match event {
            SessionEvent::Started(_) => {}
            SessionEvent::Ended { info, cancelled } => {
                self.ended = true;
                self.cancelled = *cancelled;
                // The call service measures the duration; it wins over the grader's copy.
                if info.duration_ms.is_some() {
                    self.duration_ms = info.duration_ms;
                }
            }
            SessionEvent::Graded {
                info,
                grade,
                supersedes,
            } => {
                if self.duration_ms.is_none() || !self.ended {
                    self.duration_ms = info.duration_ms.or(self.duration_ms);
                }
                // Only an ended session is graded: this stands for a SessionEnded that was
                // lost (whose duration, when it comes, wins over the grader's copy above).
                self.ended = true;
                if !supersedes.is_empty() && !self.superseded.contains(supersedes) {
                    self.superseded.push(supersedes.clone());
                    self.superseded.sort();
                }
                let grade = match self.grade.take() {
                    // Another copy of the same evaluation (an override, or the grade an
                    // override overtook): the highest override revision wins, dated by the
                    // earliest copy, whatever the order of arrival.
                    Some(old) if old.evaluation == grade.evaluation => {
                        let graded_us = old.graded_us.min(grade.graded_us);
                        let mut kept = if grade.override_rev > old.override_rev {
                            grade.clone()
                        } else {
                            old
                        };
                        kept.graded_us = graded_us;
                        vec![kept]
                    }
                    old => old.into_iter().chain([grade.clone()]).collect(),
                };
                self.grade = grade
                    .into_iter()
                    .filter(|g| !self.superseded.contains(&g.evaluation))
                    .max_by(|a, b| (a.graded_us, &a.evaluation).cmp(&(b.graded_us, &b.evaluation)));
            }
            SessionEvent::Failed(_) => {
                // Likewise, only an ended session is handed to grading.
                self.grading_failed = true;
                self.ended = true;
            }
        }
    }
}

/// Rollup changes accumulated over a batch, applied in key order (so concurrent batches
/// take row locks in the same order) at the end of its transaction.
#[derive(Debug, Default)]
pub struct Delta {
    pub daily: BTreeMap<DailyKey, DayStats>,
    pub skills: BTreeMap<SkillKey, (i64, i64)>,
    pub usage: BTreeMap<UsageKey, UsageStats>,
    /// (org, assignment, trainee) whose progress row must be recomputed.
    pub assignments: BTreeSet<(String, String, String)>,
    /// (org, member) names seen in events.
    pub members: BTreeSet<(String, String)>,
    pub orgs: BTreeSet<String>,
}

impl Delta {
    fn contribute(&mut self, fact: &Fact, sign: i64) {
        let Some(day) = fact.day() else { return };
        if !fact.counted() {
            return;
        }
        let stats = fact.stats();
        for (dim, key) in fact.dims() {
            let entry = self
                .daily
                .entry((fact.org.clone(), dim, key.to_owned(), day))
                .or_default();
            if sign > 0 {
                entry.add(&stats);
            } else {
                entry.sub(&stats);
            }
            if let Some(g) = &fact.grade {
                for (skill, score) in &g.skills {
                    let e = self
                        .skills
                        .entry((fact.org.clone(), dim, key.to_owned(), day, skill.clone()))
                        .or_default();
                    e.0 += sign * score;
                    e.1 += sign;
                }
            }
        }
    }

    /// Replaces `before`'s contribution by `after`'s.
    pub fn replace(&mut self, before: &Fact, after: &Fact) {
        self.contribute(before, -1);
        self.contribute(after, 1);
        self.orgs.insert(after.org.clone());
        for f in [before, after] {
            if !f.assignment.is_empty() && !f.trainee.is_empty() {
                self.assignments
                    .insert((f.org.clone(), f.assignment.clone(), f.trainee.clone()));
            }
        }
        if !after.trainee.is_empty() {
            self.members
                .insert((after.org.clone(), after.trainee.clone()));
        }
    }

    pub fn add_usage(&mut self, org: &str, day: i64, provider: &str, model: &str, u: &UsageStats) {
        if *u == UsageStats::default() {
            return;
        }
        self.usage
            .entry((org.to_owned(), day, provider.to_owned(), model.to_owned()))
            .or_default()
            .add(u);
        self.orgs.insert(org.to_owned());
    }

    /// Drops entries that net to nothing (e.g. a duplicate-free no-op merge).
    pub fn prune(&mut self) {
        self.daily.retain(|_, s| !s.is_zero());
        self.skills.retain(|_, s| *s != (0, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(eval: &str, at: i64, score: f64, supersedes: &str) -> SessionEvent {
        SessionEvent::Graded {
            info: SessionInfo {
                session: "organizations/o/sessions/s".into(),
                trainee: "organizations/o/members/t".into(),
                start_us: Some(5),
                duration_ms: Some(1000),
                ..SessionInfo::default()
            },
            grade: Grade {
                evaluation: eval.into(),
                score_milli: score_to_milli(score),
                passed: score >= 70.0,
                closed: false,
                graded_us: at,
                skills: vec![("rapport".into(), score_to_milli(score))],
                override_rev: 0,
                criteria: Vec::new(),
            },
            supersedes: supersedes.into(),
        }
    }

    fn overridden(eval: &str, at: i64, score: f64, rev: i64) -> SessionEvent {
        let mut e = graded(eval, at, score, "");
        if let SessionEvent::Graded { grade, .. } = &mut e {
            grade.override_rev = rev;
        }
        e
    }

    #[test]
    fn a_grade_or_a_failure_marks_the_session_ended_and_calls_duration_still_wins() {
        let mut f = Fact::new("organizations/o/sessions/s", "o");
        f.apply(&SessionEvent::Started(SessionInfo {
            start_us: Some(5),
            ..SessionInfo::default()
        }));
        assert!(!f.ended);
        // Its SessionEnded lost: the grade stands for it, with the grader's copy of the length.
        f.apply(&graded("e1", 1, 50.0, ""));
        assert_eq!((f.ended, f.duration_ms), (true, Some(1000)));
        f.apply(&SessionEvent::Ended {
            info: SessionInfo {
                duration_ms: Some(1200),
                ..SessionInfo::default()
            },
            cancelled: false,
        });
        assert_eq!((f.ended, f.duration_ms), (true, Some(1200)));
        let mut failed = Fact::new("organizations/o/sessions/s2", "o");
        failed.apply(&SessionEvent::Failed(SessionInfo::default()));
        assert!(failed.ended && failed.grading_failed);
    }

    #[test]
    fn highest_override_revision_wins_in_any_order() {
        let events = [
            graded("e1", 1, 50.0, ""),
            overridden("e1", 5, 90.0, 1),
            overridden("e1", 6, 20.0, 2),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1]] {
            let mut f = Fact::new("organizations/o/sessions/s", "o");
            for i in order {
                f.apply(&events[i]);
            }
            let g = f.grade.as_ref().expect("graded");
            assert_eq!((g.score_milli, g.override_rev, g.graded_us), (20_000, 2, 1));
        }
        // A regrade replaces the overridden evaluation, late override or not.
        let mut f = Fact::new("organizations/o/sessions/s", "o");
        for e in [&events[0], &graded("e2", 9, 60.0, "e1"), &events[2]] {
            f.apply(e);
        }
        assert_eq!(f.grade.as_ref().map(|g| g.score_milli), Some(60_000));
    }

    #[test]
    fn regrade_wins_in_any_order() {
        let events = [graded("e1", 1, 50.0, ""), graded("e2", 2, 80.0, "e1")];
        for order in [[0, 1], [1, 0]] {
            let mut f = Fact::new("organizations/o/sessions/s", "o");
            for i in order {
                f.apply(&events[i]);
            }
            assert_eq!(f.grade.as_ref().map(|g| g.evaluation.as_str()), Some("e2"));
            assert_eq!(f.stats().graded, 1);
        }
    }

    #[test]
    fn delta_replaces_contribution_without_double_counting() {
        let mut f = Fact::new("organizations/o/sessions/s", "o");
        let mut d = Delta::default();
        for e in [graded("e1", 1, 50.0, ""), graded("e2", 2, 80.0, "e1")] {
            let before = f.clone();
            f.apply(&e);
            d.replace(&before, &f);
        }
        d.prune();
        let org = &d.daily[&("o".to_owned(), Dim::Org, String::new(), 0)];
        assert_eq!((org.graded, org.score_milli_sum), (1, 80_000));
    }

    #[test]
    fn a_real_call_rolls_up_apart_whatever_the_order() {
        let ended = SessionEvent::Ended {
            info: SessionInfo {
                session: "organizations/o/sessions/s".into(),
                start_us: Some(5),
                origin: Origin {
                    real_call: true,
                    drill: None,
                },
                ..SessionInfo::default()
            },
            cancelled: false,
        };
        let events = [graded("e1", 1, 60.0, ""), ended];
        for order in [[0, 1], [1, 0]] {
            let mut f = Fact::new("organizations/o/sessions/s", "o");
            let mut d = Delta::default();
            for i in order {
                let before = f.clone();
                f.apply(&events[i]);
                d.replace(&before, &f);
            }
            d.prune();
            let key = |dim| ("o".to_owned(), dim, String::new(), 0);
            assert!(!d.daily.contains_key(&key(Dim::Org)), "{:?}", d.daily);
            assert_eq!(d.daily[&key(Dim::RealOrg)].graded, 1);
        }
    }

    #[test]
    fn cancelled_session_does_not_count() {
        let mut f = Fact::new("s", "o");
        f.apply(&SessionEvent::Ended {
            info: SessionInfo {
                start_us: Some(1),
                ..SessionInfo::default()
            },
            cancelled: true,
        });
        assert!(!f.counted());
    }
}
