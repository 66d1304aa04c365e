//! A server with only the analytics service on 127.0.0.1:0, over SQLite or a fresh
//! PostgreSQL database (which must be up: these tests fail rather than skip without it).

#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use salestrainer_analytics::app::settings::AnalyticsSettings;
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::{
    Context, Role, Settings, app,
    auth::{JwtVerifier, TokenMinter},
    server::ServerBuilder,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const SECRET: &[u8] = b"analytics-test-secret";

pub type Client = pb::analytics_service_client::AnalyticsServiceClient<Channel>;

pub struct Harness {
    pub channel: Channel,
    pub minter: TokenMinter,
    pub ctx: Context,
    /// The PostgreSQL database to drop at [`Harness::finish`].
    database: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> String {
    let server = std::env::var("SALESTRAINER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{server}/st_analytics_{}", &id[..12])
}

pub async fn spawn(backend: Backend) -> Harness {
    salestrainer_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        admin_listen: None,
        ..Settings::default()
    };
    settings.auth.dev_secret = String::from_utf8_lossy(SECRET).into_owned();
    settings.database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/analytics.db?mode=rwc", dir.path().display()),
        Backend::Postgres => postgres_url(),
    };
    let database = matches!(backend, Backend::Postgres).then(|| settings.database_url.clone());
    let verifier = Arc::new(JwtVerifier::new(Some(SECRET), &[], "").expect("verifier"));
    let mut server = ServerBuilder::new(settings.server.clone(), verifier).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let minter = TokenMinter::new(SECRET, "");
    let ctx = Context::new(settings.clone(), minter.clone(), addr).expect("context");
    let starter =
        salestrainer_analytics::mount_with(&mut server, &ctx, AnalyticsSettings::default()).await;
    let (tx, rx) = oneshot::channel::<()>();
    {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = app::run_until(server, vec![starter], listener, async move {
                let _ = rx.await;
            })
            .await;
            ctx.shutdown.cancel();
        });
    }
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    let harness = Harness {
        channel,
        minter,
        ctx,
        database,
        stop: Some(tx),
        _dir: dir,
    };
    harness.wait_serving().await;
    harness
}

impl Harness {
    /// Stops the server and drops its PostgreSQL database (disk is shared and small).
    pub async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let Some(url) = self.database.take() else {
            return;
        };
        let Some((server, name)) = url.rsplit_once('/') else {
            return;
        };
        use sea_orm::ConnectionTrait;
        if let Ok(admin) = sea_orm::Database::connect(format!("{server}/postgres")).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    }

    async fn wait_serving(&self) {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut client = HealthClient::new(self.channel.clone());
            let status = client
                .check(HealthCheckRequest {
                    service: "salestrainer.analytics.v1.AnalyticsService".into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner().status);
            if status == Some(ServingStatus::Serving as i32) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "analytics not SERVING within 20s (is PostgreSQL up at 127.0.0.1:5432?)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.channel.clone())
    }

    pub fn token(&self, role: Role, subject: &str, org: &str) -> String {
        self.minter.mint(subject, org, role, 3600).expect("token")
    }

    pub fn service(&self) -> String {
        self.minter.service_token("grading").expect("token")
    }

    pub async fn ingest(&self, events: Vec<ev::Event>) -> pb::IngestEventsResponse {
        self.client()
            .ingest_events(authed(pb::IngestEventsRequest { events }, &self.service()))
            .await
            .expect("ingest")
            .into_inner()
    }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

pub fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
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
        }),
    )
}
