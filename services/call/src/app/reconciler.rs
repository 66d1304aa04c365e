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
//! Counted in `reconciler_repaired_total{kind}`. Safe on several replicas and next to the
//! events themselves: SubmitSession creates at most one job per session, and the session's
//! state rules ignore an outcome applied twice.

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

/// Sessions looked at per page.
const PAGE: u64 = 100;

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
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = reconcile_once(&core, &grading).await {
                tracing::warn!(error = %e, "session reconciliation failed");
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
                        _ => repaired.grading_started += 1,
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
