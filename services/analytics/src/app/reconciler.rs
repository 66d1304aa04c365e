//! The reconciler: repairs facts whose grading event was lost on the way here (a Redis
//! restarted without persistence, a trimmed stream, beyond the relays' re-send window).
//! Every `reconcile_interval` it asks grading (BatchGetSessionOutcomes, as the analytics
//! service, 100 sessions a call) about two sweeps of facts, each resumed where the previous
//! round stopped and bounded per round:
//!
//! - ended (not cancelled) and neither graded nor failed, ended more than
//!   `reconcile_after_secs` ago: grading's current evaluation is applied as its SessionGraded
//!   (and its EvaluationOverridden when overridden; `kind="session_graded"`), or its dead job
//!   as GradingFailed (`kind="grading_failed"`);
//! - graded within the last [`RECHECK_FACTOR`] × `reconcile_after_secs` (a day by default):
//!   a regrade analytics never saw (`kind="session_graded"`) or an override revision beyond
//!   the fact's (`kind="evaluation_overridden"`) is applied likewise. Overrides of grades
//!   older than that window are not looked for;
//! - started more than `reconcile_unended_after_secs` ago (6 h by default, longer than any
//!   session runs) and never ended, graded nor failed here: both its SessionEnded and its
//!   grading event were lost. Grading's evaluation (or dead job) is applied as above; the
//!   synthesized SessionGraded marks the fact ended, with the duration grading had from
//!   call's SessionEnded. Facts grading knows nothing about (a session still running, or one
//!   whose SessionEnded never reached grading either) stay as they are, started and not
//!   ended; the sweep moves past them and looks again when it comes round.
//!
//! Whatever grading answers goes through the same ingest as the bus's events (facts,
//! rollups, criterion scores, certifications follow), with event ids made of the evaluation
//! (or job) and revision: replicas doing the same repair meet in the inbox, and the real
//! event arriving later merges as a copy (same evaluation, not a higher revision, the earliest
//! date kept) and changes nothing. The synthesized SessionGraded carries the grader's LLM
//! usage as the real one did; an evaluation's usage counts once, whichever copy comes first
//! (`store::ingest`). Counted in `reconciler_repaired_total{kind}`.

use std::sync::Arc;

use salestrainer_proto::{
    events::{self as ev, event::Payload},
    grading::{self as gpb, JobState, grading_service_client::GradingServiceClient},
};
use salestrainer_runtime::{
    Context, Peer, context::ServiceAuth, metrics::count_repaired, names, time::now_us,
};
use tonic::{codegen::InterceptedService, transport::Channel};

use super::AnalyticsApp;
use crate::domain::events::parse;
use crate::store::reconcile::{self, After, Checked};

type Grading = GradingServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Facts per page, and sessions per BatchGetSessionOutcomes call.
pub const PAGE: u64 = 100;
/// Pages of ungraded facts per round (the rest waits for the next round).
pub const UNGRADED_PAGES: usize = 10;
/// Pages of graded facts re-checked per round.
pub const RECHECK_PAGES: usize = 2;
/// Pages of started, never ended facts looked at per round.
pub const UNENDED_PAGES: usize = 2;
/// Graded facts are re-checked for lost overrides and regrades while their grade is younger
/// than this many times `reconcile_after_secs`.
pub const RECHECK_FACTOR: u32 = 1440;

/// What one round repaired, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    pub session_graded: u64,
    pub grading_failed: u64,
    pub evaluation_overridden: u64,
}

/// The reconciler of one replica: where each sweep stopped.
pub struct Reconciler {
    app: Arc<AnalyticsApp>,
    grading: Grading,
    ungraded: After,
    recheck: After,
    unended: After,
}

/// Starts the reconciler (unless `reconcile_after_secs` is 0); stopped by the context's
/// shutdown token.
pub fn spawn_reconciler(app: Arc<AnalyticsApp>, ctx: &Context) -> anyhow::Result<()> {
    if app.settings.reconcile_after().is_none() {
        return Ok(());
    }
    let grading = GradingServiceClient::with_interceptor(
        ctx.peer_channel(Peer::Grading)?,
        ctx.service_auth(crate::SERVICE),
    );
    let mut r = Reconciler::new(app, grading);
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(r.app.settings.reconcile_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = r.round().await {
                tracing::warn!(error = %e, "analytics reconciliation failed; trying again next round");
            }
        }
    });
    Ok(())
}

impl Reconciler {
    pub fn new(app: Arc<AnalyticsApp>, grading: Grading) -> Self {
        Self {
            app,
            grading,
            ungraded: None,
            recheck: None,
            unended: None,
        }
    }

