//! What analytics needs from the config service and no event carries: an assignment's
//! assignees, due time, required attempts and passing score, and whether an organization
//! shows the leaderboard to trainees. Read through the suite's config client (cached, dropped
//! on ConfigChanged). When config cannot answer, callers fall back to what the read model
//! knows (documented on each use), so these reads answer `None` instead of an error.

use std::sync::Arc;

use salestrainer_config_client::ConfigClient;
use salestrainer_proto::config as pb;
use salestrainer_runtime::{Context, error::peer_is_transient};

pub struct ConfigLookup {
    /// `None` when no client could be built (a malformed endpoint): every read falls back.
    client: Option<Arc<ConfigClient>>,
}

impl ConfigLookup {
    pub fn new(ctx: &Context) -> Self {
        let client = ConfigClient::new(ctx, crate::SERVICE)
            .map_err(|err| tracing::error!(error = %err, "no config client; analytics uses its fallbacks"))
            .ok()
            .map(Arc::new);
        Self { client }
    }

    /// Follows ConfigChanged so cached reads are dropped at once (every replica).
    pub fn spawn_invalidator(&self, ctx: &Context) {
        if let Some(client) = &self.client {
            client.spawn_invalidator(ctx, crate::SERVICE);
        }
    }

    /// The assignment, or `None` when config does not know it or cannot be reached.
    pub async fn assignment(&self, name: &str) -> Option<pb::Assignment> {
        let answer = self.client.as_ref()?.assignment(name).await;
        answer.map_err(|s| no_answer(name, &s)).ok()
    }

    /// The organization's leaderboard setting, or `None` when config cannot say.
    pub async fn leaderboard_visible(&self, org_name: &str) -> Option<bool> {
        let answer = self.client.as_ref()?.organization(org_name).await;
        answer
            .map(|o| {
                o.settings
                    .is_some_and(|s| s.leaderboard_visible_to_trainees)
            })
            .map_err(|s| no_answer(org_name, &s))
            .ok()
    }

    /// Drops whatever is cached for `resource` (a ConfigChanged this service ingested).
    pub fn invalidate(&self, resource: &str) {
        if let Some(client) = &self.client {
            client.invalidate(resource);
        }
    }
}

/// A refusal is expected (the resource is gone); a peer that is down is worth a warning.
fn no_answer(name: &str, status: &tonic::Status) {
    if peer_is_transient(status.code()) {
        tracing::warn!(resource = name, code = ?status.code(), "config unavailable; using the fallback");
    } else {
        tracing::debug!(resource = name, code = ?status.code(), "config has no answer; using the fallback");
    }
}
