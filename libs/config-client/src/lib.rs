//! The config service as the other services see it: typed calls with a service identity, a
//! bounded TTL cache in front (default 5 minutes), and invalidation as soon as a
//! ConfigChanged event for the resource arrives — so a rubric edit is seen at once.

use std::{sync::Arc, time::Duration};

use salestrainer_proto::{config as pb, events};
use salestrainer_runtime::{
    Context, Peer,
    cache::TtlCache,
    consumer::{self, EventHandler, Received, Subscription},
    context::ServiceAuth,
    events::TOPIC_CONFIG,
};
use tonic::{Code, Status, codegen::InterceptedService, transport::Channel};

type Client =
    pb::config_service_client::ConfigServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// A provider credential with its decrypted secret. Never log it.
#[derive(Clone)]
pub struct ResolvedCredential {
    pub name: String,
    pub kind: pb::ProviderKind,
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    pub webhook_secret: String,
    /// The provider's public web key (not a secret), if any.
    pub public_key: String,
    pub requests_per_minute: i32,
    pub tokens_per_minute: i64,
}

impl std::fmt::Debug for ResolvedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedCredential")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

pub struct ConfigClient {
    client: Client,
    scenarios: TtlCache<String, pb::Scenario>,
    personas: TtlCache<String, pb::Persona>,
    rubrics: TtlCache<String, pb::Rubric>,
    assignments: TtlCache<String, pb::Assignment>,
    certifications: TtlCache<String, pb::Certification>,
    organizations: TtlCache<String, pb::Organization>,
    templates: TtlCache<(String, i64), pb::PromptTemplate>,
    /// Keyed by (organization name, kind); `None` caches "no credential: use offline mode".
    credentials: TtlCache<(String, i32), Option<ResolvedCredential>>,
}

pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

impl ConfigClient {
    /// `service` is the caller's identity on the config service (e.g. "call").
    pub fn new(ctx: &Context, service: &'static str) -> anyhow::Result<Self> {
        Self::with_ttl(ctx, service, DEFAULT_TTL, 4096)
    }

    pub fn with_ttl(
        ctx: &Context,
        service: &'static str,
        ttl: Duration,
        capacity: usize,
    ) -> anyhow::Result<Self> {
        let channel = ctx.peer_channel(Peer::Config)?;
        let client = pb::config_service_client::ConfigServiceClient::with_interceptor(
            channel,
            ctx.service_auth(service),
        );
        Ok(Self {
            client,
            scenarios: TtlCache::new("config_scenarios", capacity, ttl),
            personas: TtlCache::new("config_personas", capacity, ttl),
            rubrics: TtlCache::new("config_rubrics", capacity, ttl),
            assignments: TtlCache::new("config_assignments", capacity, ttl),
            certifications: TtlCache::new("config_certifications", capacity, ttl),
            organizations: TtlCache::new("config_organizations", capacity, ttl),
            templates: TtlCache::new("config_prompt_templates", capacity, ttl),
            credentials: TtlCache::new("config_credentials", capacity, ttl),
        })
    }

    /// `cache[name]`, else `fetch` from the config service (cached on success).
    async fn cached<T, F, Fut>(
        cache: &TtlCache<String, T>,
        name: &str,
        fetch: F,
    ) -> Result<T, Status>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, Status>>,
    {
        if let Some(hit) = cache.get(&name.to_owned()) {
            return Ok(hit);
        }
        let value = fetch()
            .await?
            .ok_or_else(|| Status::internal(format!("config returned nothing for {name}")))?;
        cache.insert(name.to_owned(), value.clone());
        Ok(value)
    }

