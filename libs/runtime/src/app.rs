//! Start-up shared by every binary: settings, telemetry, auth keys, and the run loop that
//! serves mounted services while their start-up tasks (connect, migrate) finish.

use std::{future::Future, pin::Pin, sync::Arc};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;

use crate::{
    Context, Ready, Settings,
    auth::{JwtVerifier, TokenMinter},
    server::{Readiness, ServerBuilder},
    telemetry::Telemetry,
};

/// A stream of results, the item type of every server-streaming RPC.
pub type BoxStream<T> =
    Pin<Box<dyn futures::Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// A service's start-up work, run once the server is listening.
pub type Starter = Box<dyn FnOnce(Readiness) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub struct Bootstrap {
    pub settings: Settings,
    pub telemetry: Telemetry,
    pub verifier: Arc<JwtVerifier>,
    /// Mints service identities (and dev tokens) with the HS256 secret.
    pub minter: TokenMinter,
}

/// Loads settings, installs telemetry and resolves the auth keys. Call inside the runtime.
pub async fn bootstrap(service: &str) -> anyhow::Result<Bootstrap> {
    let settings = Settings::load()?;
    bootstrap_with(service, settings)
}

pub fn bootstrap_with(service: &str, settings: Settings) -> anyhow::Result<Bootstrap> {
    crate::install_crypto_provider();
    let telemetry = crate::telemetry::init(service, &settings.telemetry)?;
    // Production configures RS256 keys and a service secret; embedded mode generates the
    // secret into the data directory so `salestrainer token` can mint matching tokens.
    let secret = crate::auth::dev_secret(&settings.auth, &settings.data_dir)?;
    crate::auth::check_secrets(&settings.auth, &secret)?;
    let verifier = Arc::new(JwtVerifier::from_settings(&settings.auth, &secret)?);
    let minter = TokenMinter::new(&secret, &settings.auth.issuer)
        .with_service_key(&crate::auth::service_key(&settings.auth, &secret));
    Ok(Bootstrap {
        settings,
        telemetry,
        verifier,
        minter,
    })
}

/// The start-up task of a service with one database: connect and migrate (retrying while
/// the database is unreachable), publish the connection, then report SERVING.
pub fn database_starter<M: MigratorTrait>(
    service: &'static str,
    grpc_service: &'static str,
    url: String,
    ready: Ready<DatabaseConnection>,
    then: impl FnOnce(DatabaseConnection) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static,
) -> Starter {
    Box::new(move |readiness: Readiness| {
        Box::pin(async move {
            let db = crate::db::connect_and_migrate_with_retry::<M>(service, &url).await;
            ready.set(db.clone());
            then(db).await;
            readiness.set_serving(grpc_service).await;
        })
    })
}

/// Runs every starter in the background and serves until SIGTERM/SIGINT; then stops the
/// context's background work (relays, consumers).
pub async fn run(
    server: ServerBuilder,
    starters: Vec<Starter>,
    listener: TcpListener,
    ctx: &Context,
) -> anyhow::Result<()> {
    let starters = gate_on_redis(starters, ctx);
    let result = run_until(server, starters, listener, crate::server::shutdown_signal()).await;
    ctx.shutdown.cancel();
    result
}

pub async fn run_until(
    server: ServerBuilder,
    starters: Vec<Starter>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let readiness = server.readiness();
    for start in starters {
        tokio::spawn(start(readiness.clone()));
    }
    server.serve(listener, readiness, shutdown).await
}

/// Mounts a service's API on a server.
pub type MountFn = Box<
    dyn for<'a> FnOnce(
        &'a mut ServerBuilder,
        &'a Context,
    ) -> Pin<Box<dyn Future<Output = Starter> + Send + 'a>>,
>;

/// The whole `main` of a single-service binary (distributed mode).
pub async fn serve_single(service: &'static str, mount: MountFn) -> anyhow::Result<()> {
    let boot = bootstrap(service).await?;
    let mut server = ServerBuilder::new(boot.settings.server.clone(), boot.verifier.clone()).await;
    let listener = TcpListener::bind(boot.settings.listen).await?;
    let ctx = Context::new(
        boot.settings.clone(),
        boot.minter.clone(),
        listener.local_addr()?,
    )?;
    let starter = mount(&mut server, &ctx).await;
    if let Some(admin) = boot.settings.admin_listen {
        crate::metrics::serve_admin(admin, crate::server::shutdown_signal()).await?;
    }
    tracing::info!(service, address = %listener.local_addr()?, "listening");
    run(server, vec![starter], listener, &ctx).await
}

/// In distributed mode, holds every starter until Redis answers, retrying with capped backoff
/// and saying so, so a service whose Redis is down stays NOT_SERVING instead of exiting.
pub fn gate_on_redis(starters: Vec<Starter>, ctx: &Context) -> Vec<Starter> {
    let Some(pool) = ctx.redis.clone() else {
        return starters;
    };
    let ready = Arc::new(tokio::sync::OnceCell::<()>::new());
    starters
        .into_iter()
        .map(|start| {
            let pool = pool.clone();
            let ready = ready.clone();
            let gated: Starter = Box::new(move |readiness| {
                Box::pin(async move {
                    ready.get_or_init(|| wait_for_redis(pool)).await;
                    start(readiness).await;
                })
            });
            gated
        })
        .collect()
}

async fn wait_for_redis(pool: deadpool_redis::Pool) {
    let mut backoff = crate::backoff::Backoff::reconnect();
    loop {
        match crate::redis::ping(&pool).await {
            Ok(()) => {
                tracing::info!("redis ready");
                return;
            }
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(attempt = backoff.attempts(), retry_in_ms = delay.as_millis() as u64, error = %err, "redis unavailable; staying NOT_SERVING and retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
