//! Harness of the call service's end-to-end tests: the whole suite in-process (config is the
//! source of scenarios and secrets) on 127.0.0.1:0, on SQLite or PostgreSQL, seeded with an
//! organization "acme" (trainee tom, trainee tina, manager mia), a persona, a rubric, scenarios
//! and voice-provider credentials.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::Role;
pub use salestrainer_tests::Backend;
use salestrainer_tests::{TestApp, authed, spawn_app_with, wait_serving};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

pub const VAPI_SECRET: &str = "vapi-webhook-secret-1234";
pub const RETELL_KEY: &str = "retell-api-key-5678";
pub const SCENARIO: &str = "organizations/acme/scenarios/cold-call";
pub const RESTRICTED: &str = "organizations/acme/scenarios/restricted";

pub struct Suite {
    pub app: TestApp,
    pub call: pb::call_service_client::CallServiceClient<Channel>,
    pub config: cfg::config_service_client::ConfigServiceClient<Channel>,
    pub tom: String,
    pub tina: String,
    pub mia: String,
    pub admin: String,
    pub service: String,
}

pub async fn suite(backend: Backend) -> Suite {
    suite_with(backend, |_| {}).await
}

pub async fn suite_with(
    backend: Backend,
    tweak: impl FnOnce(&mut salestrainer_runtime::Settings),
) -> Suite {
    let app = spawn_app_with(|s| {
        s.database_url = backend.database_url();
        tweak(s);
    })
    .await;
    // A database or Redis that is down fails here: the tests do not skip.
    wait_serving(&app, "", Duration::from_secs(60)).await;
    let s = Suite {
        call: pb::call_service_client::CallServiceClient::new(app.channel.clone()),
        config: cfg::config_service_client::ConfigServiceClient::new(app.channel.clone()),
        tom: app.token(Role::Trainee, "tom", "acme"),
        tina: app.token(Role::Trainee, "tina", "acme"),
        mia: app.token(Role::Manager, "mia", "acme"),
        admin: app.token(Role::Admin, "alice", "acme"),
        service: app.service_token("grading"),
        app,
    };
    seed(&s).await;
    s
}

async fn seed(s: &Suite) {
    let mut c = s.config.clone();
    c.create_organization(authed(
        cfg::CreateOrganizationRequest {
            organization: Some(cfg::Organization {
                display_name: "Acme".into(),
                ..Default::default()
            }),
            organization_id: "acme".into(),
        },
        &s.service,
    ))
    .await
    .expect("create organization");
    for (id, role) in [
        ("alice", cfg::Role::Admin),
        ("mia", cfg::Role::Manager),
        ("tom", cfg::Role::Trainee),
        ("tina", cfg::Role::Trainee),
    ] {
        add_member(s, id, role).await;
    }
    c.create_persona(authed(
        cfg::CreatePersonaRequest {
            parent: "organizations/acme".into(),
            persona: Some(cfg::Persona {
                display_name: "Dana Reyes".into(),
                role: "Head of Operations".into(),
                company: "Northwind Logistics".into(),
                background: "We run 40 delivery trucks across three states. \
                    Dispatch is planned by hand in spreadsheets every morning. \
                    Late deliveries cost us about 20k a month in penalties."
                    .into(),
                personality: "sceptical, busy".into(),
                objections: vec!["Your price is too high for a company our size.".into()],
                difficulty: cfg::Difficulty::Easy as i32,
                voice_id: "voice-dana".into(),
                ..Default::default()
            }),
            persona_id: "dana".into(),
        },
        &s.admin,
    ))
    .await
    .expect("create persona");
    c.create_rubric(authed(
        cfg::CreateRubricRequest {
            parent: "organizations/acme".into(),
            rubric: Some(cfg::Rubric {
                display_name: "Default".into(),
                criteria: vec![cfg::Criterion {
                    id: "discovery".into(),
                    skill: "discovery".into(),
                    weight: 1.0,
                    ..Default::default()
                }],
                passing_score: 70.0,
                ..Default::default()
            }),
            rubric_id: "default".into(),
        },
        &s.admin,
    ))
    .await
    .expect("create rubric");
    for (id, open) in [("cold-call", true), ("restricted", false)] {
        c.create_scenario(authed(
            cfg::CreateScenarioRequest {
                parent: "organizations/acme".into(),
                scenario: Some(cfg::Scenario {
                    display_name: id.into(),
                    persona: "organizations/acme/personas/dana".into(),
                    rubric: "organizations/acme/rubrics/default".into(),
                    product_brief:
                        "RouteWise optimises delivery routes automatically, with a driver app."
                            .into(),
                    goal: Some(cfg::Goal {
                        kind: cfg::GoalKind::BookMeeting as i32,
                        description: String::new(),
                    }),
                    open_to_all: open,
                    ..Default::default()
                }),
                scenario_id: id.into(),
            },
            &s.admin,
        ))
        .await
        .expect("create scenario");
    }
    for (id, kind, key, secret) in [
        (
            "vapi",
            cfg::ProviderKind::Vapi,
            "vapi-private-key",
            VAPI_SECRET,
        ),
        ("retell", cfg::ProviderKind::Retell, RETELL_KEY, ""),
    ] {
        c.create_provider_credential(authed(
            cfg::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(cfg::ProviderCredential {
                    kind: kind as i32,
                    display_name: id.into(),
                    api_key: key.into(),
                    webhook_secret: secret.into(),
                    ..Default::default()
                }),
                provider_credential_id: id.into(),
            },
            &s.admin,
        ))
        .await
        .expect("create credential");
    }
}

