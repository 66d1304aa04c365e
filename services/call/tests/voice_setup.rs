//! GetVoiceConfig and GetVoiceSetup (issue 15): once an admin has saved a public web key on
//! the organization's VAPI credential (through UpdateProviderCredential's update mask,
//! validated), every member learns that browser calls are possible and a VOICE session's
//! trainee gets the key and the session's assistant; before that, and for everyone else, a
//! clear refusal. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Suite, VAPI_SECRET, suite};
use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_tests::authed;
use tonic::Code;
use tonic_types::StatusExt;

const PUBLIC_KEY: &str = "0b7c2a4e-5d1f-4c3b-9a8e-7f6d5c4b3a21";
const CREDENTIAL: &str = "organizations/acme/credentials/vapi";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_voice_setup() {
    voice_setup(suite(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_voice_setup() {
    voice_setup(suite(Backend::Postgres).await).await;
}

fn reason(status: &tonic::Status) -> Option<String> {
    status.get_details_error_info().map(|i| i.reason)
}

fn violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn get(s: &Suite, token: &str, name: &str) -> Result<pb::VoiceSetup, tonic::Status> {
    s.call
        .clone()
        .get_voice_setup(authed(
            pb::GetVoiceSetupRequest { name: name.into() },
            token,
        ))
        .await
        .map(|r| r.into_inner().voice_setup.expect("voice_setup"))
}

async fn voice_config(
    s: &Suite,
    token: &str,
    name: &str,
) -> Result<pb::VoiceConfig, tonic::Status> {
    s.call
        .clone()
        .get_voice_config(authed(
            pb::GetVoiceConfigRequest { name: name.into() },
            token,
        ))
        .await
        .map(|r| r.into_inner().voice_config.expect("voice_config"))
}

async fn credential(s: &Suite) -> cfg::ProviderCredential {
    s.config
        .clone()
        .get_provider_credential(authed(
            cfg::GetProviderCredentialRequest {
                name: CREDENTIAL.into(),
            },
            &s.admin,
        ))
        .await
        .expect("get credential")
        .into_inner()
        .provider_credential
        .expect("credential")
}

async fn set_public_key(s: &Suite, key: &str) -> Result<cfg::ProviderCredential, tonic::Status> {
    let current = credential(s).await;
    s.config
        .clone()
        .update_provider_credential(authed(
            cfg::UpdateProviderCredentialRequest {
                provider_credential: Some(cfg::ProviderCredential {
                    name: CREDENTIAL.into(),
                    public_key: key.into(),
                    etag: current.etag,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["public_key".into()],
                }),
            },
            &s.admin,
        ))
        .await
        .map(|r| r.into_inner().provider_credential.expect("credential"))
}

fn field<'a>(s: &'a prost_types::Struct, path: &[&str]) -> Option<&'a prost_types::value::Kind> {
    use prost_types::value::Kind;
    let (last, init) = path.split_last()?;
    let mut cur = s;
    for k in init {
        match cur.fields.get(*k)?.kind.as_ref()? {
            Kind::StructValue(inner) => cur = inner,
            _ => return None,
        }
    }
    cur.fields.get(*last)?.kind.as_ref()
}

fn text(s: &prost_types::Struct, path: &[&str]) -> String {
    match field(s, path) {
        Some(prost_types::value::Kind::StringValue(v)) => v.clone(),
        other => panic!("{path:?} is not a string: {other:?}"),
    }
}

async fn voice_setup(s: Suite) {
    let session = s
        .start(&s.tom, pb::SessionMode::Voice)
        .await
        .session
        .unwrap()
        .name;
    let name = format!("{session}/voiceSetup");

    // No public key yet: no browser calls, and the clear refusal the console shows.
    const CONFIG: &str = "organizations/acme/voiceConfig";
    let before_key = voice_config(&s, &s.tina, CONFIG).await.unwrap();
    assert_eq!(before_key.name, CONFIG);
    assert_eq!(before_key.provider, pb::VoiceProvider::Vapi as i32);
    assert!(!before_key.web_calls);
    let no_key = get(&s, &s.tom, &name).await.unwrap_err();
    assert_eq!(no_key.code(), Code::FailedPrecondition, "{no_key:?}");
    assert_eq!(reason(&no_key).as_deref(), Some("NO_VOICE_PUBLIC_KEY"));

    // A bad key is refused on its field and changes nothing; so is a key on an LLM credential.
    let before = credential(&s).await;
    let long = "k".repeat(257);
    for bad in ["has space", "line\nbreak", long.as_str()] {
        let e = set_public_key(&s, bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert_eq!(violations(&e), vec!["provider_credential.public_key"]);
    }
    assert_eq!(credential(&s).await.etag, before.etag);
    let llm = s
        .config
        .clone()
        .create_provider_credential(authed(
            cfg::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(cfg::ProviderCredential {
                    kind: cfg::ProviderKind::OpenaiCompatible as i32,
                    api_key: "llm-key-of-some-length".into(),
                    public_key: PUBLIC_KEY.into(),
                    ..Default::default()
                }),
                provider_credential_id: "llm".into(),
            },
            &s.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&llm), vec!["provider_credential.public_key"]);
    // A trainee may not set it.
    let e = s
        .config
        .clone()
        .update_provider_credential(authed(
            cfg::UpdateProviderCredentialRequest {
                provider_credential: Some(cfg::ProviderCredential {
                    name: CREDENTIAL.into(),
                    public_key: PUBLIC_KEY.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["public_key".into()],
                }),
            },
            &s.tom,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The admin saves it (only it: the key and the secret stay).
    let saved = set_public_key(&s, &format!("  {PUBLIC_KEY} "))
        .await
        .unwrap();
    assert_eq!(saved.public_key, PUBLIC_KEY, "trimmed, shown unmasked");
    assert_eq!(saved.masked_api_key, before.masked_api_key);
    assert!(saved.has_webhook_secret);
    assert_ne!(saved.etag, before.etag);
    assert_eq!(credential(&s).await.public_key, PUBLIC_KEY);

    // The call service drops its cached credential on ConfigChanged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !voice_config(&s, &s.tina, CONFIG).await.unwrap().web_calls {
        assert!(Instant::now() < deadline, "web calls never became possible");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup = loop {
        match get(&s, &s.tom, &name).await {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(reason(&e).as_deref(), Some("NO_VOICE_PUBLIC_KEY"), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the public key never reached the call service: {e:?}"),
        }
    };
    assert_eq!(setup.name, name);
    assert_eq!(setup.provider, pb::VoiceProvider::Vapi as i32);
    assert_eq!(setup.public_key, PUBLIC_KEY);
    assert_eq!(setup.api_base_url, "https://api.vapi.ai");
    let a = setup.assistant.as_ref().expect("assistant");
    assert_eq!(text(a, &["metadata", "session"]), session);
    assert_eq!(
        text(a, &["serverUrl"]),
        format!("http://{}/webhooks/vapi", s.app.ctx.local_addr)
    );
    assert!(!text(a, &["firstMessage"]).is_empty());
    assert_eq!(text(a, &["voice", "voiceId"]), "voice-dana");
    let Some(prost_types::value::Kind::ListValue(messages)) = field(a, &["model", "messages"])
    else {
        panic!("model.messages")
    };
    let prompt = format!("{:?}", messages.values);
    assert!(
        prompt.contains("Dana Reyes"),
        "the persona's prompt: {prompt}"
    );
    let dump = format!("{setup:?}");
    assert!(
        !dump.contains(VAPI_SECRET) && !dump.contains("vapi-private-key"),
        "no secret in {dump}"
    );

    // Nobody else gets the assistant: staff, another trainee, another organization.
    for token in [&s.mia, &s.admin, &s.tina] {
        let e = get(&s, token, &name).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    let outsider = s.outsider().await;
    let e = get(&s, &outsider, &name).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = voice_config(&s, &outsider, CONFIG).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    for bad in [
        "organizations/acme",
        "organizations/acme/voiceSetup",
        "voiceConfig",
    ] {
        let e = voice_config(&s, &s.tom, bad).await.unwrap_err();
        assert_eq!(violations(&e), vec!["name"], "{bad}: {e:?}");
    }
    for bad in [session.as_str(), "organizations/acme/voiceSetup", ""] {
        let e = get(&s, &s.tom, bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
        assert_eq!(violations(&e), vec!["name"]);
    }

    // A text session has no voice call; an ended one no longer starts one.
    let text_session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap()
        .name;
    let e = get(&s, &s.tom, &format!("{text_session}/voiceSetup"))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("NOT_A_VOICE_SESSION"), "{e:?}");
    s.call
        .clone()
        .cancel_session(authed(
            pb::CancelSessionRequest {
                name: session.clone(),
                ..Default::default()
            },
            &s.tom,
        ))
        .await
        .expect("cancel");
    let e = get(&s, &s.tom, &name).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e).as_deref(), Some("SESSION_NOT_ACTIVE"), "{e:?}");
}
