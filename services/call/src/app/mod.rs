//! The use cases of the call service and the state they share ([`Core`]): one file per group
//! of use cases, each called by a thin adapter in `api/` or run as a background task.
//!
//! - `sessions`: start, get, list, end, cancel; `watch`: a session's state changes;
//! - `roleplay`: the text roleplay (Converse) and `send_turn` (SendTurn, one turn per server
//!   stream for browsers, on the same conversation), with `persona_engine` (scripted or LLM),
//!   `llm_persona` (the OpenAI-compatible streaming client) and `threads` (thread storage);
//! - `transcripts`: voice transcript segments and reading a transcript;
//! - `webhooks`: applying verified voice-provider webhooks;
//! - `grading_events`: the consumer of grading's events; `sweeper`: ends idle sessions;
//! - `settings`: the service's knobs.

pub mod grading_events;
pub mod llm_persona;
pub mod persona_engine;
pub mod roleplay;
pub mod send_turn;
pub mod sessions;
pub mod settings;
pub mod sweeper;
pub mod threads;
pub mod transcripts;
pub mod watch;
pub mod webhooks;

use std::sync::Arc;

use salestrainer_bus::RelayNotifier;
use salestrainer_config_client::ConfigClient;
use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::{ApiError, ApiResult, Context, Peer, Principal, Ready, Role};
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;
use tonic::{Code, Status};

use self::{
    llm_persona::{Endpoint, LlmClient},
    persona_engine::PersonaSetup,
    roleplay::StreamLimiter,
    settings::CallSettings,
    threads::ThreadStore,
};
use crate::store::{self, Ended, Ending, WriteError, session};

type RawConfig = cfg::config_service_client::ConfigServiceClient<
    tonic::codegen::InterceptedService<
        tonic::transport::Channel,
        salestrainer_runtime::context::ServiceAuth,
    >,
>;

pub struct Core {
    pub db: Ready<DatabaseConnection>,
    pub relay: Ready<RelayNotifier>,
    pub config: Arc<ConfigClient>,
    raw_config: RawConfig,
    pub threads: ThreadStore,
    /// Every session change made or observed by this process, for WatchSession.
    pub hub: broadcast::Sender<Arc<session::Model>>,
    pub streams: StreamLimiter,
    pub settings: CallSettings,
    pub llm: LlmClient,
    pub shutdown: salestrainer_bus::CancellationToken,
}

impl Core {
    pub fn new(ctx: &Context, db: Ready<DatabaseConnection>) -> anyhow::Result<Self> {
        let settings = CallSettings::from_env(ctx.local_addr);
        let config = Arc::new(ConfigClient::new(ctx, crate::SERVICE)?);
        let raw_config = cfg::config_service_client::ConfigServiceClient::with_interceptor(
            ctx.peer_channel(Peer::Config)?,
            ctx.service_auth(crate::SERVICE),
        );
        let threads = ThreadStore::new(
            ctx.redis.clone(),
            settings.thread_ttl,
            settings.thread_cache_capacity,
            settings.idle_timeout,
        );
        Ok(Self {
            db,
            relay: Ready::new(),
            config,
            raw_config,
            threads,
            hub: broadcast::channel(1024).0,
            streams: StreamLimiter::new(settings.max_streams_per_trainee),
            settings,
            llm: LlmClient::new()?,
            shutdown: ctx.shutdown.clone(),
        })
    }

    pub fn db(&self) -> ApiResult<&DatabaseConnection> {
        self.db.get()
    }

    /// After a committed change: publish its outbox event now and tell watchers.
    pub fn changed(&self, m: session::Model, outbox: bool) {
        if outbox && let Ok(relay) = self.relay.get() {
            relay.notify();
        }
        let _ = self.hub.send(Arc::new(m));
    }

    /// Ends (or cancels) a session with everything that goes with it.
    pub async fn end(&self, session_id: &str, ending: Ending) -> ApiResult<Ended> {
        let db = self.db()?;
        let ended = {
            // Queue behind this process's other SQLite writers instead of in SQLite's busy
            // handler (no-op on PostgreSQL).
            let _gate = store::SQLITE_WRITES.enter(db).await;
            store::end_session(db, session_id, ending)
                .await
                .map_err(write_error)?
        };
        if ended.changed {
            self.changed(ended.session.clone(), true);
            self.threads.remove(session_id).await;
        }
        Ok(ended)
    }

