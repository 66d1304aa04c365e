//! The use cases of the call service and the state they share ([`CallApp`], which is also the
//! service's description for the runtime): one file per group of use cases, each called by a
//! thin adapter in `api/` or run as a background task.
//!
//! - `sessions`: start, get, list, end, cancel; `watch`: a session's state changes (and its
//!   new comments); `comments`: comments on transcript lines;
//! - `roleplay`: the text roleplay (Converse) and `send_turn` (SendTurn, one turn per server
//!   stream for browsers, on the same conversation), with `persona_engine` (scripted or LLM),
//!   `llm_persona` (the OpenAI-compatible streaming client) and `threads` (thread storage);
//! - `transcripts`: voice transcript segments and reading a transcript;
//! - `webhooks`: applying verified voice-provider webhooks;
//! - `grading_events`: the consumer of grading's events; `sweeper`: ends idle sessions;
//!   `reconciler`: repairs ended sessions whose grading events were lost;
//! - `settings`: the service's knobs.

pub mod comments;
pub mod drill;
pub mod grading_events;
pub mod import;
pub mod llm_persona;
pub mod persona_engine;
pub mod reconciler;
pub mod roleplay;
pub mod send_turn;
pub mod sessions;
pub mod settings;
pub mod sweeper;
pub mod threads;
pub mod transcripts;
pub mod voice;
pub mod watch;
pub mod webhooks;

use std::sync::Arc;

use salestrainer_bus::RelayNotifier;
use salestrainer_config_client::ConfigClient;
use salestrainer_proto::{
    call::{self as pb, call_service_server::CallServiceServer},
    config as cfg,
};
use salestrainer_runtime::{
    ApiError, ApiResult, Context, Principal, Ready, Role,
    changes::Changes,
    consumer::{self, Subscription},
    db::{begin_write, on_writer},
    events::TOPIC_GRADING,
    names,
    service::{Routes, Service},
};
use sea_orm::DatabaseConnection;

use self::{
    grading_events::GradingEvents,
    llm_persona::{Endpoint, LlmClient},
    persona_engine::PersonaSetup,
    roleplay::StreamLimiter,
    settings::CallSettings,
    threads::ThreadStore,
};
use crate::{
    api::{self, CallServiceApi},
    domain::transcript::Exceeded,
    store::{self, Ended, Ending, WriteError, session},
};

/// The call service: what its use cases share, and its description for the runtime.
pub struct CallApp {
    pub db: Ready<DatabaseConnection>,
    pub relay: Ready<RelayNotifier>,
    pub config: Arc<ConfigClient>,
    pub threads: ThreadStore,
    /// Wakes WatchSession streams (here and on other replicas) when a session changes.
    pub changes: Changes,
    pub streams: StreamLimiter,
    /// Open WatchSession streams per caller.
    pub watchers: StreamLimiter,
    pub settings: CallSettings,
    /// Where the voice provider sends its webhooks (no trailing slash).
    pub public_url: String,
    pub llm: LlmClient,
    /// Grading's GetEvaluation, with the service identity (drills).
    pub grading: drill::GradingClient,
    pub shutdown: salestrainer_bus::CancellationToken,
}

impl Service for CallApp {
    const NAME: &'static str = crate::SERVICE;
    type Settings = CallSettings;
    type Migrator = store::Migrator;

    fn build(
        ctx: &Context,
        settings: CallSettings,
        db: Ready<DatabaseConnection>,
    ) -> anyhow::Result<Arc<Self>> {
        let threads = ThreadStore::new(
            ctx.redis.clone(),
            settings.thread_ttl(),
            settings.thread_cache_capacity,
            settings.idle_timeout(),
        );
        Ok(Arc::new(Self {
            db,
            relay: Ready::new(),
            config: Arc::new(ConfigClient::new(ctx, crate::SERVICE)?),
            threads,
            changes: Changes::new(crate::SERVICE),
            streams: StreamLimiter::new(
                settings.max_streams_per_trainee(),
                "concurrent conversations per trainee (max_streams_per_trainee)",
            ),
            watchers: StreamLimiter::new(
                settings.max_watch_streams_per_caller(),
                "open WatchSession streams per caller (max_watch_streams_per_caller)",
            ),
            public_url: settings.public_url(ctx.local_addr),
            settings,
            llm: LlmClient::new()?,
            grading: drill::grading_client(ctx)?,
            shutdown: ctx.shutdown.clone(),
        }))
    }

    async fn routes(self: &Arc<Self>, routes: &mut Routes<'_>) {
        let grpc = CallServiceServer::new(CallServiceApi::new(self.clone()))
            .max_decoding_message_size(routes.decoding_limit());
        routes.grpc(grpc).await;
        routes.http("/webhooks/", api::webhooks::router(self.clone()));
    }

    async fn start(self: Arc<Self>, ctx: &Context, db: DatabaseConnection) {
        // Events committed to the outbox (also before a crash) are published from here.
        self.relay.set(ctx.start_relay(
            crate::SERVICE,
            db.clone(),
            self.settings.relay_replay_after_loss_secs,
        ));
        self.changes.start(ctx);
        self.config.spawn_invalidator(ctx, crate::SERVICE);
        consumer::spawn(
            ctx,
            Subscription::new(TOPIC_GRADING, grading_events::GROUP)
                .only(grading_events::EVENT_TYPES)
                .batches_of(16),
            Arc::new(GradingEvents(self.clone())),
        );
        if let Err(e) = reconciler::spawn_reconciler(self.clone(), ctx) {
            tracing::error!(error = %e, "the session reconciler could not start");
        }
        sweeper::spawn_sweeper(self, ctx);
    }
}