    /// One round of both sweeps. Facts grading cannot answer for now are left for later.
    pub async fn round(&mut self) -> anyhow::Result<Repaired> {
        let Some(bound) = self.app.settings.reconcile_after() else {
            return Ok(Repaired::default());
        };
        let db = self.app.db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = now_us();
        let cutoff = now.saturating_sub(micros(bound));
        let mut repaired = Repaired::default();
        for _ in 0..UNGRADED_PAGES {
            let page = reconcile::ungraded(db, cutoff, self.ungraded.take(), PAGE).await?;
            self.ungraded = next(&page);
            // Ended long enough ago (a call longer than the bound may have just ended).
            let due: Vec<Checked> = page
                .into_iter()
                .filter(|c| c.end_us.is_none_or(|end| end < cutoff))
                .collect();
            self.repair(&due, &mut repaired).await?;
            if self.ungraded.is_none() {
                break;
            }
        }
        let from = now.saturating_sub(micros(bound * RECHECK_FACTOR));
        for _ in 0..RECHECK_PAGES {
            let page =
                reconcile::graded_between(db, from, cutoff, self.recheck.take(), PAGE).await?;
            self.recheck = next(&page);
            self.repair(&page, &mut repaired).await?;
            if self.recheck.is_none() {
                break;
            }
        }
        if let Some(unended) = self.app.settings.reconcile_unended_after() {
            let before = now.saturating_sub(micros(unended));
            for _ in 0..UNENDED_PAGES {
                let page = reconcile::unended(db, before, self.unended.take(), PAGE).await?;
                self.unended = next(&page);
                self.repair(&page, &mut repaired).await?;
                if self.unended.is_none() {
                    break;
                }
            }
        }
        Ok(repaired)
    }

