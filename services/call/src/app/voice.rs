//! GetVoiceConfig: whether an organization's trainees can call from the browser; and
//! GetVoiceSetup: what the trainee's browser needs to start a VOICE session's call with VAPI's
//! web SDK — the organization's public web key and the session's assistant (the one VAPI's
//! `assistant-request` gets on a phone call, see `app::webhooks`).

use salestrainer_config_client::ResolvedCredential;
use salestrainer_proto::config as cfg;
use salestrainer_runtime::{ApiError, ApiResult, Principal, names};

use super::{CallApp, load_visible, member_name, webhooks};
use crate::store::{self, session};

const SUFFIX: &str = "/voiceSetup";
const CONFIG_SUFFIX: &str = "/voiceConfig";

/// An organization's voice practice.
pub struct VoiceConfig {
    pub name: String,
    pub has_provider: bool,
    pub web_calls: bool,
}

pub async fn config(core: &CallApp, p: &Principal, name: &str) -> ApiResult<VoiceConfig> {
    let org = name
        .strip_suffix(CONFIG_SUFFIX)
        .and_then(names::parse_organization)
        .ok_or_else(|| {
            ApiError::invalid("name", "must be organizations/{organization}/voiceConfig")
        })?;
    if !p.can_access_organization(org) {
        return Err(ApiError::NotFound(name.to_owned()));
    }
    let vapi = vapi_credential(core, org).await?;
    Ok(VoiceConfig {
        name: name.to_owned(),
        has_provider: vapi.is_some(),
        web_calls: vapi.is_some_and(|c| !c.public_key.is_empty()),
    })
}

/// The organization's usable VAPI credential: none, or one whose key was cleared (config
/// answers FAILED_PRECONDITION), both mean no voice calls.
async fn vapi_credential(core: &CallApp, org: &str) -> ApiResult<Option<ResolvedCredential>> {
    match core
        .config
        .credential(&names::organization_name(org), cfg::ProviderKind::Vapi)
        .await
    {
        Ok(found) => Ok(found),
        Err(st) if st.code() == tonic::Code::FailedPrecondition => Ok(None),
        Err(st) => Err(ApiError::from_peer(
            &st,
            "the organization's VAPI credential",
        )),
    }
}

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
    let credential = vapi_credential(core, &s.organization)
        .await?
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
