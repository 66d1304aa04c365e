//! The reconciler: repairs sessions accepted as ended whose grading never showed up here,
//! because an event was lost on the way (a Redis that restarted without persistence loses
//! what it held). Every `reconcile_interval`, each session ENDED or GRADING and unchanged for
//! longer than `reconcile_after_secs` is handed to grading's idempotent SubmitSession, as the
//! call service; grading answers with the session's one job, created now only if it had none:
//!
//! - created now: its SessionEnded never reached grading (`kind="session_ended"`);
//! - SUCCEEDED: grading's SessionGraded never reached us; the evaluation is read from grading
//!   and the session becomes GRADED (`kind="session_graded"`);
//! - DEAD: likewise GradingFailed; the session becomes FAILED (`kind="grading_failed"`);
//! - started but the session still ENDED: GradingStarted was lost (`kind="grading_started"`).
//!
//! It also re-checks, [`RECHECK_PAGES`] pages a round resumed where the previous round
//! stopped, the GRADED sessions last changed between [`RECHECK_FACTOR`] × `reconcile_after_secs`
//! (a day by default) and `reconcile_after_secs` ago, asking grading's internal
//! BatchGetSessionOutcomes (100 sessions a call) for each one's current evaluation:
//!
//! - another evaluation than the session's: a regrade's SessionGraded never reached us; the
//!   session takes it, with its override if any (`kind="session_regraded"`);
//! - the same evaluation at a higher override revision: its EvaluationOverridden never
//!   reached us (`kind="evaluation_overridden"`).
//!
//! Overrides of sessions graded before the window are not looked for.
//!
//! Counted in `reconciler_repaired_total{kind}`, only when the session changed. Safe on
//! several replicas and next to the events themselves: SubmitSession creates at most one job
//! per session, and `store::apply_grading` (the events' path) ignores an outcome applied
//! twice, an evaluation already held at no newer revision, and an older override. An override
//! whose event is still on its way when the re-check runs is counted as repaired.

use std::sync::Arc;

use salestrainer_proto::grading::{
    self as gpb, JobState, grading_service_client::GradingServiceClient,
};
use salestrainer_runtime::{
    Context, Peer,
    context::ServiceAuth,
    db::begin_write,
    names,
    time::{duration, now_us, timestamp},
};
use tonic::{codegen::InterceptedService, transport::Channel};

use super::CallApp;
use crate::store::{self, GradingUpdate, session};

type Grading = GradingServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Sessions looked at per page, and per BatchGetSessionOutcomes call.
pub const PAGE: u64 = 100;
/// Pages of GRADED sessions re-checked per round.
pub const RECHECK_PAGES: usize = 3;
/// GRADED sessions are re-checked while their last change is younger than this many times
/// `reconcile_after_secs`.
pub const RECHECK_FACTOR: u32 = 1440;

/// Starts the reconciler; stopped by the context's shutdown token.
pub fn spawn_reconciler(core: Arc<CallApp>, ctx: &Context) -> anyhow::Result<()> {
    let grading = GradingServiceClient::with_interceptor(
        ctx.peer_channel(Peer::Grading)?,
        ctx.service_auth(crate::SERVICE),
    );
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(core.settings.reconcile_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Where the re-check of graded sessions stopped.
        let mut recheck: After = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = reconcile_once(&core, &grading).await {
                tracing::warn!(error = %e, "session reconciliation failed");
            }
            if let Err(e) = recheck_graded(&core, &grading, &mut recheck).await {
                tracing::warn!(error = %e, "re-check of graded sessions failed; trying again next round");
            }
        }
    });
    Ok(())
}

/// What one round repaired, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    pub session_ended: u64,
    pub session_graded: u64,
    pub grading_failed: u64,
    pub grading_started: u64,
    pub session_regraded: u64,
    pub evaluation_overridden: u64,
}

/// One round over every unsettled session older than the bound. A session grading cannot
/// answer for now (it is down) is left for the next round.
pub async fn reconcile_once(core: &CallApp, grading: &Grading) -> anyhow::Result<Repaired> {
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    let bound = i64::try_from(core.settings.reconcile_after().as_micros()).unwrap_or(i64::MAX);
    let cutoff = now_us().saturating_sub(bound);
    let mut repaired = Repaired::default();
    let mut after = None;
    loop {
        let page = store::unsettled_sessions(db, cutoff, after.clone(), PAGE).await?;
        let n = page.len();
        for m in &page {
            match reconcile_session(core, grading.clone(), m).await {
                Ok(Some(kind)) => {
                    salestrainer_runtime::metrics::count_repaired(kind, 1);
                    tracing::info!(session = %m.id, kind, "reconciler repaired a session");
                    match kind {
                        "session_ended" => repaired.session_ended += 1,
                        "session_graded" => repaired.session_graded += 1,
                        "grading_failed" => repaired.grading_failed += 1,
                        "grading_started" => repaired.grading_started += 1,
                        _ => {}
                    }
                }
                Ok(None) => {}
                Err(status) => {
                    tracing::warn!(session = %m.id, code = ?status.code(), message = status.message(),
                        "reconciler: grading did not answer; trying again next round");
                }
            }
        }
        match page.last() {
            Some(last) if n as u64 == PAGE => after = Some((last.update_us, last.id.clone())),
            _ => return Ok(repaired),
        }
    }
}

