//! The config service's use cases: each RPC's checks, transaction, outbox event and cache
//! invalidation, one file per resource group (`organizations` also holds members;
//! personas, scenarios, rubrics and assignments share `content`). `access` resolves the caller,
//! `cache` keeps the read caches, `keys` loads the credential key-encryption key.

pub mod access;
pub mod cache;
pub mod content;
pub mod credentials;
pub mod keys;
pub mod organizations;
pub mod templates;

use std::sync::Arc;

use salestrainer_bus::RelayNotifier;
use salestrainer_runtime::{ApiResult, Principal, Ready};
use sea_orm::DatabaseConnection;

use crate::domain::crypto::Kek;
use access::Caller;
use cache::ReadCache;

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
        }
    }

    /// Wakes the relay after a committed write, so its ConfigChanged leaves at once rather
    /// than at the relay's next poll.
    fn committed(&self) {
        self.notifier.notify();
    }

    /// The database and the checked caller.
    async fn context(&self, principal: &Principal) -> ApiResult<(&DatabaseConnection, Caller)> {
        let db = self.db.get()?;
        let caller = Caller::resolve(db, &self.cache, principal).await?;
        Ok((db, caller))
    }
}
