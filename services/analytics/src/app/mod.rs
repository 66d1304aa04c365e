//! The analytics service's use cases: the summaries (`summaries`, `progress`, `usage`),
//! events in (`ingest`: the bus consumers and IngestEvents), and what they share — the
//! service object below, the summary cache, the config lookups and the settings.

pub mod config_lookup;
pub mod ingest;
mod messages;
pub mod progress;
pub mod reports;
mod request_checks;
pub mod settings;
pub mod summaries;
pub mod summary_cache;
pub mod usage;

use prost::Message;
use salestrainer_runtime::{ApiError, ApiResult, Principal, Ready};
use sea_orm::DatabaseConnection;

use crate::{domain::events::Parsed, store};
use config_lookup::ConfigLookup;
use request_checks::{db_err, is_trainee, own_member};
use settings::AnalyticsSettings;
use summary_cache::SummaryCache;

/// What the RPCs and the consumers share.
pub struct AnalyticsApp {
    pub db: Ready<DatabaseConnection>,
    pub cache: SummaryCache,
    pub config: ConfigLookup,
    pub settings: AnalyticsSettings,
}

impl AnalyticsApp {
    /// Applies events atomically, then moves the cache version of every organization they
    /// changed and drops config lookups they made stale.
    pub async fn ingest(&self, events: &[Parsed]) -> ApiResult<store::ingest::Outcome> {
        let db = self.db.get()?;
        let out = store::ingest::apply(db, events)
            .await
            .map_err(ApiError::internal)?;
        for org in &out.orgs {
            self.cache.bump(org).await;
        }
        for e in events {
            if let crate::domain::events::Body::Name { resource, .. } = &e.body {
                self.config.invalidate(resource);
            }
        }
        Ok(out)
    }

    /// Answers from the cache, else computes, stores and answers.
    pub(crate) async fn cached<T, F>(&self, org: &str, key: String, compute: F) -> ApiResult<T>
    where
        T: Message + Default,
        F: std::future::Future<Output = ApiResult<T>>,
    {
        let cache = &self.cache;
        let key = cache.key(org, &key).await;
        if let Some(k) = &key
            && let Some(bytes) = cache.get(k).await
            && let Ok(hit) = T::decode(bytes.as_slice())
        {
            return Ok(hit);
        }
        let value = compute.await?;
        if let Some(k) = key {
            cache.put(k, value.encode_to_vec()).await;
        }
        Ok(value)
    }

    pub(crate) async fn ensure_member(&self, p: &Principal, member: &str) -> ApiResult<()> {
        if is_trainee(p) && member == own_member(p) {
            // A trainee without any session yet still gets an (empty) answer.
            return Ok(());
        }
        let db = self.db.get()?;
        if store::query::member_known(db, member)
            .await
            .map_err(db_err)?
        {
            Ok(())
        } else {
            Err(ApiError::NotFound(member.to_owned()))
        }
    }
}