/// Reconciles one session with grading; returns what was repaired.
async fn reconcile_session(
    core: &CallApp,
    mut grading: Grading,
    m: &session::Model,
) -> Result<Option<&'static str>, tonic::Status> {
    let submitted = grading
        .submit_session(gpb::SubmitSessionRequest {
            session: store::session_name(m),
            organization: names::organization_name(&m.organization),
            scenario: m.scenario.clone(),
            rubric: m.rubric.clone(),
            trainee: m.trainee.clone(),
            assignment: m.assignment.clone(),
            // Stable, so repeated rounds and replicas name the same request.
            request_id: format!("reconcile-{}", m.id),
            // What SessionEnded would have told grading, so the grade reaches analytics dated,
            // timed and counted under its source.
            session_start_time: Some(timestamp(m.start_us)),
            session_duration: m.duration_ms.map(duration),
            source: m.source,
        })
        .await?
        .into_inner();
    if !submitted.already_submitted {
        return Ok(Some("session_ended"));
    }
    let Some(job) = submitted.grading_job else {
        return Ok(None);
    };
    let ended = m.state == store::state_code(crate::domain::session::SessionState::Ended);
    let (update, kind) = match JobState::try_from(job.state) {
        Ok(JobState::Succeeded) if !job.evaluation.is_empty() => {
            let e = grading
                .get_evaluation(gpb::GetEvaluationRequest {
                    name: job.evaluation.clone(),
                })
                .await?
                .into_inner()
                .evaluation
                .ok_or_else(|| tonic::Status::internal("grading returned no evaluation"))?;
            (
                // The score the evaluation counts now: a manager's override included.
                GradingUpdate::Graded {
                    evaluation: e.name,
                    score: e.effective_score,
                    passed: e.effective_passed,
                    closed: e.closed,
                    revision: e.override_revision,
                },
                "session_graded",
            )
        }
        Ok(JobState::Dead) => (GradingUpdate::Failed, "grading_failed"),
        Ok(JobState::Running | JobState::Retrying) if ended => {
            (GradingUpdate::Started, "grading_started")
        }
        // Queued, or GRADING and still under way: nothing lost, grading's events will come.
        _ => return Ok(None),
    };
    let db = core.db().map_err(tonic::Status::from)?;
    let applied = async {
        let txn = begin_write(db).await?;
        let changed = store::apply_grading(&txn, &m.id, &update).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(changed)
    }
    .await
    .map_err(|e| tonic::Status::internal(format!("applying grading's outcome: {e}")))?;
    Ok(applied.map(|changed| {
        core.changed(&changed, false);
        kind
    }))
}

/// A page position of the re-check: the (update_us, id) of the last session of the previous
/// page; `None` starts the sweep over.
pub type After = Option<(i64, String)>;