    pub async fn scenario(&self, name: &str) -> Result<pb::Scenario, Status> {
        let req = pb::GetScenarioRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.scenarios, name, || async {
            Ok(self
                .client
                .clone()
                .get_scenario(req)
                .await?
                .into_inner()
                .scenario)
        })
        .await
    }

    pub async fn persona(&self, name: &str) -> Result<pb::Persona, Status> {
        let req = pb::GetPersonaRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.personas, name, || async {
            Ok(self
                .client
                .clone()
                .get_persona(req)
                .await?
                .into_inner()
                .persona)
        })
        .await
    }

    pub async fn rubric(&self, name: &str) -> Result<pb::Rubric, Status> {
        let req = pb::GetRubricRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.rubrics, name, || async {
            Ok(self
                .client
                .clone()
                .get_rubric(req)
                .await?
                .into_inner()
                .rubric)
        })
        .await
    }

    /// A member, uncached: asked only by rare writes (an imported call names its member).
    pub async fn member(&self, name: &str) -> Result<pb::Member, Status> {
        self.client
            .clone()
            .get_member(pb::GetMemberRequest {
                name: name.to_owned(),
            })
            .await?
            .into_inner()
            .member
            .ok_or_else(|| Status::internal(format!("config returned nothing for {name}")))
    }

    pub async fn assignment(&self, name: &str) -> Result<pb::Assignment, Status> {
        let req = pb::GetAssignmentRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.assignments, name, || async {
            Ok(self
                .client
                .clone()
                .get_assignment(req)
                .await?
                .into_inner()
                .assignment)
        })
        .await
    }

    /// A certification's terms.
    pub async fn certification(&self, name: &str) -> Result<pb::Certification, Status> {
        let req = pb::GetCertificationRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.certifications, name, || async {
            Ok(self
                .client
                .clone()
                .get_certification(req)
                .await?
                .into_inner()
                .certification)
        })
        .await
    }

    /// The organization's certifications (`organization`: `organizations/{id}`), up to 1000,
    /// uncached: they are listed only for a trainee's overview.
    pub async fn certifications(
        &self,
        organization: &str,
    ) -> Result<Vec<pb::Certification>, Status> {
        let listed = self
            .client
            .clone()
            .list_certifications(pb::ListCertificationsRequest {
                parent: organization.to_owned(),
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        for c in &listed.certifications {
            self.certifications.insert(c.name.clone(), c.clone());
        }
        Ok(listed.certifications)
    }

    /// `organizations/{id}`: its settings (leaderboard visibility, default credential).
    pub async fn organization(&self, name: &str) -> Result<pb::Organization, Status> {
        let req = pb::GetOrganizationRequest {
            name: name.to_owned(),
        };
        Self::cached(&self.organizations, name, || async {
            Ok(self
                .client
                .clone()
                .get_organization(req)
                .await?
                .into_inner()
                .organization)
        })
        .await
    }

    /// A prompt template at `revision` (0 = latest; the latest is what the TTL governs).
    pub async fn prompt_template(
        &self,
        name: &str,
        revision: i64,
    ) -> Result<pb::PromptTemplate, Status> {
        let key = (name.to_owned(), revision);
        if let Some(hit) = self.templates.get(&key) {
            return Ok(hit);
        }
        let resp = self
            .client
            .clone()
            .get_prompt_template(pb::GetPromptTemplateRequest {
                name: name.to_owned(),
                revision,
            })
            .await?
            .into_inner();
        let value = resp
            .prompt_template
            .ok_or_else(|| Status::internal("config returned no prompt template"))?;
        self.templates.insert(key, value.clone());
        Ok(value)
    }

    /// The organization's credential of `kind`, or `None` when it has none (offline mode).
    pub async fn credential(
        &self,
        organization: &str,
        kind: pb::ProviderKind,
    ) -> Result<Option<ResolvedCredential>, Status> {
        let key = (organization.to_owned(), kind as i32);
        if let Some(hit) = self.credentials.get(&key) {
            return Ok(hit);
        }
        let result = self
            .client
            .clone()
            .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
                name: String::new(),
                parent: organization.to_owned(),
                kind: kind as i32,
            })
            .await;
        let value = match result {
            Ok(resp) => {
                let r = resp.into_inner();
                let limits = r.limits.unwrap_or_default();
                Some(ResolvedCredential {
                    name: r.name,
                    kind: pb::ProviderKind::try_from(r.kind).unwrap_or(kind),
                    base_url: r.base_url,
                    model: r.model,
                    api_key: r.api_key,
                    webhook_secret: r.webhook_secret,
                    public_key: r.public_key,
                    requests_per_minute: limits.requests_per_minute,
                    tokens_per_minute: limits.tokens_per_minute,
                })
            }
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => return Err(status),
        };
        self.credentials.insert(key, value.clone());
        Ok(value)
    }

    /// Drops whatever is cached for `resource` (a resource name) at once.
    pub fn invalidate(&self, resource: &str) {
        let key = resource.to_owned();
        self.scenarios.invalidate(&key);
        self.personas.invalidate(&key);
        self.rubrics.invalidate(&key);
        self.assignments.invalidate(&key);
        self.certifications.invalidate(&key);
        self.organizations.invalidate(&key);
        self.templates
            .invalidate_where(|(name, _)| name == resource);
        let is_organization = resource.matches('/').count() == 1;
        if resource.contains("/credentials/") || is_organization {
            // A credential (or the organization's settings, which pick the default one).
            let org: String = resource.split('/').take(2).collect::<Vec<_>>().join("/");
            self.credentials.invalidate_where(|(o, _)| *o == org);
        }
    }

    /// Applies one ConfigChanged event.
    pub fn apply(&self, event: &events::Event) {
        if let Some(events::event::Payload::ConfigChanged(change)) = &event.payload {
            self.invalidate(&change.resource);
        }
    }

    /// Follows ConfigChanged events for as long as the context runs. Every replica sees every
    /// change: the consumer group is per replica, not shared.
    pub fn spawn_invalidator(self: &Arc<Self>, ctx: &Context, service: &str) {
        let sub = Subscription::each_replica(TOPIC_CONFIG, &format!("{service}-config-cache"), ctx)
            .only(&["config.changed"]);
        consumer::spawn(ctx, sub, Arc::new(Invalidator(Arc::clone(self))));
    }
}

struct Invalidator(Arc<ConfigClient>);

impl EventHandler for Invalidator {
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        for r in batch {
            self.0.apply(&r.event);
        }
        Ok(())
    }
}
