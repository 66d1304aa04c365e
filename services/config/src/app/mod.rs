//! The config service's use cases: each RPC's checks, transaction, outbox event and cache
//! invalidation, one file per resource group (`organizations` also holds members;
//! personas, scenarios, rubrics and assignments share `content`). `access` resolves the caller,
//! `cache` keeps the read caches, `keys` loads the credential key-encryption key, `settings`
//! holds the `[config]` section. [`ConfigApp`] is also the service's description (its routes
//! and what starts with it).

pub mod access;
pub mod cache;
pub mod certifications;
pub mod content;
pub mod credentials;
pub mod keys;
pub mod organizations;
pub mod settings;
pub mod templates;

use std::sync::Arc;

use salestrainer_bus::{Relay, RelayNotifier};
use salestrainer_proto::config::config_service_server::ConfigServiceServer;
use salestrainer_runtime::{
    ApiResult, Context, Principal, Ready,
    service::{Routes, Service},
};
use sea_orm::DatabaseConnection;

use crate::{api::ConfigServiceApi, domain::crypto::Kek};
use access::Caller;
use cache::ReadCache;
use settings::ConfigSettings;

pub use credentials::TEST_TIMEOUT;

/// What every use case shares.
pub struct ConfigApp {
    db: Ready<DatabaseConnection>,
    /// `None` when no key-encryption key could be loaded: credential use cases then answer
    /// UNAVAILABLE, everything else works.
    kek: Option<Arc<Kek>>,
    http: Option<reqwest::Client>,
    /// Wakes the outbox relay after a write, so ConfigChanged reaches caches at once.
    notifier: RelayNotifier,
    /// Memberships and content rows read per request; every write path invalidates it.
    cache: Arc<ReadCache>,
    /// The browser console's settings where [`Service::routes`] adds it
    /// (`[config] serve_console`).
    console: Option<salestrainer_console::ConsoleSettings>,
    /// `[config] relay_replay_after_loss_secs`.
    relay_replay_after_loss_secs: u64,
}

impl ConfigApp {
    pub fn new(
        db: Ready<DatabaseConnection>,
        kek: Option<Kek>,
        notifier: RelayNotifier,
        cache: Arc<ReadCache>,
    ) -> Self {
        salestrainer_runtime::install_crypto_provider();
        let http = reqwest::Client::builder()
            // A probe must not follow the provider elsewhere with the key.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TEST_TIMEOUT)
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the HTTP client; provider tests will fail"))
            .ok();
        Self {
            db,
            kek: kek.map(Arc::new),
            http,
            notifier,
            cache,
            console: None,
            relay_replay_after_loss_secs: salestrainer_bus::REPLAY_AFTER_LOSS_SECS,
        }
    }

    /// Wakes the relay after a committed write, so its ConfigChanged leaves at once rather
    /// than at the relay's next poll.
    fn committed(&self) {
        self.notifier.notify();
    }

    /// The database and the checked caller.
    async fn context<'p>(
        &self,
        principal: &'p Principal,
    ) -> ApiResult<(&DatabaseConnection, Caller<'p>)> {
        let db = self.db.get()?;
        let caller = Caller::resolve(db, &self.cache, principal).await?;
        Ok((db, caller))
    }
}

impl Service for ConfigApp {
    const NAME: &'static str = crate::SERVICE;
    type Settings = ConfigSettings;
    type Migrator = crate::store::Migrator;

    fn build(
        ctx: &Context,
        settings: ConfigSettings,
        db: Ready<DatabaseConnection>,
    ) -> anyhow::Result<Arc<Self>> {
        // Without a key only the credential use cases fail (UNAVAILABLE); the rest serves.
        let kek = keys::load_kek(&ctx.settings, &settings)
            .map_err(|err| tracing::error!(error = %err, "no key-encryption key: provider credentials are unavailable"))
            .ok();
        let cache = Arc::new(ReadCache::with_ttl_ms(settings.cache_ttl_ms));
        let mut app = Self::new(db, kek, RelayNotifier::new(), cache);
        app.relay_replay_after_loss_secs = settings.relay_replay_after_loss_secs;
        if settings.serve_console {
            let console = ctx
                .settings
                .section::<salestrainer_console::ConsoleSettings>("console")?;
            console.check()?;
            app.console = Some(console);
        }
        Ok(Arc::new(app))
    }

    fn memberships(self: &Arc<Self>) -> Option<Arc<dyn salestrainer_runtime::access::Memberships>> {
        Some(Arc::new(access::StoreMemberships {
            db: self.db.clone(),
            cache: Arc::clone(&self.cache),
        }))
    }

    async fn routes(self: &Arc<Self>, routes: &mut Routes<'_>) {
        let api = ConfigServiceApi::new(Arc::clone(self));
        routes
            .grpc(ConfigServiceServer::new(api).max_decoding_message_size(routes.decoding_limit()))
            .await;
        routes.internal("/salestrainer.config.v1.ConfigService/ResolveProviderCredential");
        if let Some(console) = &self.console {
            // Behind the gateway the console comes from here (Envoy routes `/` to config).
            salestrainer_console::mount(routes, console);
        }
    }

    async fn start(self: Arc<Self>, ctx: &Context, db: DatabaseConnection) {
        // Other replicas' writes reach this one's read cache as events.
        self.cache.spawn_invalidator(ctx);
        // The relay is woken by this service's own commits (`committed`), not only by polling.
        let options = ctx.relay_options(crate::SERVICE, self.relay_replay_after_loss_secs);
        Relay::new(db, ctx.bus.clone(), options)
            .with_notifier(self.notifier.clone())
            .spawn(ctx.shutdown.clone());
    }
}
