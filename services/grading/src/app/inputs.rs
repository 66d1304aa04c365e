//! Seams to the other services: what grading needs from config (scenario, rubric, prompt
//! template, provider credential) and from call (the transcript). The production
//! implementations call the peers over gRPC with the service identity; tests plug in recorded
//! data.

use std::sync::Arc;

use futures::future::BoxFuture;
use salestrainer_config_client::ConfigClient;
use salestrainer_proto::{call as callpb, config as cfgpb, grading as gradingpb};
use salestrainer_runtime::{
    Context, Peer, context::ServiceAuth, error::peer_is_transient, time::duration_ms,
};
use tonic::{Code, Status, codegen::InterceptedService, transport::Channel};

use crate::domain::prompt::PersonaBrief;
use crate::domain::text::keywords;
use crate::domain::types::{Criterion, GoalKind, RawTurn, Rubric};
use crate::store;

/// Why an input could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// Missing or invalid for good (a retry cannot help): the job goes DEAD.
    Permanent(String),
    /// The peer is down or slow: retry later.
    Transient(String),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Permanent(m) | InputError::Transient(m) => f.write_str(m),
        }
    }
}

impl InputError {
    /// A peer's refusal: retried when the runtime deems the peer's answer transient.
    fn from_status(what: &str, s: &Status) -> InputError {
        let msg = format!("{what}: {} ({:?})", s.message(), s.code());
        if peer_is_transient(s.code()) {
            InputError::Transient(msg)
        } else {
            InputError::Permanent(msg)
        }
    }
}

/// A prompt template as used (name and revision end up on the evaluation).
#[derive(Clone, Debug, Default)]
pub struct PromptTemplate {
    pub name: String,
    pub revision: i64,
    pub body: String,
}

/// Everything the pipeline needs from the scenario.
#[derive(Clone, Debug)]
pub struct ScenarioInputs {
    pub rubric_name: String,
    pub rubric: Rubric,
    pub goal: GoalKind,
    pub product_brief: String,
    pub persona_name: Option<String>,
    /// The persona's job title and company, for the grading prompt; empty when unknown.
    pub persona_role: String,
    pub persona_company: String,
    /// `None`: the built-in prompt.
    pub template: Option<PromptTemplate>,
}

impl ScenarioInputs {
    pub fn product_terms(&self) -> Vec<String> {
        keywords(&self.product_brief)
    }

    pub fn persona_brief(&self) -> PersonaBrief {
        PersonaBrief {
            name: self.persona_name.clone().unwrap_or_default(),
            role: self.persona_role.clone(),
            company: self.persona_company.clone(),
        }
    }
}

/// An OpenAI-compatible credential. The key is never logged (Debug leaves it out).
#[derive(Clone)]
pub struct Credential {
    /// Limiter key: one budget per credential.
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    pub requests_per_minute: u64,
    pub tokens_per_minute: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

pub trait GradingInputs: Send + Sync + 'static {
    /// `rubric_override` empty = the scenario's rubric; `scenario` empty (a real call imported
    /// without one) = the rubric alone, with no goal, product or persona.
    fn scenario<'a>(
        &'a self,
        organization: &'a str,
        scenario: &'a str,
        rubric_override: &'a str,
    ) -> BoxFuture<'a, Result<ScenarioInputs, InputError>>;

    /// `None`: the organization has no LLM credential; grade with the built-in grader.
    fn credential<'a>(
        &'a self,
        organization: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, InputError>>;
}

/// A transcript and the distinct `TranscriptSource` numbers of its segments.
pub type SourcedTranscript = (Vec<RawTurn>, Vec<i32>);

pub trait TranscriptSource: Send + Sync + 'static {
    fn transcript<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RawTurn>, InputError>>;

    /// The transcript and the distinct provenance of its segments (grading
    /// `TranscriptSource` numbers, ascending), which the evaluation records. Sources that do
    /// not know provenance report none.
    fn transcript_with_sources<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<SourcedTranscript, InputError>> {
        Box::pin(async move { Ok((self.transcript(session).await?, Vec::new())) })
    }
}

pub fn rubric_from_pb(r: &cfgpb::Rubric) -> Rubric {
    Rubric {
        criteria: r
            .criteria
            .iter()
            .map(|c| Criterion {
                id: c.id.clone(),
                skill: c.skill.clone(),
                description: c.description.clone(),
                weight: c.weight,
                scale_min: c.scale_min,
                scale_max: c.scale_max,
                levels: c
                    .levels
                    .iter()
                    .map(|l| (l.score, l.description.clone()))
                    .collect(),
                signal_phrases: c.signal_phrases.clone(),
            })
            .collect(),
        passing_score: r.passing_score,
    }
}

pub fn goal_from_pb(g: Option<&cfgpb::Goal>) -> GoalKind {
    match g {
        Some(g) if g.kind == cfgpb::GoalKind::AgreePurchase as i32 => GoalKind::AgreePurchase,
        Some(g) if g.kind == cfgpb::GoalKind::Custom as i32 && !g.description.trim().is_empty() => {
            GoalKind::Custom(g.description.clone())
        }
        _ => GoalKind::BookMeeting,
    }
}

/// The config service through the cached [`ConfigClient`].
pub struct ConfigInputs {
    client: Arc<ConfigClient>,
}

impl ConfigInputs {
    pub fn new(ctx: &Context) -> anyhow::Result<Self> {
        let client = Arc::new(ConfigClient::new(ctx, crate::SERVICE)?);
        client.spawn_invalidator(ctx, crate::SERVICE);
        Ok(Self { client })
    }
}