    /// Asks grading about `facts` and applies what differs.
    async fn repair(&self, facts: &[Checked], repaired: &mut Repaired) -> anyhow::Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        let outcomes = self
            .grading
            .clone()
            .batch_get_session_outcomes(gpb::BatchGetSessionOutcomesRequest {
                sessions: facts.iter().map(|f| f.session.clone()).collect(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("grading: {:?} {}", s.code(), s.message()))?
            .into_inner()
            .outcomes;
        for (fact, o) in facts.iter().zip(&outcomes) {
            if o.session != fact.session {
                anyhow::bail!(
                    "grading answered for {} in place of {}",
                    o.session,
                    fact.session
                );
            }
            let Some((kind, events)) = lost_events(fact, o) else {
                continue;
            };
            let mut parsed = Vec::with_capacity(events.len());
            for e in &events {
                match parse(e, "") {
                    Ok(p) => parsed.push(p),
                    Err(violations) => {
                        tracing::warn!(session = %fact.session, ?violations,
                            "reconciler: grading's outcome does not pass the event checks");
                    }
                }
            }
            if parsed.len() != events.len() {
                continue;
            }
            let out = self
                .app
                .ingest(&parsed)
                .await
                .map_err(|e| anyhow::anyhow!("applying grading's outcome: {e:?}"))?;
            // Another replica may have done the same repair first, or the real event come.
            if out.changed == 0 {
                continue;
            }
            count_repaired(kind, 1);
            tracing::info!(session = %fact.session, kind, "reconciler repaired a fact");
            match kind {
                "session_graded" => repaired.session_graded += 1,
                "grading_failed" => repaired.grading_failed += 1,
                _ => repaired.evaluation_overridden += 1,
            }
        }
        Ok(())
    }
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Where the next page starts; `None` after a short page (the sweep starts over).
fn next(page: &[Checked]) -> After {
    match page.last() {
        Some(last) if page.len() as u64 == PAGE => Some((last.key, last.session.clone())),
        _ => None,
    }
}

/// The events analytics lost for `fact`, judging by grading's outcome `o`, and their kind.
fn lost_events(fact: &Checked, o: &gpb::SessionOutcome) -> Option<(&'static str, Vec<ev::Event>)> {
    let org = names::parse_child(&fact.session, "sessions")?.0;
    let at = o.graded_time;
    let event = |id: String, payload: Payload| ev::Event {
        event_id: id,
        organization: names::organization_name(org),
        occur_time: at,
        payload: Some(payload),
        ..Default::default()
    };
    let failed = |f: &ev::GradingFailed| {
        let job = f.grading_job.rsplit('/').next().unwrap_or_default();
        ev::Event {
            occur_time: Some(salestrainer_runtime::time::timestamp(now_us())),
            ..event(
                format!("reconciled-failed-{job}"),
                Payload::GradingFailed(f.clone()),
            )
        }
    };
    let Some(graded) = &o.graded else {
        // Never graded: a dead job is the outcome analytics lacks.
        return match &o.failed {
            Some(f) if fact.evaluation.is_empty() && o.job_state == JobState::Dead as i32 => {
                Some(("grading_failed", vec![failed(f)]))
            }
            _ => None,
        };
    };
    let eval_id = graded.evaluation.rsplit('/').next().unwrap_or_default();
    let overridden = o.overridden.as_ref().map(|x| {
        event(
            format!("reconciled-overridden-{eval_id}-{}", x.revision),
            Payload::EvaluationOverridden(x.clone()),
        )
    });
    if fact.evaluation != graded.evaluation {
        // No grade here, or one a regrade replaced: the current evaluation, as announced.
        let mut events = vec![event(
            format!("reconciled-graded-{eval_id}"),
            Payload::SessionGraded(graded.clone()),
        )];
        events.extend(overridden);
        return Some(("session_graded", events));
    }
    match (&o.overridden, overridden) {
        (Some(x), Some(e)) if x.revision > fact.override_rev => {
            Some(("evaluation_overridden", vec![e]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SESSION: &str = "organizations/acme/sessions/s1";

    fn fact(evaluation: &str, rev: i64) -> Checked {
        Checked {
            session: SESSION.into(),
            org: "acme".into(),
            key: 1,
            end_us: Some(1),
            evaluation: evaluation.into(),
            override_rev: rev,
        }
    }

    fn outcome(evaluation: &str, supersedes: &str, rev: i64) -> gpb::SessionOutcome {
        gpb::SessionOutcome {
            session: SESSION.into(),
            job_state: JobState::Succeeded as i32,
            grading_job: "organizations/acme/gradingJobs/j1".into(),
            graded: Some(ev::SessionGraded {
                session: SESSION.into(),
                evaluation: evaluation.into(),
                supersedes: supersedes.into(),
                overall_score: 80.0,
                ..Default::default()
            }),
            graded_time: Some(salestrainer_runtime::time::timestamp(5)),
            overridden: (rev > 0).then(|| ev::EvaluationOverridden {
                session: SESSION.into(),
                evaluation: evaluation.into(),
                overall_score: 40.0,
                revision: rev,
                ..Default::default()
            }),
            failed: None,
        }
    }

    fn ids(found: Option<(&'static str, Vec<ev::Event>)>) -> Option<(&'static str, Vec<String>)> {
        found.map(|(kind, events)| (kind, events.into_iter().map(|e| e.event_id).collect()))
    }

    const E1: &str = "organizations/acme/evaluations/e1";
    const E2: &str = "organizations/acme/evaluations/e2";

    #[test]
    fn an_ungraded_fact_gets_the_grade_and_its_override() {
        assert_eq!(
            ids(lost_events(&fact("", 0), &outcome(E1, "", 0))),
            Some(("session_graded", vec!["reconciled-graded-e1".into()]))
        );
        assert_eq!(
            ids(lost_events(&fact("", 0), &outcome(E1, "", 2))),
            Some((
                "session_graded",
                vec![
                    "reconciled-graded-e1".into(),
                    "reconciled-overridden-e1-2".into()
                ]
            ))
        );
    }

    #[test]
    fn a_missed_regrade_or_override_is_found_and_nothing_else() {
        assert_eq!(
            ids(lost_events(&fact(E1, 0), &outcome(E2, E1, 0))),
            Some(("session_graded", vec!["reconciled-graded-e2".into()]))
        );
        assert_eq!(
            ids(lost_events(&fact(E1, 1), &outcome(E1, "", 3))),
            Some((
                "evaluation_overridden",
                vec!["reconciled-overridden-e1-3".into()]
            ))
        );
        // Up to date (or ahead, the override's event came first): nothing.
        assert_eq!(ids(lost_events(&fact(E1, 3), &outcome(E1, "", 3))), None);
        assert_eq!(ids(lost_events(&fact(E1, 0), &outcome(E1, "", 0))), None);
    }

    #[test]
    fn a_dead_job_without_evaluation_is_a_failure_and_a_running_one_nothing() {
        let mut o = gpb::SessionOutcome {
            session: SESSION.into(),
            job_state: JobState::Dead as i32,
            grading_job: "organizations/acme/gradingJobs/j9".into(),
            failed: Some(ev::GradingFailed {
                session: SESSION.into(),
                grading_job: "organizations/acme/gradingJobs/j9".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            ids(lost_events(&fact("", 0), &o)),
            Some(("grading_failed", vec!["reconciled-failed-j9".into()]))
        );
        o.job_state = JobState::Running as i32;
        o.failed = None;
        assert_eq!(ids(lost_events(&fact("", 0), &o)), None);
    }

    #[test]
    fn what_it_applies_passes_the_event_checks() {
        let (_, events) = lost_events(&fact("", 0), &outcome(E1, "", 1)).unwrap();
        for e in &events {
            assert!(parse(e, "").is_ok(), "{e:?}");
        }
    }
}
