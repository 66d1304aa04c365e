//! The config service as the other services see it: typed calls with a service identity, a
//! bounded TTL cache in front (default 5 minutes), and invalidation as soon as a
//! ConfigChanged event for the resource arrives — so a rubric edit is seen at once.

use std::{sync::Arc, time::Duration};

use salestrainer_bus::{StartFrom, SubscribeOptions};
use salestrainer_proto::{config as pb, events};
use salestrainer_runtime::{
    Context, Peer,
    cache::TtlCache,
    context::ServiceAuth,
    events::{TOPIC_CONFIG, decode},
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
            templates: TtlCache::new("config_prompt_templates", capacity, ttl),
            credentials: TtlCache::new("config_credentials", capacity, ttl),
        })
    }

    pub async fn scenario(&self, name: &str) -> Result<pb::Scenario, Status> {
        if let Some(hit) = self.scenarios.get(&name.to_owned()) {
            return Ok(hit);
        }
        let resp = self
            .client
            .clone()
            .get_scenario(pb::GetScenarioRequest {
                name: name.to_owned(),
            })
            .await?
            .into_inner();
        let value = resp
            .scenario
            .ok_or_else(|| Status::internal("config returned no scenario"))?;
        self.scenarios.insert(name.to_owned(), value.clone());
        Ok(value)
    }

    pub async fn persona(&self, name: &str) -> Result<pb::Persona, Status> {
        if let Some(hit) = self.personas.get(&name.to_owned()) {
            return Ok(hit);
        }
        let resp = self
            .client
            .clone()
            .get_persona(pb::GetPersonaRequest {
                name: name.to_owned(),
            })
            .await?
            .into_inner();
        let value = resp
            .persona
            .ok_or_else(|| Status::internal("config returned no persona"))?;
        self.personas.insert(name.to_owned(), value.clone());
        Ok(value)
    }

    pub async fn rubric(&self, name: &str) -> Result<pb::Rubric, Status> {
        if let Some(hit) = self.rubrics.get(&name.to_owned()) {
            return Ok(hit);
        }
        let resp = self
            .client
            .clone()
            .get_rubric(pb::GetRubricRequest {
                name: name.to_owned(),
            })
            .await?
            .into_inner();
        let value = resp
            .rubric
            .ok_or_else(|| Status::internal("config returned no rubric"))?;
        self.rubrics.insert(name.to_owned(), value.clone());
        Ok(value)
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
    /// change: the consumer group is per consumer, not shared.
    pub fn spawn_invalidator(self: &Arc<Self>, ctx: &Context, service: &str) {
        let this = Arc::clone(self);
        let bus = ctx.bus.clone();
        let shutdown = ctx.shutdown.clone();
        let group = format!("{service}-config-cache-{}", ctx.consumer);
        tokio::spawn(async move {
            let opts = SubscribeOptions {
                start_from: StartFrom::Latest,
                ..SubscribeOptions::default()
            };
            let mut sub = match bus.subscribe(TOPIC_CONFIG, &group, &group, opts).await {
                Ok(sub) => sub,
                Err(err) => {
                    tracing::warn!(error = %err, "config cache cannot follow ConfigChanged; relying on its TTL");
                    return;
                }
            };
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    next = sub.next() => {
                        let Some(delivery) = next else { break };
                        if let Ok(event) = decode(&delivery.envelope) {
                            this.apply(&event);
                        }
                        let _ = delivery.ack().await;
                    }
                }
            }
        });
    }
}