impl GradingInputs for ConfigInputs {
    fn scenario<'a>(
        &'a self,
        organization: &'a str,
        scenario: &'a str,
        rubric_override: &'a str,
    ) -> BoxFuture<'a, Result<ScenarioInputs, InputError>> {
        Box::pin(async move {
            // A real call imported without a scenario: no goal, product or persona to give
            // the grader, only its rubric.
            let sc = if scenario.is_empty() {
                cfgpb::Scenario::default()
            } else {
                self.client
                    .scenario(scenario)
                    .await
                    .map_err(|s| InputError::from_status("scenario", &s))?
            };
            let rubric_name = if rubric_override.is_empty() {
                sc.rubric.clone()
            } else {
                rubric_override.to_owned()
            };
            if rubric_name.is_empty() {
                return Err(InputError::Permanent(
                    "the session has neither a scenario nor a rubric to grade with".into(),
                ));
            }
            let rubric = self
                .client
                .rubric(&rubric_name)
                .await
                .map_err(|s| InputError::from_status("rubric", &s))?;
            // The persona only gives the grader a name to look for; its absence is no failure.
            let (persona_name, persona_role, persona_company) = match sc.persona.as_str() {
                "" => (None, String::new(), String::new()),
                persona => match self.client.persona(persona).await {
                    Ok(p) => (
                        Some(p.display_name).filter(|n| !n.is_empty()),
                        p.role,
                        p.company,
                    ),
                    Err(_) => (None, String::new(), String::new()),
                },
            };
            let template_name =
                store::resource_name(organization, "promptTemplates", "builtin-grading");
            let template = match self.client.prompt_template(&template_name, 0).await {
                Ok(t) => Some(PromptTemplate {
                    name: t.name,
                    revision: t.revision,
                    body: t.body,
                }),
                Err(s) if s.code() == Code::NotFound || s.code() == Code::Unimplemented => None,
                Err(s) => return Err(InputError::from_status("prompt template", &s)),
            };
            Ok(ScenarioInputs {
                rubric_name,
                rubric: rubric_from_pb(&rubric),
                goal: goal_from_pb(sc.goal.as_ref()),
                product_brief: sc.product_brief,
                persona_name,
                persona_role,
                persona_company,
                template,
            })
        })
    }

    fn credential<'a>(
        &'a self,
        organization: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, InputError>> {
        Box::pin(async move {
            let c = self
                .client
                .credential(organization, cfgpb::ProviderKind::OpenaiCompatible)
                .await
                .map_err(|s| InputError::from_status("credential", &s))?;
            Ok(c.map(|c| Credential {
                name: c.name,
                base_url: c.base_url,
                model: c.model,
                api_key: c.api_key,
                requests_per_minute: u64::try_from(c.requests_per_minute).unwrap_or(0),
                tokens_per_minute: u64::try_from(c.tokens_per_minute).unwrap_or(0),
            }))
        })
    }
}

type CallClient =
    callpb::call_service_client::CallServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// The call service's GetTranscript, with the grading service identity.
pub struct CallTranscripts {
    client: CallClient,
}

impl CallTranscripts {
    pub fn new(ctx: &Context) -> anyhow::Result<Self> {
        let channel = ctx.peer_channel(Peer::Call)?;
        Ok(Self {
            client: callpb::call_service_client::CallServiceClient::with_interceptor(
                channel,
                ctx.service_auth(crate::SERVICE),
            ),
        })
    }
}

fn ms(d: Option<&prost_types::Duration>) -> Option<u64> {
    d.and_then(duration_ms)
        .and_then(|ms| u64::try_from(ms).ok())
}

impl CallTranscripts {
    async fn fetch(&self, session: &str) -> Result<callpb::Transcript, InputError> {
        let resp = self
            .client
            .clone()
            .get_transcript(callpb::GetTranscriptRequest {
                name: format!("{session}/transcript"),
            })
            .await
            .map_err(|s| InputError::from_status("transcript", &s))?
            .into_inner();
        resp.transcript
            .ok_or_else(|| InputError::Permanent("the call service returned no transcript".into()))
    }
}

fn raw_turns(t: &callpb::Transcript) -> Vec<RawTurn> {
    t.segments
        .iter()
        .map(|s| RawTurn {
            id: s.segment_id.clone(),
            speaker_label: match callpb::Speaker::try_from(s.speaker) {
                Ok(callpb::Speaker::Trainee) => "trainee",
                Ok(callpb::Speaker::Persona) => "persona",
                _ => "system",
            }
            .to_owned(),
            text: s.text.clone(),
            start_ms: ms(s.start_offset.as_ref()),
            end_ms: ms(s.end_offset.as_ref()),
        })
        .collect()
}

/// The call contract's segment source as the grading contract's.
fn source_of(s: i32) -> gradingpb::TranscriptSource {
    use callpb::TranscriptSource as C;
    use gradingpb::TranscriptSource as G;
    match C::try_from(s) {
        Ok(C::PersonaEngine) => G::PersonaEngine,
        Ok(C::VoiceProvider) => G::VoiceProvider,
        Ok(C::TraineeClient) => G::TraineeClient,
        Ok(C::Import) => G::Import,
        _ => G::Unspecified,
    }
}

impl TranscriptSource for CallTranscripts {
    fn transcript<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RawTurn>, InputError>> {
        Box::pin(async move { Ok(raw_turns(&self.fetch(session).await?)) })
    }

    fn transcript_with_sources<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<SourcedTranscript, InputError>> {
        Box::pin(async move {
            let t = self.fetch(session).await?;
            let sources: std::collections::BTreeSet<i32> = t
                .segments
                .iter()
                .map(|s| source_of(s.source) as i32)
                .collect();
            Ok((raw_turns(&t), sources.into_iter().collect()))
        })
    }
}
