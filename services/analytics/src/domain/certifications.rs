//! Whether a trainee holds a certification, from their graded attempts. Plain Rust.
//!
//! The rule (also in the Certification proto): the certification is earned at the first
//! attempt time `t` at which, for every requirement, one of the attempts of its scenario that
//! started within the window before `t` (only the first `max_attempts` of those, oldest first)
//! reached the passing score. It is valid until `t + validity`; once that has passed, the
//! first later `t` that qualifies again renews it. Attempts made before a revocation never
//! count again. The answer is a function of the attempts (current grades, overrides
//! included), so recomputing it is idempotent and follows every override or regrade.

/// A certification's terms, scores in thousandths, times in microseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Terms {
    /// (scenario, passing score in thousandths), in the definition's order.
    pub requirements: Vec<(String, i64)>,
    /// 0: every attempt counts.
    pub max_attempts: usize,
    pub window_us: Option<i64>,
    pub validity_us: Option<i64>,
}

/// One graded attempt of a trainee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub scenario: String,
    /// The session's start.
    pub at_us: i64,
    pub score_milli: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub best_milli: i64,
    pub attempts: usize,
    pub met: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    NotEarned,
    Held,
    Expired,
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub state: State,
    pub earned_us: Option<i64>,
    pub expires_us: Option<i64>,
    /// Per requirement, counting the attempts that count now.
    pub requirements: Vec<Requirement>,
}

impl Standing {
    pub fn met(&self) -> usize {
        self.requirements.iter().filter(|r| r.met).count()
    }
}

/// Each requirement's progress at time `t`, over `attempts` sorted by time.
fn progress_at(terms: &Terms, attempts: &[Attempt], t: i64) -> Vec<Requirement> {
    terms
        .requirements
        .iter()
        .map(|(scenario, pass)| {
            let counted: Vec<i64> = attempts
                .iter()
                .filter(|a| &a.scenario == scenario && a.at_us <= t)
                .filter(|a| {
                    terms
                        .window_us
                        .is_none_or(|w| a.at_us > t.saturating_sub(w))
                })
                .take(if terms.max_attempts == 0 {
                    usize::MAX
                } else {
                    terms.max_attempts
                })
                .map(|a| a.score_milli)
                .collect();
            let best = counted.iter().copied().max();
            Requirement {
                best_milli: best.unwrap_or(0),
                attempts: counted.len(),
                met: best.is_some_and(|b| b >= *pass),
            }
        })
        .collect()
}

/// The trainee's standing at `now`. `revoked_us`: the last revocation, if any.
pub fn standing(
    terms: &Terms,
    attempts: &[Attempt],
    revoked_us: Option<i64>,
    now: i64,
) -> Standing {
    let mut counted: Vec<Attempt> = attempts
        .iter()
        .filter(|a| revoked_us.is_none_or(|r| a.at_us > r) && a.at_us <= now)
        .filter(|a| terms.requirements.iter().any(|(s, _)| *s == a.scenario))
        .cloned()
        .collect();
    counted.sort_by(|a, b| (a.at_us, &a.scenario).cmp(&(b.at_us, &b.scenario)));
    let mut earned: Option<(i64, Option<i64>)> = None;
    // Earn, and once an award has expired, renew with the first qualifying attempt after.
    let mut from = i64::MIN;
    for t in counted.iter().map(|a| a.at_us) {
        if t < from || terms.requirements.is_empty() {
            continue;
        }
        if progress_at(terms, &counted, t).iter().all(|r| r.met) {
            let expires = terms.validity_us.map(|v| t.saturating_add(v));
            earned = Some((t, expires));
            match expires {
                Some(e) if e <= now => from = e,
                _ => break,
            }
        }
    }
    let state = match earned {
        Some((_, Some(e))) if e <= now => State::Expired,
        Some(_) => State::Held,
        None if revoked_us.is_some() => State::Revoked,
        None => State::NotEarned,
    };
    Standing {
        state,
        earned_us: earned.map(|(t, _)| t),
        expires_us: earned.and_then(|(_, e)| e),
        requirements: progress_at(terms, &counted, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn at(scenario: &str, hour: i64, score: i64) -> Attempt {
        Attempt {
            scenario: scenario.into(),
            at_us: hour * H,
            score_milli: score * 1000,
        }
    }

    fn terms() -> Terms {
        Terms {
            requirements: vec![("a".into(), 70_000), ("b".into(), 80_000)],
            max_attempts: 2,
            window_us: Some(24 * H),
            validity_us: Some(100 * H),
        }
    }

    #[test]
    fn earned_when_every_requirement_is_met_within_the_counted_attempts() {
        let t = terms();
        let tries = [at("a", 1, 75), at("b", 2, 50), at("b", 3, 85)];
        let s = standing(&t, &tries, None, 10 * H);
        assert_eq!(
            (s.state, s.earned_us, s.expires_us),
            (State::Held, Some(3 * H), Some(103 * H))
        );
        // Only the first two attempts of b count: the third passes too late.
        let tries = [
            at("a", 1, 75),
            at("b", 2, 50),
            at("b", 3, 60),
            at("b", 4, 90),
        ];
        let s = standing(&t, &tries, None, 10 * H);
        assert_eq!(s.state, State::NotEarned);
        assert_eq!(s.met(), 1);
        assert_eq!(s.requirements[1].attempts, 2);
        assert_eq!(s.requirements[1].best_milli, 60_000);
        // Outside the window the pass of a no longer counts with b's.
        let tries = [at("a", 1, 75), at("b", 30, 90)];
        assert_eq!(standing(&t, &tries, None, 40 * H).state, State::NotEarned);
    }

    #[test]
    fn expiry_renewal_and_revocation() {
        let t = terms();
        let tries = [at("a", 1, 75), at("b", 2, 85)];
        let s = standing(&t, &tries, None, 200 * H);
        assert_eq!((s.state, s.expires_us), (State::Expired, Some(102 * H)));
        let mut renewed = tries.to_vec();
        renewed.extend([at("a", 150, 71), at("b", 151, 81)]);
        let s = standing(&t, &renewed, None, 200 * H);
        assert_eq!((s.state, s.earned_us), (State::Held, Some(151 * H)));
        // Revoked at hour 5: the earlier attempts never count again...
        let s = standing(&t, &tries, Some(5 * H), 10 * H);
        assert_eq!((s.state, s.met()), (State::Revoked, 0));
        // ...new ones earn it back.
        let mut again = tries.to_vec();
        again.extend([at("a", 6, 90), at("b", 7, 90)]);
        let s = standing(&t, &again, Some(5 * H), 10 * H);
        assert_eq!((s.state, s.earned_us), (State::Held, Some(7 * H)));
    }

    #[test]
    fn an_unlimited_certification_counts_every_attempt_for_ever() {
        let t = Terms {
            requirements: vec![("a".into(), 70_000)],
            ..Terms::default()
        };
        let tries = [at("a", 1, 10), at("a", 2, 20), at("a", 900, 70)];
        let s = standing(&t, &tries, None, 1000 * H);
        assert_eq!(
            (s.state, s.earned_us, s.expires_us),
            (State::Held, Some(900 * H), None)
        );
    }
}
