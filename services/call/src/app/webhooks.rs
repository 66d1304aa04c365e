//! Applying voice-provider webhooks (the HTTP side is `api::webhooks`).
//!
//! Order matters: the body is parsed only to find the session (hence the organization and its
//! secret); nothing is recorded until the signature is verified. A failed check is 401 with
//! nothing written; bodies over 1 MiB are 413 (axum's body limit); repeats are recognised by
//! the receipt's idempotency key and answered 200 without effect.

use salestrainer_config_client::ResolvedCredential;
use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::{db::begin_write, names, time::now_us};

use super::CallApp;
use crate::{
    domain::{
        Source, Speaker,
        transcript::TranscriptSegment,
        webhook::{
            self, CallStatus, EventKind, Provider, VapiAuth, VapiHeaders, WebhookError,
            WebhookEvent,
        },
    },
    store::{self, Ending, WriteError, session},
};

/// How a webhook was answered; `api::webhooks` turns it into an HTTP status and body.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Applied, recorded, a repeat or ignored (200): the provider must not retry.
    Done(&'static str),
    /// A JSON answer the provider acts on (200), e.g. the assistant of an `assistant-request`.
    Json(serde_json::Value),
    /// Not a webhook we can read (400).
    BadRequest(String),
    /// Not authenticated (401): nothing was written.
    Unauthorized(&'static str),
    /// Try again later (503).
    Unavailable(&'static str),
    /// Not applied, nothing committed (500): the provider retries.
    Failed(&'static str),
}

/// `POST /webhooks/vapi`: verified with the organisation's VAPI secret, then applied.
pub async fn vapi(core: &CallApp, h: VapiHeaders<'_>, body: &[u8]) -> Answer {
    // Parsed only to locate the session; acted on only after verification below.
    let (session, cred) = match session_and_credential(
        core,
        webhook::parse_vapi(body),
        cfg::ProviderKind::Vapi,
    )
    .await
    {
        Ok(found) => found,
        Err(a) => return a,
    };
    let secret = cred.map(|c| c.webhook_secret).unwrap_or_default();
    // Whichever scheme the request uses, it needs the organization's secret.
    let auth = if h.signature.is_some() {
        VapiAuth::Hmac(secret)
    } else {
        VapiAuth::Secret(secret)
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    match webhook::vapi_webhook(&auth, &h, body, now_ms) {
        Ok(event) if event.kind == EventKind::AssistantRequest => assistant(core, &session).await,
        Ok(event) => apply(core, session, event).await,
        Err(e) => refused(e),
    }
}

/// The answer to VAPI's `assistant-request` (verified like every webhook): the session's
/// persona as a VAPI assistant. A phone call gets the persona this way only; a web call gets
/// the same assistant through GetVoiceSetup (`app::voice`), for its own trainee.
async fn assistant(core: &CallApp, s: &session::Model) -> Answer {
    if !store::state_of(s.state).is_some_and(|st| st.accepts_transcript()) {
        // VAPI reads `error` as "do not start the call" and says it to the caller.
        return Answer::Json(serde_json::json!({
            "error": "This practice session is no longer active. Start a new one."
        }));
    }
    match vapi_assistant(core, s).await {
        Ok(assistant) => Answer::Json(serde_json::json!({ "assistant": assistant })),
        Err(e) => {
            tracing::warn!(session = %s.id, error = %e, "assistant-request: persona unavailable");
            Answer::Unavailable("persona unavailable")
        }
    }
}

/// The session's persona as a VAPI assistant (CreateAssistantDTO): first message, model with
/// the persona's system prompt, voice, time limit, this server's webhook URL and the session
/// name in `metadata.session` (how every later webhook finds the session).
pub async fn vapi_assistant(
    core: &CallApp,
    s: &session::Model,
) -> salestrainer_runtime::ApiResult<serde_json::Value> {
    let setup = core.persona_setup(&s.organization, &s.scenario).await?;
    // The organization's model is a nicety; a config hiccup must not fail the call start.
    let model = core
        .llm_endpoint(&s.organization)
        .await
        .ok()
        .flatten()
        .map(|e| e.model)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_VOICE_MODEL.to_owned());
    let mut assistant = serde_json::json!({
        "name": "Salestrainer persona",
        "firstMessage": setup.first_message(),
        "model": {
            "provider": "openai",
            "model": model,
            "messages": [{"role": "system", "content": setup.system_prompt}],
        },
        "serverUrl": format!("{}/webhooks/vapi", core.public_url),
        "metadata": {"session": store::session_name(s)},
    });
    if !setup.voice_id.is_empty() {
        assistant["voice"] = serde_json::json!({
            "provider": "11labs",
            "voiceId": setup.voice_id,
        });
    }
    if let Some(secs) = setup
        .time_limit
        .as_ref()
        .and_then(salestrainer_runtime::time::duration_ms)
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms > 0)
        .map(|ms| ms.div_ceil(1000))
    {
        assistant["maxDurationSeconds"] = secs.into();
    }
    Ok(assistant)
}

/// The model VAPI runs the persona on when the organization configured none.
const DEFAULT_VOICE_MODEL: &str = "gpt-4o-mini";

/// `POST /webhooks/retell`: verified with the organisation's Retell key, then applied.
pub async fn retell(core: &CallApp, signature: Option<&str>, body: &[u8]) -> Answer {
    let (session, cred) =
        match session_and_credential(core, webhook::parse_retell(body), cfg::ProviderKind::Retell)
            .await
        {
            Ok(found) => found,
            Err(a) => return a,
        };
    // Retell signs with the API key; a separately stored webhook secret takes precedence.
    let key = cred
        .map(|c| {
            if c.webhook_secret.is_empty() {
                c.api_key
            } else {
                c.webhook_secret
            }
        })
        .unwrap_or_default();
    let now_ms = chrono::Utc::now().timestamp_millis();
    match webhook::retell_webhook(&key, signature, body, now_ms) {
        Ok(event) => apply(core, session, event).await,
        Err(e) => refused(e),
    }
}

fn refused(e: WebhookError) -> Answer {
    match e {
        WebhookError::Unauthenticated(v) => {
            tracing::warn!(reason = %v, "webhook refused");
            Answer::Unauthorized("unauthenticated")
        }
        WebhookError::BadRequest(p) => Answer::BadRequest(p.to_string()),
    }
}

/// The session a webhook is about: by the session name in the call metadata, else by the
/// provider call id recorded earlier.
/// The session a delivery names (parsed only to find it; nothing is acted on before the
/// signature is verified) and its organization's credential of `kind`.
async fn session_and_credential(
    core: &CallApp,
    peek: Result<WebhookEvent, webhook::ParseError>,
    kind: cfg::ProviderKind,
) -> Result<(session::Model, Option<ResolvedCredential>), Answer> {
    let peek = peek.map_err(|e| Answer::BadRequest(e.to_string()))?;
    let session = locate(core, &peek)
        .await?
        .ok_or(Answer::Unauthorized("cannot authenticate: unknown session"))?;
    let cred = core
        .config
        .credential(&names::organization_name(&session.organization), kind)
        .await
        .map_err(|_| Answer::Unavailable("config unavailable"))?;
    Ok((session, cred))
}

async fn locate(core: &CallApp, e: &WebhookEvent) -> Result<Option<session::Model>, Answer> {
    let db = core.db().map_err(|_| Answer::Unavailable("starting"))?;
    let unavailable = |_| Answer::Unavailable("database unavailable");
    if let Some((org, id)) = e
        .session_name
        .as_deref()
        .and_then(|n| names::parse_child(n, "sessions"))
    {
        let found = store::get(db, id).await.map_err(unavailable)?;
        return Ok(found.filter(|m| m.organization == org));
    }
    store::find_by_provider_call(db, &e.call_id)
        .await
        .map_err(unavailable)
}

fn provider_number(p: Provider) -> i32 {
    match p {
        Provider::Vapi => pb::VoiceProvider::Vapi as i32,
        Provider::Retell => pb::VoiceProvider::Retell as i32,
    }
}

fn kind_name(k: &EventKind) -> &'static str {
    match k {
        EventKind::Status(_) => "status",
        EventKind::TranscriptPartial { .. } => "transcript-partial",
        EventKind::TranscriptFinal { .. } => "transcript-final",
        EventKind::Ended(_) => "ended",
        EventKind::Analyzed(_) => "analyzed",
        EventKind::AssistantRequest => "assistant-request",
        EventKind::Ignored { .. } => "ignored",
    }
}

/// Records the receipt and applies the event in one transaction.
async fn apply(core: &CallApp, s: session::Model, event: WebhookEvent) -> Answer {
    if let EventKind::Ignored { .. } | EventKind::AssistantRequest = event.kind {
        // Unknown types are acknowledged so the provider does not retry them; nothing to keep.
        return Answer::Done("ignored");
    }
    let limits = core.settings.transcript_limits();
    let Ok(db) = core.db() else {
        return Answer::Unavailable("starting");
    };
    let provider = provider_number(event.provider);
    let result: Result<(&'static str, Option<session::Model>), WriteError> = async {
        let txn = begin_write(db).await?;
        let fresh = store::record_receipt(
            &txn,
            event.provider.as_str(),
            &event.idempotency_key,
            &s.id,
            kind_name(&event.kind),
        )
        .await?;
        if !fresh {
            txn.rollback().await?;
            return Ok(("duplicate", None));
        }
        if !event.call_id.is_empty() && s.provider_call_id.is_empty() {
            store::set_provider_call(&txn, &s.id, provider, &event.call_id).await?;
        }
        let mut changed = None;
        let outcome = match &event.kind {
            EventKind::Status(CallStatus::Ended)
            | EventKind::Status(_)
            | EventKind::Analyzed(_) => "recorded",
            EventKind::TranscriptPartial { speaker, text }
            | EventKind::TranscriptFinal { speaker, text } => {
                let is_final = matches!(event.kind, EventKind::TranscriptFinal { .. });
                let at = u64::try_from((now_us() - s.start_us) / 1000).unwrap_or(0);
                let seg = TranscriptSegment {
                    // No id from the provider: a final replaces the speaker's latest partial.
                    segment_id: String::new(),
                    speaker: *speaker,
                    text: text.clone(),
                    start_ms: at,
                    end_ms: at,
                    is_final,
                };
                match store::apply_segment(&txn, &s.id, seg, Source::VoiceProvider, &limits).await {
                    Ok(_) => "recorded",
                    // A late transcript after the call ended is kept as a receipt only.
                    Err(WriteError::NotActive(_)) => "ignored: session not active",
                    // Live text past a limit is dropped (the end-of-call report still counts);
                    // retrying would not help, so the receipt is kept and the answer is 200.
                    Err(WriteError::Limit(_)) => {
                        txn.rollback().await?;
                        return Ok(("ignored: transcript limit reached", None));
                    }
                    Err(WriteError::Foreign) => {
                        txn.rollback().await?;
                        return Ok(("ignored: segment recorded by another source", None));
                    }
                    Err(e) => return Err(e),
                }
            }
            EventKind::Ended(end) => {
                let duration_ms = match (end.started_at_ms, end.ended_at_ms) {
                    // Checked: a signed but absurd pair of times must not overflow.
                    (Some(a), Some(b)) if b >= a => b.checked_sub(a),
                    _ => end
                        .segments
                        .iter()
                        .map(|x| x.end_ms)
                        .max()
                        .and_then(|v| i64::try_from(v).ok()),
                };
                let final_segments = end
                    .segments
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.speaker != Speaker::System)
                    .map(|(i, x)| TranscriptSegment {
                        segment_id: format!("{}-{i}", event.provider.as_str()),
                        speaker: x.speaker,
                        text: x.text.clone(),
                        start_ms: x.start_ms,
                        end_ms: x.end_ms,
                        is_final: true,
                    })
                    .collect();
                let ended = store::end_session(
                    &txn,
                    &s.id,
                    Ending {
                        state: pb::SessionState::Ended as i32,
                        reason: pb::EndReason::ProviderEnded as i32,
                        detail: end.reason.clone().unwrap_or_default(),
                        duration_ms,
                        recording_uri: end.recording_url.clone(),
                        provider_call_id: (!event.call_id.is_empty())
                            .then(|| event.call_id.clone()),
                        voice_provider: Some(provider),
                        report: true,
                        final_segments,
                        etag: None,
                        failure_reason: String::new(),
                    },
                )
                .await?;
                if ended.changed {
                    changed = Some(ended.session);
                    "ended"
                } else {
                    "recorded: session already ended"
                }
            }
            EventKind::Ignored { .. } | EventKind::AssistantRequest => "ignored",
        };
        txn.commit().await?;
        Ok((outcome, changed))
    }
    .await;
    match result {
        Ok((outcome, changed)) => {
            if let Some(m) = changed {
                let id = m.id.clone();
                core.changed(&m, true);
                core.threads.remove(&id).await;
            }
            Answer::Done(outcome)
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook not applied");
            // 5xx: the provider retries, and nothing was committed.
            Answer::Failed("not applied; retry")
        }
    }
}