/// One round of the re-check of GRADED sessions: up to [`RECHECK_PAGES`] pages from where
/// the previous round stopped (`after`). Pages grading cannot answer for now are left for
/// the next round.
pub async fn recheck_graded(
    core: &CallApp,
    grading: &Grading,
    after: &mut After,
) -> anyhow::Result<Repaired> {
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    let bound = core.settings.reconcile_after();
    let now = now_us();
    let cutoff = now.saturating_sub(micros(bound));
    let from = now.saturating_sub(micros(bound.saturating_mul(RECHECK_FACTOR)));
    let mut repaired = Repaired::default();
    for _ in 0..RECHECK_PAGES {
        let page = store::graded_sessions(db, from, cutoff, after.clone(), PAGE).await?;
        let full = page.len() as u64 == PAGE;
        let last = page.last().map(|m| (m.update_us, m.id.clone()));
        recheck_page(core, grading.clone(), &page, &mut repaired).await?;
        // Only once the page is done: a failed one is tried again next round.
        *after = if full { last } else { None };
        if after.is_none() {
            break;
        }
    }
    Ok(repaired)
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Asks grading about one page of GRADED sessions and applies what is newer there.
async fn recheck_page(
    core: &CallApp,
    mut grading: Grading,
    page: &[session::Model],
    repaired: &mut Repaired,
) -> anyhow::Result<()> {
    if page.is_empty() {
        return Ok(());
    }
    let outcomes = grading
        .batch_get_session_outcomes(gpb::BatchGetSessionOutcomesRequest {
            sessions: page.iter().map(store::session_name).collect(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("grading: {:?} {}", s.code(), s.message()))?
        .into_inner()
        .outcomes;
    if outcomes.len() != page.len() {
        anyhow::bail!(
            "grading answered {} outcomes for {} sessions",
            outcomes.len(),
            page.len()
        );
    }
    let db = core.db().map_err(|e| anyhow::anyhow!("{e}"))?;
    for (m, o) in page.iter().zip(&outcomes) {
        let name = store::session_name(m);
        if o.session != name {
            anyhow::bail!("grading answered for {} in place of {name}", o.session);
        }
        let Some((kind, update)) = missed_update(m, o) else {
            continue;
        };
        let txn = begin_write(db).await?;
        let changed = store::apply_grading(&txn, &m.id, &update).await?;
        txn.commit().await?;
        // The real event (or another replica) may have come first.
        let Some(changed) = changed else { continue };
        core.changed(&changed, false);
        salestrainer_runtime::metrics::count_repaired(kind, 1);
        tracing::info!(session = %m.id, kind, "reconciler repaired a graded session");
        if kind == "session_regraded" {
            repaired.session_regraded += 1;
        } else {
            repaired.evaluation_overridden += 1;
        }
    }
    Ok(())
}

/// What a GRADED session `m` missed, judging by grading's outcome `o`: a regrade (with its
/// override, if any), or an override of its evaluation at a higher revision; `None` when it
/// is up to date (or grading has no evaluation for it).
fn missed_update(
    m: &session::Model,
    o: &gpb::SessionOutcome,
) -> Option<(&'static str, GradingUpdate)> {
    let graded = o.graded.as_ref()?;
    let overridden = o
        .overridden
        .as_ref()
        .filter(|x| x.evaluation == graded.evaluation);
    if graded.evaluation != m.evaluation {
        // The score the evaluation counts now: a manager's override included.
        let (score, passed, closed, revision) = match overridden {
            Some(x) => (x.overall_score, x.passed, x.closed, x.revision),
            None => (graded.overall_score, graded.passed, graded.closed, 0),
        };
        return Some((
            "session_regraded",
            GradingUpdate::Graded {
                evaluation: graded.evaluation.clone(),
                score,
                passed,
                closed,
                revision,
            },
        ));
    }
    let x = overridden.filter(|x| x.revision > m.score_revision)?;
    Some((
        "evaluation_overridden",
        GradingUpdate::Overridden {
            evaluation: x.evaluation.clone(),
            score: x.overall_score,
            passed: x.passed,
            revision: x.revision,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use salestrainer_proto::events as ev;

    const E1: &str = "organizations/acme/evaluations/e1";
    const E2: &str = "organizations/acme/evaluations/e2";

    fn session(evaluation: &str, revision: i64) -> session::Model {
        session::Model {
            id: "s1".into(),
            organization: "acme".into(),
            evaluation: evaluation.into(),
            overall_score: 80.0,
            score_revision: revision,
            ..Default::default()
        }
    }

    fn outcome(evaluation: &str, revision: i64) -> gpb::SessionOutcome {
        gpb::SessionOutcome {
            session: "organizations/acme/sessions/s1".into(),
            graded: Some(ev::SessionGraded {
                evaluation: evaluation.into(),
                overall_score: 80.0,
                passed: true,
                ..Default::default()
            }),
            overridden: (revision > 0).then(|| ev::EvaluationOverridden {
                evaluation: evaluation.into(),
                overall_score: 40.0,
                passed: false,
                revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_missed_override_is_found_once() {
        let (kind, update) = missed_update(&session(E1, 1), &outcome(E1, 2)).unwrap();
        assert_eq!(kind, "evaluation_overridden");
        assert!(matches!(
            update,
            GradingUpdate::Overridden { score, revision: 2, .. } if score == 40.0
        ));
        assert!(missed_update(&session(E1, 2), &outcome(E1, 2)).is_none());
        assert!(missed_update(&session(E1, 3), &outcome(E1, 2)).is_none());
        assert!(missed_update(&session(E1, 0), &outcome(E1, 0)).is_none());
    }

    #[test]
    fn a_missed_regrade_brings_its_override() {
        let (kind, update) = missed_update(&session(E1, 2), &outcome(E2, 0)).unwrap();
        assert_eq!(kind, "session_regraded");
        assert!(matches!(
            &update,
            GradingUpdate::Graded { evaluation, score, revision: 0, passed: true, .. }
                if evaluation == E2 && *score == 80.0
        ));
        let (_, update) = missed_update(&session(E1, 0), &outcome(E2, 1)).unwrap();
        assert!(matches!(
            &update,
            GradingUpdate::Graded { score, revision: 1, passed: false, .. } if *score == 40.0
        ));
    }

    #[test]
    fn nothing_without_an_evaluation() {
        let o = gpb::SessionOutcome {
            session: "organizations/acme/sessions/s1".into(),
            ..Default::default()
        };
        assert!(missed_update(&session(E1, 0), &o).is_none());
    }
}
