//! The config service: organizations, members, provider credentials, personas, scenarios, rubrics, prompt templates, assignments.
//!
//! Rooms:
//! - `api`: the gRPC methods, protobuf in and out, errors to statuses, nothing else;
//! - `app`: the use cases — access checks, transactions, outbox events, cache invalidation;
//! - `domain`: plain Rust with no I/O (validation, names, page tokens, crypto);
//! - `store`: the entities, queries and migrations of the tables this service owns.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;

use salestrainer_bus::{Relay, RelayNotifier, RelayOptions};
use salestrainer_proto::config::config_service_server::ConfigServiceServer;
use salestrainer_runtime::{
    Context, Ready,
    app::{Starter, database_starter},
    server::ServerBuilder,
};

/// The service's name: its database, its logs, its metrics.
pub const SERVICE: &str = "config";

/// Registers the gRPC API on `server` and returns the start-up task that connects to the
/// database, migrates it, starts the outbox relay and reports SERVING.
pub async fn mount(server: &mut ServerBuilder, ctx: &Context) -> Starter {
    let db = Ready::new();
    let kek = match app::keys::load_kek(&ctx.settings) {
        Ok(kek) => Some(kek),
        Err(err) => {
            tracing::error!(error = %err, "no key-encryption key: provider credentials are unavailable");
            None
        }
    };
    let notifier = RelayNotifier::new();
    let cache = std::sync::Arc::new(app::cache::ReadCache::from_env());
    let app = app::ConfigApp::new(db.clone(), kek, notifier.clone(), cache.clone());
    let api = api::ConfigServiceApi::new(app);
    let max = server.settings().max_message_bytes;
    // The runtime enforces the real limit (RESOURCE_EXHAUSTED); tonic's own check must not
    // fire first with OUT_OF_RANGE.
    server
        .add_service(ConfigServiceServer::new(api).max_decoding_message_size(max.saturating_mul(2)))
        .await;
    server.internal_method("/salestrainer.config.v1.ConfigService/ResolveProviderCredential");
    database_starter::<store::Migrator>(
        SERVICE,
        <ConfigServiceServer<api::ConfigServiceApi> as tonic::server::NamedService>::NAME,
        ctx.settings.database_url_for(SERVICE),
        db,
        {
            let ctx = ctx.clone();
            move |db| {
                Box::pin(async move {
                    // Other replicas' writes reach this one's read cache as events.
                    cache.spawn_invalidator(&ctx);
                    Relay::new(db, ctx.bus.clone(), RelayOptions::default())
                        .with_notifier(notifier)
                        .spawn(ctx.shutdown.clone());
                })
            }
        },
    )
}
