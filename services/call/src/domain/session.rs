//! A session's life: which state may follow which, written once. The store applies these rules
//! inside its transactions; the use cases use them to answer before writing.

/// The states of a session (stored as the `SessionState` numbers of the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Active,
    Ended,
    Grading,
    Graded,
    Failed,
    Cancelled,
}

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The call is over (trainee, provider, idle sweeper, time limit).
    End,
    /// The trainee abandons the call; it is not graded.
    Cancel,
    GradingStarted,
    Graded,
    GradingFailed,
}

/// The result of a change that is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Move to this state.
    To(SessionState),
    /// Already done, or overtaken by a later change: write nothing and answer with the session
    /// as it is (repeats and redeliveries are not errors).
    Stay,
}

/// Why a change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A cancelled session cannot be ended.
    Cancelled,
    /// The change needs an ACTIVE session; this is the state it is in.
    NotActive(SessionState),
}

impl SessionState {
    /// Transcript turns and segments are taken only while the call runs.
    pub fn accepts_transcript(self) -> bool {
        self == SessionState::Active
    }

    /// No further change will come: watchers stop here.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Graded | SessionState::Failed | SessionState::Cancelled
        )
    }
}

/// Which state follows `from` when `change` happens.
pub fn transition(from: SessionState, change: Change) -> Result<Step, Refused> {
    use SessionState as S;
    match (change, from) {
        (Change::End, S::Active) => Ok(Step::To(S::Ended)),
        (Change::End, S::Cancelled) => Err(Refused::Cancelled),
        // Ending twice is idempotent: the first end (and whatever grading did since) stands.
        (Change::End, _) => Ok(Step::Stay),

        (Change::Cancel, S::Active) => Ok(Step::To(S::Cancelled)),
        (Change::Cancel, S::Cancelled) => Ok(Step::Stay),
        (Change::Cancel, other) => Err(Refused::NotActive(other)),

        // Grading events only move sessions that were ended; a session still running or
        // cancelled is not graded, and a redelivered event must not fail the consumer.
        (_, S::Active | S::Cancelled) => Ok(Step::Stay),
        // A late GradingStarted must not undo a result that already arrived.
        (Change::GradingStarted, S::Graded | S::Failed) => Ok(Step::Stay),
        (Change::GradingStarted, _) => Ok(Step::To(S::Grading)),
        // A regrade may replace a result, and a failure may follow a retry of a graded session.
        (Change::Graded, _) => Ok(Step::To(S::Graded)),
        (Change::GradingFailed, _) => Ok(Step::To(S::Failed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState as S;

    const ALL: [SessionState; 6] = [
        S::Active,
        S::Ended,
        S::Grading,
        S::Graded,
        S::Failed,
        S::Cancelled,
    ];

    #[test]
    fn only_an_active_session_ends_and_ending_again_changes_nothing() {
        assert_eq!(transition(S::Active, Change::End), Ok(Step::To(S::Ended)));
        for s in [S::Ended, S::Grading, S::Graded, S::Failed] {
            assert_eq!(transition(s, Change::End), Ok(Step::Stay), "{s:?}");
        }
        assert_eq!(
            transition(S::Cancelled, Change::End),
            Err(Refused::Cancelled)
        );
    }

    #[test]
    fn cancel_needs_an_active_session_and_is_idempotent() {
        assert_eq!(
            transition(S::Active, Change::Cancel),
            Ok(Step::To(S::Cancelled))
        );
        assert_eq!(transition(S::Cancelled, Change::Cancel), Ok(Step::Stay));
        for s in [S::Ended, S::Grading, S::Graded, S::Failed] {
            assert_eq!(
                transition(s, Change::Cancel),
                Err(Refused::NotActive(s)),
                "{s:?}"
            );
        }
    }

    #[test]
    fn grading_moves_only_ended_sessions() {
        for change in [
            Change::GradingStarted,
            Change::Graded,
            Change::GradingFailed,
        ] {
            assert_eq!(transition(S::Active, change), Ok(Step::Stay));
            assert_eq!(transition(S::Cancelled, change), Ok(Step::Stay));
        }
        assert_eq!(
            transition(S::Ended, Change::GradingStarted),
            Ok(Step::To(S::Grading))
        );
        assert_eq!(
            transition(S::Grading, Change::Graded),
            Ok(Step::To(S::Graded))
        );
        assert_eq!(
            transition(S::Grading, Change::GradingFailed),
            Ok(Step::To(S::Failed))
        );
        // Regrades and retries.
        assert_eq!(
            transition(S::Failed, Change::Graded),
            Ok(Step::To(S::Graded))
        );
        assert_eq!(
            transition(S::Graded, Change::Graded),
            Ok(Step::To(S::Graded))
        );
    }

    #[test]
    fn a_late_grading_started_does_not_undo_a_result() {
        assert_eq!(
            transition(S::Graded, Change::GradingStarted),
            Ok(Step::Stay)
        );
        assert_eq!(
            transition(S::Failed, Change::GradingStarted),
            Ok(Step::Stay)
        );
    }

    #[test]
    fn terminal_and_transcript_rules() {
        for s in ALL {
            assert_eq!(s.accepts_transcript(), s == S::Active);
            assert_eq!(
                s.is_terminal(),
                matches!(s, S::Graded | S::Failed | S::Cancelled)
            );
        }
    }
}
