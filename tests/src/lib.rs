//! `spawn_app()`: the whole suite on `127.0.0.1:0` with a fresh data directory (and, when
//! asked, fresh PostgreSQL databases), for end-to-end tests over real connections.

pub mod cluster;
pub mod otlp;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use salestrainer_runtime::{
    Context, Role, Settings, app,
    auth::{JwtVerifier, TokenMinter},
    server::ServerBuilder,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub const TEST_SECRET: &[u8] = b"test-secret-of-the-suite-32-bytes-long";

/// PostgreSQL server URL without a database (`SALESTRAINER_TEST_POSTGRES_URL` overrides).
pub fn postgres_server_url() -> String {
    std::env::var("SALESTRAINER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database URL template with a unique prefix, one database per service.
pub fn fresh_postgres_template() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}/st_{}_{{service}}", postgres_server_url(), &id[..12])
}

/// Redis for tests (`SALESTRAINER_TEST_REDIS_URL` overrides).
pub fn redis_url() -> String {
    std::env::var("SALESTRAINER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where a test's services keep their tables. Every service's tests run on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per service in the test's own data directory.
    Sqlite,
    /// Fresh databases on the test PostgreSQL server, one per service.
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// The `database_url` setting for this backend: empty (SQLite under the data directory)
    /// or a fresh PostgreSQL template.
    pub fn database_url(self) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres => fresh_postgres_template(),
        }
    }

    /// A fresh database of one service, connected and migrated, for store-level tests.
    pub async fn fresh_database<M: sea_orm_migration::MigratorTrait>(
        self,
        service: &str,
        dir: &std::path::Path,
    ) -> sea_orm::DatabaseConnection {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            database_url: self.database_url(),
            ..Settings::default()
        };
        salestrainer_runtime::db::connect_and_migrate::<M>(&settings.database_url_for(service))
            .await
            .expect("a test database (is PostgreSQL up?)")
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    pub minter: TokenMinter,
    pub settings: Settings,
    /// What the services were mounted with: the bus, peer channels.
    pub ctx: Context,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub fn token(&self, role: Role, subject: &str, org: &str) -> String {
        self.minter
            .mint(subject, org, role, 3600)
            .expect("mint token")
    }

    pub fn service_token(&self, service: &str) -> String {
        self.minter
            .service_token(service)
            .expect("mint service token")
    }

    /// Stops the server (graceful drain) and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings of a test suite: a temp data dir, the test secret, no admin port.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        data_dir: data_dir.to_path_buf(),
        admin_listen: None,
        ..Settings::default()
    };
    settings.auth.dev_secret = String::from_utf8_lossy(TEST_SECRET).into_owned();
    settings.server.drain_deadline_ms = 2_000;
    settings
}

/// Starts the suite; `customize` may change settings (database URL, limits) first.
/// Does not wait for readiness: see [`wait_serving`].
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_mounted(customize, |server, ctx| {
        Box::pin(salestrainer::mount_all(server, ctx))
    })
    .await
}

/// Starts the suite on embedded defaults and waits until every service is SERVING.
pub async fn spawn_app() -> TestApp {
    let app = spawn_app_with(|_| {}).await;
    wait_serving(&app, "", Duration::from_secs(30)).await;
    app
}

pub async fn health(app: &TestApp, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(app.channel.clone());
    let resp = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(resp.into_inner().status).ok()
}

/// Waits until `service` ("" = all) reports SERVING, or panics after `limit`.
pub async fn wait_serving(app: &TestApp, service: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if health(app, service).await == Some(ServingStatus::Serving) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service:?} not SERVING within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Adds `authorization: Bearer …` to a request.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    req
}

/// The gRPC service names the suite must expose.
pub const SERVICES: [&str; 4] = [
    "salestrainer.config.v1.ConfigService",
    "salestrainer.call.v1.CallService",
    "salestrainer.grading.v1.GradingService",
    "salestrainer.analytics.v1.AnalyticsService",
];

