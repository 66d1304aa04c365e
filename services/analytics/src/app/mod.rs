//! The analytics service's use cases: the summaries (`summaries`, `progress`, `usage`,
//! `coaching`), events in (`ingest`: the bus consumers and IngestEvents; `reconciler`: what
//! grading has for facts whose grading event was lost), and what they share — the
//! service object below (also the service's description: its routes and what starts with
//! it), the summary cache, the config lookups and the settings.

pub mod certifications;
pub mod coaching;
pub mod config_lookup;
pub mod drills;
pub mod ingest;
mod messages;
pub mod progress;
pub mod reconciler;
pub mod reports;
mod request_checks;
pub mod settings;
pub mod summaries;
pub mod summary_cache;
pub mod usage;

use std::sync::Arc;

use prost::Message;
use salestrainer_proto::analytics::analytics_service_server::AnalyticsServiceServer;
use salestrainer_runtime::{
    ApiError, ApiResult, Context, Principal, Ready,
    service::{Routes, Service},
};
use sea_orm::DatabaseConnection;

use crate::{api::AnalyticsServiceApi, domain::events::Parsed, store};
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

impl Service for AnalyticsApp {
    const NAME: &'static str = crate::SERVICE;
    type Settings = AnalyticsSettings;
    type Migrator = store::Migrator;

    fn build(
        ctx: &Context,
        settings: AnalyticsSettings,
        db: Ready<DatabaseConnection>,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            db,
            cache: SummaryCache::new(
                settings.cache_ttl(),
                settings.cache_capacity,
                ctx.redis.clone(),
            ),
            config: ConfigLookup::new(ctx),
            settings,
        }))
    }

    async fn routes(self: &Arc<Self>, routes: &mut Routes<'_>) {
        let api = AnalyticsServiceApi::new(Arc::clone(self));
        routes
            .grpc(
                AnalyticsServiceServer::new(api).max_decoding_message_size(routes.decoding_limit()),
            )
            .await;
        routes.internal("/salestrainer.analytics.v1.AnalyticsService/IngestEvents");
    }

    async fn start(self: Arc<Self>, ctx: &Context, db: DatabaseConnection) {
        // Events committed to the outbox (also before a crash) are published from here.
        ctx.start_relay(
            crate::SERVICE,
            db,
            self.settings.relay_replay_after_loss_secs,
        );
        self.config.spawn_invalidator(ctx);
        if self.settings.consume_bus {
            ingest::spawn_consumers(&self, ctx);
        }
        if let Err(e) = reconciler::spawn_reconciler(Arc::clone(&self), ctx) {
            tracing::error!(error = %e, "the analytics reconciler could not start");
        }
    }
}