impl Suite {
    /// The token of the admin of another organization ("globex"), a member there.
    pub async fn outsider(&self) -> String {
        let mut c = self.config.clone();
        c.create_organization(authed(
            cfg::CreateOrganizationRequest {
                organization: Some(cfg::Organization {
                    display_name: "Globex".into(),
                    ..Default::default()
                }),
                organization_id: "globex".into(),
            },
            &self.service,
        ))
        .await
        .expect("create organization");
        c.create_member(authed(
            cfg::CreateMemberRequest {
                parent: "organizations/globex".into(),
                member: Some(cfg::Member {
                    subject: "gary".into(),
                    display_name: "gary".into(),
                    role: cfg::Role::Admin as i32,
                    ..Default::default()
                }),
                member_id: "gary".into(),
            },
            &self.service,
        ))
        .await
        .expect("create member");
        self.app.token(Role::Admin, "gary", "globex")
    }

    pub async fn start(&self, token: &str, mode: pb::SessionMode) -> pb::StartSessionResponse {
        self.call
            .clone()
            .start_session(authed(
                pb::StartSessionRequest {
                    parent: "organizations/acme".into(),
                    scenario: SCENARIO.into(),
                    mode: mode as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("start session")
            .into_inner()
    }

    pub async fn session(&self, name: &str) -> pb::Session {
        self.call
            .clone()
            .get_session(authed(
                pb::GetSessionRequest { name: name.into() },
                &self.mia,
            ))
            .await
            .expect("get session")
            .into_inner()
            .session
            .expect("session")
    }

    pub async fn transcript(&self, name: &str) -> pb::Transcript {
        self.call
            .clone()
            .get_transcript(authed(
                pb::GetTranscriptRequest {
                    name: format!("{name}/transcript"),
                },
                &self.service,
            ))
            .await
            .expect("get transcript")
            .into_inner()
            .transcript
            .expect("transcript")
    }

    pub async fn converse(&self, token: &str, session: &str) -> Conversation {
        Conversation::open(self.call.clone(), token, session)
            .await
            .expect("open conversation")
    }

    /// A new TEXT session of `token`'s trainee, and its conversation past the greeting.
    pub async fn greeted(&self, token: &str) -> (pb::Session, Conversation) {
        let session = self
            .start(token, pb::SessionMode::Text)
            .await
            .session
            .expect("session");
        let mut c = self.converse(token, &session.name).await;
        c.next().await.expect("started");
        c.reply().await.expect("greeting");
        (session, c)
    }
}

/// A Converse stream driven turn by turn.
pub struct Conversation {
    pub tx: mpsc::Sender<pb::ConverseRequest>,
    pub rx: tonic::Streaming<pb::ConverseResponse>,
}

/// A persona reply as received.
#[derive(Debug, Default)]
pub struct Reply {
    pub chunks: Vec<String>,
    pub done: Option<pb::PersonaReplyDone>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.chunks.concat()
    }
}

impl Conversation {
    pub async fn open(
        mut client: pb::call_service_client::CallServiceClient<Channel>,
        token: &str,
        session: &str,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::ConverseRequest {
            payload: Some(pb::converse_request::Payload::Start(pb::ConverseStart {
                session: session.into(),
            })),
        })
        .await
        .unwrap();
        let rx = client
            .converse(authed(ReceiverStream::new(rx), token))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    pub async fn next(&mut self) -> Result<pb::converse_response::Payload, tonic::Status> {
        let msg = tokio::time::timeout(Duration::from_secs(20), self.rx.message())
            .await
            .expect("reply within 20 s")?;
        Ok(msg.expect("stream open").payload.expect("payload"))
    }

    /// Reads chunks until the reply's `done`.
    pub async fn reply(&mut self) -> Result<Reply, tonic::Status> {
        let mut r = Reply::default();
        loop {
            match self.next().await? {
                pb::converse_response::Payload::Chunk(c) => {
                    assert_eq!(c.index as usize, r.chunks.len(), "chunks in order");
                    r.chunks.push(c.text);
                }
                pb::converse_response::Payload::Done(d) => {
                    r.done = Some(d);
                    return Ok(r);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub async fn say(&mut self, text: &str, id: &str) -> Result<Reply, tonic::Status> {
        self.send_turn(text, id).await;
        match self.next().await? {
            pb::converse_response::Payload::Accepted(a) => assert_eq!(a.client_turn_id, id),
            other => panic!("expected accepted, got {other:?}"),
        }
        self.reply().await
    }

    pub async fn send_turn(&self, text: &str, id: &str) {
        self.tx
            .send(pb::ConverseRequest {
                payload: Some(pb::converse_request::Payload::Turn(pb::TraineeTurn {
                    text: text.into(),
                    client_turn_id: id.into(),
                })),
            })
            .await
            .unwrap();
    }

    pub async fn end(&mut self) -> pb::SessionEndedNotice {
        self.tx
            .send(pb::ConverseRequest {
                payload: Some(pb::converse_request::Payload::End(pb::EndConversation {})),
            })
            .await
            .unwrap();
        match self.next().await.expect("ended") {
            pb::converse_response::Payload::Ended(e) => e,
            other => panic!("expected ended, got {other:?}"),
        }
    }
}

/// Waits for an event about `session` of the given type on `topic`.
pub async fn await_event(
    sub: &mut salestrainer_bus::Subscription,
    session: &str,
    want: &str,
) -> salestrainer_proto::events::Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| panic!("no {want} event for {session} within 20 s"))
            .expect("subscription open");
        let ev = salestrainer_runtime::events::decode(&d.envelope).expect("decode");
        let _ = d.ack().await;
        use salestrainer_proto::events::event::Payload;
        let (kind, s) = match &ev.payload {
            Some(Payload::SessionStarted(e)) => ("started", e.session.clone()),
            Some(Payload::SessionEnded(e)) => ("ended", e.session.clone()),
            _ => continue,
        };
        if kind == want && s == session {
            return ev;
        }
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Makes subject `id` a member of organization acme with `role`.
pub async fn add_member(s: &Suite, id: &str, role: cfg::Role) {
    s.config
        .clone()
        .create_member(authed(
            cfg::CreateMemberRequest {
                parent: "organizations/acme".into(),
                member: Some(cfg::Member {
                    subject: id.into(),
                    display_name: id.into(),
                    role: role as i32,
                    ..Default::default()
                }),
                member_id: id.into(),
            },
            &s.service,
        ))
        .await
        .expect("create member");
}

/// Gives organization acme an LLM persona: the OpenAI-compatible provider at `base_url`.
pub async fn use_llm(s: &Suite, base_url: String) {
    s.config
        .clone()
        .create_provider_credential(authed(
            cfg::CreateProviderCredentialRequest {
                parent: "organizations/acme".into(),
                provider_credential: Some(cfg::ProviderCredential {
                    kind: cfg::ProviderKind::OpenaiCompatible as i32,
                    display_name: "fake".into(),
                    base_url,
                    model: "fake-model".into(),
                    api_key: "sk-test-key".into(),
                    ..Default::default()
                }),
                provider_credential_id: "llm".into(),
            },
            &s.admin,
        ))
        .await
        .expect("create the LLM credential");
}

/// A fake OpenAI-compatible provider whose every streamed completion (real SSE) sends its
/// first token after `first_token` and then two more 10 ms apart, as a steady provider would.
/// Anything else (a grader's JSON request) is refused with 400. Returns its base URL.
pub async fn steady_llm(first_token: Duration) -> String {
    use axum::{Json, Router, body::Body, routing::post};
    use futures::StreamExt;

    let handler = move |Json(body): Json<serde_json::Value>| async move {
        if body["stream"] != true {
            return axum::response::Response::builder()
                .status(400)
                .body(Body::empty())
                .expect("response");
        }
        let sse =
            |data: String| Ok::<_, std::io::Error>(bytes::Bytes::from(format!("data: {data}\n\n")));
        let chunk =
            |t: &str| sse(serde_json::json!({"choices":[{"delta":{"content":t}}]}).to_string());
        let items = vec![
            (first_token, chunk("Sure")),
            (Duration::from_millis(10), chunk(", tell")),
            (Duration::from_millis(10), chunk(" me more.")),
            (
                Duration::ZERO,
                sse(r#"{"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":7}}"#.into()),
            ),
            (Duration::ZERO, sse("[DONE]".into())),
        ];
        let stream = futures::stream::iter(items).then(|(wait, item)| async move {
            tokio::time::sleep(wait).await;
            item
        });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("response")
    };
    let app = Router::new().route("/v1/chat/completions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}