/// Starts what `mount` mounts on `127.0.0.1:0` with a fresh data directory; `customize` may
/// change settings (database URL, limits) first. Does not wait for readiness.
pub async fn spawn_mounted(
    customize: impl FnOnce(&mut Settings),
    mount: impl for<'a> FnOnce(
        &'a mut ServerBuilder,
        &'a Context,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Vec<app::Starter>> + Send + 'a>,
    >,
) -> TestApp {
    salestrainer_runtime::install_crypto_provider();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(data_dir.path());
    customize(&mut settings);
    let verifier = Arc::new(JwtVerifier::new(Some(TEST_SECRET), &[], "").expect("verifier"));
    let mut server = ServerBuilder::new(settings.server.clone(), verifier).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let minter = TokenMinter::new(TEST_SECRET, "");
    let ctx = Context::new(settings.clone(), minter.clone(), addr).expect("context");
    let starters = mount(&mut server, &ctx).await;
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let result = app::run_until(server, starters, listener, async move {
                let _ = rx.await;
            })
            .await;
            ctx.shutdown.cancel();
            result
        }
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    TestApp {
        addr,
        channel,
        minter,
        ctx,
        settings,
        shutdown: Some(tx),
        handle: Some(handle),
        _data_dir: data_dir,
    }
}

/// Starts only the service `S`, with explicit settings of its section (a service's own
/// tests and benches). Does not wait for readiness: see [`wait_serving`].
pub async fn spawn_service_with<S: salestrainer_runtime::service::Service>(
    customize: impl FnOnce(&mut Settings),
    settings: S::Settings,
) -> TestApp {
    spawn_mounted(customize, move |server, ctx| {
        Box::pin(async move {
            vec![salestrainer_runtime::service::mount_with::<S>(server, ctx, settings).await]
        })
    })
    .await
}

/// The databases of the whole suite, one per service (what `drop_postgres_databases` takes
/// after a test of the whole suite).
pub const DATABASES: [&str; 4] = cluster::SERVICE_NAMES;

/// Drops the PostgreSQL databases a [`Backend::Postgres`] template made for `services`
/// (the test server's disk is shared); nothing for SQLite.
pub async fn drop_postgres_databases(database_url: &str, services: &[&str]) {
    use sea_orm::ConnectionTrait;
    if !database_url.starts_with("postgres") {
        return;
    }
    let Ok(admin) = sea_orm::Database::connect(format!("{}/postgres", postgres_server_url())).await
    else {
        return;
    };
    for service in services {
        let url = database_url.replace("{service}", service);
        if let Some((_, name)) = url.rsplit_once('/') {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    let _ = admin.close().await;
}

/// Creates `organizations/{org}` (if missing) and binds each `(subject, role)` as a member,
/// through the config service's own API with a service identity: every service checks a
/// caller's stored membership, so a test's users must exist there.
pub async fn seed_organization(app: &TestApp, org: &str, members: &[(&str, Role)]) {
    use salestrainer_proto::config as cfg;
    let service = app.service_token("tests");
    let mut client = cfg::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let created = client
        .create_organization(authed(
            cfg::CreateOrganizationRequest {
                organization: Some(cfg::Organization {
                    display_name: org.to_owned(),
                    ..Default::default()
                }),
                organization_id: org.to_owned(),
            },
            &service,
        ))
        .await;
    if let Err(status) = created {
        assert_eq!(
            status.code(),
            tonic::Code::AlreadyExists,
            "create organization {org}: {status:?}"
        );
    }
    for (subject, role) in members {
        let role = match role {
            Role::Admin => cfg::Role::Admin,
            Role::Manager => cfg::Role::Manager,
            Role::Trainee | Role::Service => cfg::Role::Trainee,
        };
        let created = client
            .create_member(authed(
                cfg::CreateMemberRequest {
                    parent: format!("organizations/{org}"),
                    member: Some(cfg::Member {
                        subject: (*subject).to_owned(),
                        display_name: (*subject).to_owned(),
                        role: role as i32,
                        ..Default::default()
                    }),
                    member_id: String::new(),
                },
                &service,
            ))
            .await;
        if let Err(status) = created {
            assert_eq!(
                status.code(),
                tonic::Code::AlreadyExists,
                "member {subject}: {status:?}"
            );
        }
    }
}
