//! Start-up shared by every binary: settings, telemetry, auth keys, and the run loop that
//! serves mounted services while their start-up tasks (connect, migrate) finish.

use std::{future::Future, pin::Pin, sync::Arc};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;

use crate::{
    Ready, Settings,
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
    /// Mints service identities (and dev tokens); present when an HS256 secret is in use.
    pub minter: Option<TokenMinter>,
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
    let verifier = Arc::new(JwtVerifier::from_settings(&settings.auth, Some(&secret))?);
    let minter = Some(TokenMinter::new(&secret, &settings.auth.issuer));
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

/// Binds, runs every starter in the background and serves until SIGTERM/SIGINT.
pub async fn run(
    server: ServerBuilder,
    starters: Vec<Starter>,
    listener: TcpListener,
) -> anyhow::Result<()> {
    run_until(server, starters, listener, crate::server::shutdown_signal()).await
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