    /// The scenario, persona and prompt template of a session's scenario.
    pub async fn persona_setup(
        &self,
        organization: &str,
        scenario: &str,
    ) -> ApiResult<PersonaSetup> {
        let sc = self
            .config
            .scenario(scenario)
            .await
            .map_err(|s| config_error(s, &format!("scenario {scenario}")))?;
        let persona = self
            .config
            .persona(&sc.persona)
            .await
            .map_err(|s| config_error(s, &format!("persona {}", sc.persona)))?;
        let template_name = format!("organizations/{organization}/promptTemplates/builtin-persona");
        // No template (or config without templates) means the built-in default.
        let template = self
            .config
            .prompt_template(&template_name, 0)
            .await
            .ok()
            .map(|t| t.body);
        Ok(PersonaSetup::new(&sc, &persona, template.as_deref()))
    }

    /// The organisation's LLM endpoint, or None for the offline scripted persona.
    pub async fn llm_endpoint(&self, organization: &str) -> ApiResult<Option<Endpoint>> {
        let cred = self
            .config
            .credential(
                &format!("organizations/{organization}"),
                cfg::ProviderKind::OpenaiCompatible,
            )
            .await
            .map_err(|s| config_error(s, "LLM credential"))?;
        Ok(cred.filter(|c| !c.base_url.is_empty()).map(|c| Endpoint {
            base_url: c.base_url,
            api_key: c.api_key,
            model: c.model,
        }))
    }

    pub async fn assignment(&self, name: &str) -> ApiResult<cfg::Assignment> {
        self.raw_config
            .clone()
            .get_assignment(cfg::GetAssignmentRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| config_error(s, &format!("assignment {name}")))?
            .into_inner()
            .assignment
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("config returned no assignment")))
    }
}

/// A config-service failure as our caller should see it.
pub fn config_error(status: Status, what: &str) -> ApiError {
    match status.code() {
        Code::NotFound => ApiError::NotFound(what.to_owned()),
        Code::PermissionDenied => ApiError::PermissionDenied(format!("{what}: permission denied")),
        Code::InvalidArgument => {
            ApiError::invalid("scenario", format!("{what}: {}", status.message()))
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Unimplemented => {
            ApiError::Unavailable(format!("config service unavailable while reading {what}"))
        }
        _ => ApiError::internal(anyhow::anyhow!("config error reading {what}: {status}")),
    }
}

pub fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::NotActive(state) => ApiError::FailedPrecondition {
            reason: "SESSION_NOT_ACTIVE",
            message: format!(
                "the session is {}, not ACTIVE",
                pb::SessionState::try_from(state)
                    .map(|s| s.as_str_name())
                    .unwrap_or("in an unknown state")
            ),
        },
        WriteError::NotFound => ApiError::NotFound("session".into()),
        WriteError::EtagMismatch => ApiError::Aborted("etag does not match the session".into()),
        WriteError::Duplicate => ApiError::AlreadyExists("segment".into()),
        WriteError::Db(e) => e.into(),
    }
}

/// `organizations/{org}/sessions/{id}` → (org, id).
pub fn parse_session_name(name: &str) -> Option<(&str, &str)> {
    let mut p = name.split('/');
    match (p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("organizations"), Some(org), Some("sessions"), Some(id), None)
            if !org.is_empty() && !id.is_empty() =>
        {
            Some((org, id))
        }
        _ => None,
    }
}

/// `organizations/{org}/{collection}/{id}` with the given org and collection.
pub fn in_collection(name: &str, org: &str, collection: &str) -> bool {
    let mut p = name.split('/');
    matches!(
        (p.next(), p.next(), p.next(), p.next(), p.next()),
        (Some("organizations"), Some(o), Some(c), Some(id), None)
            if o == org && c == collection && !id.is_empty()
    )
}

/// The member resource name of a user principal.
pub fn member_name(p: &Principal) -> String {
    format!("organizations/{}/members/{}", p.organization, p.subject)
}

/// Loads a session the caller may see. Trainees see only their own; services see all.
pub async fn load_visible(
    core: &Core,
    p: &Principal,
    name: &str,
    field: &str,
) -> ApiResult<session::Model> {
    let (org, id) = parse_session_name(name).ok_or_else(|| {
        ApiError::invalid(
            field,
            "must be organizations/{organization}/sessions/{session}",
        )
    })?;
    if !p.can_access_organization(org) {
        return Err(ApiError::PermissionDenied(
            "the session belongs to another organization".into(),
        ));
    }
    let m = store::get(core.db()?, id)
        .await?
        .filter(|m| m.organization == org)
        .ok_or_else(|| ApiError::NotFound(format!("session {name}")))?;
    if p.role == Role::Trainee && m.trainee != member_name(p) {
        return Err(ApiError::PermissionDenied(
            "trainees may only access their own sessions".into(),
        ));
    }
    Ok(m)
}
