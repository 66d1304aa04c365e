//! What analytics needs from the config service and no event carries: an assignment's
//! assignees, due time, required attempts and passing score, and whether an organization
//! shows the leaderboard to trainees. Read through the suite's config client (cached, dropped
//! on ConfigChanged). When config cannot answer, assignment reads fall back to what the read
//! model knows (documented on each use) and answer `None`; the leaderboard setting fails
//! closed (see [`ConfigLookup::leaderboard_visible`]).

use std::sync::Arc;

use salestrainer_config_client::ConfigClient;
use salestrainer_proto::config as pb;
use salestrainer_runtime::{ApiError, Context, error::peer_is_transient};

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

    /// The certification's terms: `None` when config does not know it; UNAVAILABLE when
    /// config cannot answer (a standing computed on no terms would be wrong, not stale).
    pub async fn certification(&self, name: &str) -> Result<Option<pb::Certification>, ApiError> {
        let client = self.client.as_ref().ok_or_else(config_unavailable)?;
        match client.certification(name).await {
            Ok(c) => Ok(Some(c)),
            Err(s) if peer_is_transient(s.code()) => {
                no_answer(name, &s);
                Err(config_unavailable())
            }
            Err(s) => {
                no_answer(name, &s);
                Ok(None)
            }
        }
    }

    /// The organization's certifications (`organizations/{id}`).
    pub async fn certifications(&self, org_name: &str) -> Result<Vec<pb::Certification>, ApiError> {
        let client = self.client.as_ref().ok_or_else(config_unavailable)?;
        client.certifications(org_name).await.map_err(|s| {
            no_answer(org_name, &s);
            config_unavailable()
        })
    }

    /// Whether the organization shows the leaderboard to trainees. Fails closed: when config
    /// cannot say, the answer is an error (UNAVAILABLE while config is unreachable, so the
    /// client may retry; PERMISSION_DENIED when config refuses), never "visible".
    pub async fn leaderboard_visible(&self, org_name: &str) -> Result<bool, ApiError> {
        let unavailable = || {
            ApiError::Unavailable(
                "the organization's leaderboard setting cannot be read right now; try again".into(),
            )
        };
        let client = self.client.as_ref().ok_or_else(unavailable)?;
        let answer = client.organization(org_name).await;
        if let Err(s) = &answer {
            no_answer(org_name, s);
        }
        leaderboard_decision(answer.map(|o| o.settings))
    }

    /// Drops whatever is cached for `resource` (a ConfigChanged this service ingested).
    pub fn invalidate(&self, resource: &str) {
        if let Some(client) = &self.client {
            client.invalidate(resource);
        }
    }
}

/// What config's answer about an organization means for a trainee asking for its
/// leaderboard: the setting when config answered, otherwise never "visible".
fn leaderboard_decision(
    answer: Result<Option<pb::OrganizationSettings>, tonic::Status>,
) -> Result<bool, ApiError> {
    match answer {
        Ok(settings) => Ok(settings.is_some_and(|s| s.leaderboard_visible_to_trainees)),
        Err(s) if peer_is_transient(s.code()) => Err(ApiError::Unavailable(
            "the organization's leaderboard setting cannot be read right now; try again".into(),
        )),
        Err(_) => Err(ApiError::PermissionDenied(
            "this organization does not show the leaderboard to trainees".into(),
        )),
    }
}

fn config_unavailable() -> ApiError {
    ApiError::Unavailable("the config service cannot be reached right now; try again".into())
}

/// A refusal is expected (the resource is gone); a peer that is down is worth a warning.
fn no_answer(name: &str, status: &tonic::Status) {
    if peer_is_transient(status.code()) {
        tracing::warn!(resource = name, code = ?status.code(), "config unavailable; using the fallback (the leaderboard stays hidden from trainees)");
    } else {
        tracing::debug!(resource = name, code = ?status.code(), "config has no answer; using the fallback");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn the_leaderboard_fails_closed() {
        let shown = pb::OrganizationSettings {
            leaderboard_visible_to_trainees: true,
            ..Default::default()
        };
        assert!(leaderboard_decision(Ok(Some(shown))).unwrap());
        assert!(!leaderboard_decision(Ok(Some(pb::OrganizationSettings::default()))).unwrap());
        assert!(!leaderboard_decision(Ok(None)).unwrap());
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            let err = leaderboard_decision(Err(Status::new(code, "down"))).unwrap_err();
            assert!(matches!(err, ApiError::Unavailable(_)), "{code:?}: {err:?}");
        }
        for code in [
            Code::NotFound,
            Code::PermissionDenied,
            Code::InvalidArgument,
        ] {
            let err = leaderboard_decision(Err(Status::new(code, "no"))).unwrap_err();
            assert!(
                matches!(err, ApiError::PermissionDenied(_)),
                "{code:?}: {err:?}"
            );
        }
    }
}
