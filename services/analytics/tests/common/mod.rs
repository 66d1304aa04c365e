//! A server with only the analytics service on 127.0.0.1:0 (from `salestrainer_tests`), over
//! SQLite or a fresh PostgreSQL database (which must be up: these tests fail rather than skip
//! without it).

#![allow(dead_code)]

use std::time::Duration;

use salestrainer_analytics::app::{AnalyticsApp, settings::AnalyticsSettings};
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::service::mount_with;
use salestrainer_runtime::{Context, Role};
pub use salestrainer_tests::{Backend, authed};
use salestrainer_tests::{
    TestApp, drop_postgres_databases, seed_organization, spawn_mounted, wait_serving,
};
use tonic::transport::Channel;

pub type Client = pb::analytics_service_client::AnalyticsServiceClient<Channel>;

pub struct Harness {
    pub channel: Channel,
    pub ctx: Context,
    app: TestApp,
}

/// Analytics with the config service beside it: every caller's membership is read there.
pub async fn spawn(backend: Backend) -> Harness {
    let app = spawn_mounted(
        |s| s.database_url = backend.database_url(),
        |server, ctx| {
            Box::pin(async move {
                vec![
                    salestrainer_config::mount(server, ctx).await,
                    mount_with::<AnalyticsApp>(server, ctx, AnalyticsSettings::default()).await,
                ]
            })
        },
    )
    .await;
    wait_serving(&app, "", Duration::from_secs(20)).await;
    Harness {
        channel: app.channel.clone(),
        ctx: app.ctx.clone(),
        app,
    }
}

impl Harness {
    /// Stops the server and drops its PostgreSQL database (disk is shared and small).
    pub async fn finish(self) {
        let url = self.app.settings.database_url.clone();
        self.app.stop().await;
        drop_postgres_databases(
            &url,
            &[
                salestrainer_analytics::SERVICE,
                salestrainer_config::SERVICE,
            ],
        )
        .await;
    }

    pub fn client(&self) -> Client {
        Client::new(self.channel.clone())
    }

    /// A token of a member of `org` with `role` (the member is created in config first).
    pub async fn token(&self, role: Role, subject: &str, org: &str) -> String {
        seed_organization(&self.app, org, &[(subject, role)]).await;
        self.app.token(role, subject, org)
    }

    pub fn service(&self) -> String {
        self.app.service_token("grading")
    }

    pub async fn ingest(&self, events: Vec<ev::Event>) -> pb::IngestEventsResponse {
        self.client()
            .ingest_events(authed(pb::IngestEventsRequest { events }, &self.service()))
            .await
            .expect("ingest")
            .into_inner()
    }
}

pub fn ts(us: i64) -> prost_types::Timestamp {
    salestrainer_runtime::time::timestamp(us)
}

pub fn dur_ms(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

pub fn event(id: &str, org: &str, occur_us: i64, payload: ev::event::Payload) -> ev::Event {
    ev::Event {
        event_id: id.to_owned(),
        occur_time: Some(ts(occur_us)),
        organization: format!("organizations/{org}"),
        trace_context: Default::default(),
        producer: "test".into(),
        payload: Some(payload),
    }
}

pub const DAY_US: i64 = 86_400_000_000;
/// 2025-01-01T00:00:00Z.
pub const BASE_US: i64 = 1_735_689_600_000_000;

/// A graded event for a new session (the common fixture).
#[allow(clippy::too_many_arguments)]
pub fn graded(
    id: &str,
    org: &str,
    session: &str,
    trainee: &str,
    start_us: i64,
    score: f64,
    evaluation: &str,
    supersedes: &str,
    occur_us: i64,
) -> ev::Event {
    event(
        id,
        org,
        occur_us,
        ev::event::Payload::SessionGraded(ev::SessionGraded {
            session: format!("organizations/{org}/sessions/{session}"),
            evaluation: format!("organizations/{org}/sessions/{session}/evaluations/{evaluation}"),
            trainee: format!("organizations/{org}/members/{trainee}"),
            scenario: format!("organizations/{org}/scenarios/cold-call"),
            assignment: String::new(),
            session_start_time: Some(ts(start_us)),
            session_duration: Some(dur_ms(60_000)),
            overall_score: score,
            passed: score >= 70.0,
            closed: score >= 80.0,
            skill_scores: vec![ev::SkillScore {
                skill: "discovery".into(),
                score,
            }],
            metrics: None,
            usage: None,
            regrade: !supersedes.is_empty(),
            supersedes: if supersedes.is_empty() {
                String::new()
            } else {
                format!("organizations/{org}/sessions/{session}/evaluations/{supersedes}")
            },
            // The session events say the source.
            source: ev::SessionSource::Unspecified as i32,
            criterion_scores: Vec::new(),
        }),
    )
}
