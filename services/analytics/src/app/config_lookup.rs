//! What analytics needs from the config service and no event carries: an assignment's
//! assignees, due time, required attempts and passing score, and whether an organization
//! shows the leaderboard to trainees. Asked over gRPC with this service's identity, cached
//! briefly and dropped on ConfigChanged. When config cannot answer, callers fall back to
//! what the read model knows (documented on each use).

use std::time::Duration;

use salestrainer_proto::config as pb;
use salestrainer_runtime::{Context, Peer, cache::TtlCache, context::ServiceAuth};
use tonic::{codegen::InterceptedService, transport::Channel};

type Client =
    pb::config_service_client::ConfigServiceClient<InterceptedService<Channel, ServiceAuth>>;

const TIMEOUT: Duration = Duration::from_secs(2);

pub struct ConfigLookup {
    client: Option<Client>,
    assignments: TtlCache<String, Option<pb::Assignment>>,
    leaderboard: TtlCache<String, Option<bool>>,
}

impl ConfigLookup {
    pub fn new(ctx: Option<&Context>) -> Self {
        let client = ctx.and_then(|ctx| {
            let channel = ctx.peer_channel(Peer::Config).ok()?;
            Some(
                pb::config_service_client::ConfigServiceClient::with_interceptor(
                    channel,
                    ctx.service_auth(crate::SERVICE),
                ),
            )
        });
        let ttl = Duration::from_secs(30);
        Self {
            client,
            assignments: TtlCache::new("analytics_config_assignments", 1024, ttl),
            leaderboard: TtlCache::new("analytics_config_organizations", 1024, ttl),
        }
    }

    /// The assignment, or `None` when config does not know it or cannot be reached.
    pub async fn assignment(&self, name: &str) -> Option<pb::Assignment> {
        if let Some(hit) = self.assignments.get(&name.to_owned()) {
            return hit;
        }
        let mut client = self.client.clone()?;
        let mut req = tonic::Request::new(pb::GetAssignmentRequest {
            name: name.to_owned(),
        });
        req.set_timeout(TIMEOUT);
        let value = match client.get_assignment(req).await {
            Ok(resp) => resp.into_inner().assignment,
            Err(status) => {
                tracing::debug!(assignment = name, code = ?status.code(), "config has no answer");
                None
            }
        };
        self.assignments.insert(name.to_owned(), value.clone());
        value
    }

    /// The organization's leaderboard setting, or `None` when config cannot say.
    pub async fn leaderboard_visible(&self, org_name: &str) -> Option<bool> {
        if let Some(hit) = self.leaderboard.get(&org_name.to_owned()) {
            return hit;
        }
        let mut client = self.client.clone()?;
        let mut req = tonic::Request::new(pb::GetOrganizationRequest {
            name: org_name.to_owned(),
        });
        req.set_timeout(TIMEOUT);
        let value = client.get_organization(req).await.ok().and_then(|r| {
            r.into_inner().organization.map(|o| {
                o.settings
                    .is_some_and(|s| s.leaderboard_visible_to_trainees)
            })
        });
        self.leaderboard.insert(org_name.to_owned(), value);
        value
    }

    /// Drops whatever is cached for `resource` (from ConfigChanged).
    pub fn invalidate(&self, resource: &str) {
        self.assignments.invalidate(&resource.to_owned());
        self.leaderboard.invalidate(&resource.to_owned());
    }
}