impl CallApp {
    pub fn db(&self) -> ApiResult<&DatabaseConnection> {
        self.db.get()
    }

    /// After a committed change: publish its outbox event now and wake its watchers on every
    /// replica.
    pub fn changed(&self, m: &session::Model, outbox: bool) {
        if outbox && let Ok(relay) = self.relay.get() {
            relay.notify();
        }
        self.changes.publish(watch::key(&m.id));
    }

    /// Ends (or cancels) a session with everything that goes with it.
    pub async fn end(&self, session_id: &str, ending: Ending) -> ApiResult<Ended> {
        let (db, id) = (self.db()?.clone(), session_id.to_owned());
        let ended = on_writer(self.db()?, async move {
            let txn = begin_write(&db).await?;
            let ended = store::end_session(&txn, &id, ending)
                .await
                .map_err(write_error)?;
            txn.commit().await?;
            Ok::<_, ApiError>(ended)
        })
        .await?;
        if ended.changed {
            self.changed(&ended.session, true);
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
        let sc = self.scenario(scenario).await?;
        let persona = self
            .config
            .persona(&sc.persona)
            .await
            .map_err(|s| ApiError::from_peer(&s, &format!("persona {}", sc.persona)))?;
        let template_name = names::child_name(organization, "promptTemplates", "builtin-persona");
        // No template (or config without templates) means the built-in default.
        let template = self
            .config
            .prompt_template(&template_name, 0)
            .await
            .ok()
            .map(|t| t.body);
        Ok(PersonaSetup::new(&sc, &persona, template.as_deref()))
    }

    pub async fn scenario(&self, name: &str) -> ApiResult<cfg::Scenario> {
        self.config
            .scenario(name)
            .await
            .map_err(|s| ApiError::from_peer(&s, &format!("scenario {name}")))
    }

    /// The organisation's LLM endpoint, or None for the offline scripted persona.
    pub async fn llm_endpoint(&self, organization: &str) -> ApiResult<Option<Endpoint>> {
        let cred = self
            .config
            .credential(
                &names::organization_name(organization),
                cfg::ProviderKind::OpenaiCompatible,
            )
            .await
            .map_err(|s| ApiError::from_peer(&s, "LLM credential"))?;
        Ok(cred.filter(|c| !c.base_url.is_empty()).map(|c| Endpoint {
            base_url: c.base_url,
            api_key: c.api_key,
            model: c.model,
        }))
    }

    pub async fn assignment(&self, name: &str) -> ApiResult<cfg::Assignment> {
        self.config
            .assignment(name)
            .await
            .map_err(|s| ApiError::from_peer(&s, &format!("assignment {name}")))
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
        WriteError::Limit(e) => ApiError::ResourceExhausted(limit_message(e)),
        WriteError::Foreign => ApiError::PermissionDenied(
            "that segment id belongs to a segment another source recorded".into(),
        ),
        WriteError::Db(e) => e.into(),
    }
}

/// RESOURCE_EXHAUSTED's message: which limit (by its `[call]` setting) and that nothing was
/// written.
pub fn limit_message(e: Exceeded) -> String {
    match e {
        Exceeded::Segments { limit } => format!(
            "the transcript already holds the most segments allowed \
             (max_segments_per_session = {limit}); nothing was written"
        ),
        Exceeded::SegmentBytes { bytes, limit } => format!(
            "segment.text is {bytes} bytes, over max_segment_bytes = {limit}; nothing was written"
        ),
        Exceeded::TranscriptBytes { limit } => format!(
            "the transcript would grow past max_transcript_bytes = {limit}; nothing was written"
        ),
    }
}

/// The member resource name of a user principal.
pub fn member_name(p: &Principal) -> String {
    names::child_name(&p.organization, "members", &p.subject)
}

/// Loads the session `name` (request field `field`) of an organization the caller belongs to;
/// another organization's session is answered as if it did not exist.
pub async fn load_in_organization(
    core: &CallApp,
    p: &Principal,
    name: &str,
    field: &str,
) -> ApiResult<session::Model> {
    let (org, id) = names::parse_child(name, "sessions").ok_or_else(|| {
        ApiError::invalid(
            field,
            "must be organizations/{organization}/sessions/{session}",
        )
    })?;
    let not_found = || ApiError::NotFound(format!("session {name}"));
    if !p.can_access_organization(org) {
        return Err(not_found());
    }
    store::get(core.db()?, id)
        .await?
        .filter(|m| m.organization == org)
        .ok_or_else(not_found)
}

/// Loads a session the caller may see. Trainees see only their own; services see all.
pub async fn load_visible(
    core: &CallApp,
    p: &Principal,
    name: &str,
    field: &str,
) -> ApiResult<session::Model> {
    let m = load_in_organization(core, p, name, field).await?;
    if p.role == Role::Trainee && m.trainee != member_name(p) {
        return Err(ApiError::PermissionDenied(
            "trainees may only access their own sessions".into(),
        ));
    }
    Ok(m)
}
