//! The description every service fills in, and the one way it is mounted. A service says its
//! name (database, logs, metrics, settings section), its settings, its migrator, how to build
//! its service object, which gRPC services and HTTP routes it serves, and what starts once its
//! database is migrated (consumers, background tasks). Mounting, health, migrations before
//! SERVING and message limits are written here once, and the same path serves a service's own
//! binary, `salestrainer up` and the tests.

use std::{future::Future, sync::Arc};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::{
    Context, Ready,
    app::Starter,
    server::{Readiness, ServerBuilder},
};

pub trait Service: Send + Sync + Sized + 'static {
    /// `config`, `call`, `grading`, `analytics`: the database, the settings section
    /// (`[call]` in the TOML file, `SALESTRAINER_CALL__*`), logs and metrics.
    const NAME: &'static str;
    type Settings: DeserializeOwned + Default + Send + 'static;
    type Migrator: MigratorTrait;

    /// The service object, before its database is ready (no I/O).
    fn build(
        ctx: &Context,
        settings: Self::Settings,
        db: Ready<DatabaseConnection>,
    ) -> anyhow::Result<Arc<Self>>;

    /// Its gRPC services, HTTP routes and internal methods.
    fn routes(self: &Arc<Self>, routes: &mut Routes<'_>) -> impl Future<Output = ()> + Send;

    /// The membership source of the whole server when this service is mounted on it (the
    /// config service answers from its own store); `None` (the default) keeps the config
    /// client. See [`crate::access`].
    fn memberships(self: &Arc<Self>) -> Option<Arc<dyn crate::access::Memberships>> {
        None
    }

    /// What runs once the database is migrated: the outbox relay, consumers, background tasks.
    /// The service reports SERVING when this returns.
    fn start(
        self: Arc<Self>,
        ctx: &Context,
        db: DatabaseConnection,
    ) -> impl Future<Output = ()> + Send;
}

/// What a service may add to the server.
pub struct Routes<'a> {
    server: &'a mut ServerBuilder,
    grpc: Vec<&'static str>,
}

impl Routes<'_> {
    /// The message size to give tonic's own decoder: above the runtime's limit, which answers
    /// RESOURCE_EXHAUSTED first instead of tonic's OUT_OF_RANGE.
    pub fn decoding_limit(&self) -> usize {
        self.server.settings().max_message_bytes.saturating_mul(2)
    }

    /// A gRPC service; its health is NOT_SERVING until the service started.
    pub async fn grpc<S>(&mut self, svc: S)
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.grpc.push(S::NAME);
        self.server.add_service(svc).await;
    }

    /// Plain HTTP routes under `prefix` that authenticate themselves (webhook signatures).
    pub fn http(&mut self, prefix: &str, router: axum::Router) {
        self.server.add_http_routes(prefix, router);
    }

    /// Public plain HTTP routes (a browser app's page and assets): `router` serves the exact
    /// `paths` and everything under `prefixes` without a token.
    pub fn public_http(&mut self, paths: &[&str], prefixes: &[&str], router: axum::Router) {
        self.server.add_public_http_routes(paths, prefixes, router);
    }

    /// A `/package.Service/Method` path callable only with a service identity.
    pub fn internal(&mut self, path: &str) {
        self.server.internal_method(path);
    }
}

/// Mounts `S` with the settings of its section.
pub async fn mount<S: Service>(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    match ctx.settings.section::<S::Settings>(S::NAME) {
        Ok(settings) => mount_with::<S>(server, ctx, settings).await,
        Err(e) => not_starting(S::NAME, &e),
    }
}

/// Mounts `S` with explicit settings (tests, benchmarks).
pub async fn mount_with<S: Service>(
    server: &mut ServerBuilder,
    ctx: &Context,
    settings: S::Settings,
) -> Starter {
    let db = Ready::new();
    let svc = match S::build(ctx, settings, db.clone()) {
        Ok(svc) => svc,
        Err(e) => return not_starting(S::NAME, &e),
    };
    // Every user request of every service is checked against the stored membership. A
    // service with its own source (config, whose store holds the memberships) serves the
    // whole server; otherwise the first service mounted installs the config client for all.
    if let Some(source) = svc.memberships() {
        server.replace_memberships(source);
    } else if !server.has_memberships() {
        match crate::access::ConfigMemberships::start(ctx) {
            Ok(source) => {
                server.memberships(source);
            }
            Err(e) => return not_starting(S::NAME, &e),
        }
    }
    let mut routes = Routes {
        server,
        grpc: Vec::new(),
    };
    svc.routes(&mut routes).await;
    let grpc = routes.grpc;
    let url = ctx.settings.database_url_for(S::NAME);
    let ctx = ctx.clone();
    Box::new(move |readiness: Readiness| {
        Box::pin(async move {
            let conn =
                crate::db::connect_and_migrate_with_retry::<S::Migrator>(S::NAME, &url).await;
            db.set(conn.clone());
            svc.start(&ctx, conn).await;
            for name in grpc {
                readiness.set_serving(name).await;
            }
        })
    })
}

/// A service that cannot be built stays NOT_SERVING instead of taking the process down; only
/// bad settings or a malformed peer endpoint get here, and the log says which.
fn not_starting(service: &'static str, err: &dyn std::fmt::Display) -> Starter {
    tracing::error!(service, error = %err, "service cannot start; it stays NOT_SERVING");
    Box::new(|_| Box::pin(async {}))
}

/// The whole `main` of a single-service binary (distributed mode).
pub async fn serve<S: Service>() -> anyhow::Result<()> {
    let boot = crate::app::bootstrap(S::NAME).await?;
    let mut server = ServerBuilder::new(boot.settings.server.clone(), boot.verifier.clone()).await;
    server.file_descriptor_set(salestrainer_proto::FILE_DESCRIPTOR_SET);
    let listener = TcpListener::bind(boot.settings.listen).await?;
    let ctx = Context::new(
        boot.settings.clone(),
        boot.minter.clone(),
        listener.local_addr()?,
    )?;
    let starter = mount::<S>(&mut server, &ctx).await;
    if let Some(admin) = boot.settings.admin_listen {
        crate::metrics::serve_admin(admin, crate::server::shutdown_signal()).await?;
    }
    tracing::info!(service = S::NAME, address = %listener.local_addr()?, "listening");
    crate::app::run(server, vec![starter], listener, &ctx).await
}
