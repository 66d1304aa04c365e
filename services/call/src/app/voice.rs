//! GetVoiceSetup: what the trainee's browser needs to start a VOICE session's call with VAPI's
//! web SDK — the organization's public web key and the session's assistant (the one VAPI's
//! `assistant-request` gets on a phone call, see `app::webhooks`).

use salestrainer_proto::config as cfg;
use salestrainer_runtime::{ApiError, ApiResult, Principal, names};

use super::{CallApp, load_visible, member_name, webhooks};
use crate::store::{self, session};

const SUFFIX: &str = "/voiceSetup";

/// A session's voice setup.
pub struct VoiceSetup {
    pub name: String,
    pub public_key: String,
    pub api_base_url: String,
    /// VAPI's CreateAssistantDTO as JSON.
    pub assistant: serde_json::Value,
}

pub async fn get(core: &CallApp, p: &Principal, name: &str) -> ApiResult<VoiceSetup> {
    let session_name = name
        .strip_suffix(SUFFIX)
        .filter(|s| names::parse_child(s, "sessions").is_some())
        .ok_or_else(|| {
            ApiError::invalid(
                "name",
                "must be organizations/{organization}/sessions/{session}/voiceSetup",
            )
        })?;
    // Another organization's session: NOT_FOUND; another trainee's: PERMISSION_DENIED.
    let s = load_visible(core, p, session_name, "name").await?;
    // The assistant carries the persona's prompt: only the trainee taking the call gets it.
    if p.is_service() || s.trainee != member_name(p) {
        return Err(ApiError::PermissionDenied(
            "only the session's own trainee starts its voice call".into(),
        ));
    }
    require_voice_and_active(&s)?;
    let credential = core
        .config
        .credential(
            &names::organization_name(&s.organization),
            cfg::ProviderKind::Vapi,
        )
        .await
        .map_err(|st| ApiError::from_peer(&st, "the organization's VAPI credential"))?
        .filter(|c| !c.public_key.is_empty())
        .ok_or_else(|| ApiError::FailedPrecondition {
            reason: "NO_VOICE_PUBLIC_KEY",
            message: "voice practice needs a VAPI credential with a public key; this organization has none".into(),
        })?;
    let assistant = webhooks::vapi_assistant(core, &s).await?;
    Ok(VoiceSetup {
        name: name.to_owned(),
        public_key: credential.public_key,
        api_base_url: credential.base_url,
        assistant,
    })
}

fn require_voice_and_active(s: &session::Model) -> ApiResult<()> {
    if s.mode != salestrainer_proto::call::SessionMode::Voice as i32 {
        return Err(ApiError::FailedPrecondition {
            reason: "NOT_A_VOICE_SESSION",
            message: format!(
                "{} is a text session; start a VOICE session",
                store::session_name(s)
            ),
        });
    }
    if !store::state_of(s.state).is_some_and(|st| st.accepts_transcript()) {
        return Err(ApiError::FailedPrecondition {
            reason: "SESSION_NOT_ACTIVE",
            message: format!(
                "{} is no longer active; start a new session",
                store::session_name(s)
            ),
        });
    }
    Ok(())
}
