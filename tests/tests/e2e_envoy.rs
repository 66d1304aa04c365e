//! The distributed suite end to end, through Envoy only: four service processes (PostgreSQL
//! each, Redis bus), the real gateway config, OTLP traces. One journey: an admin sets up
//! a scenario, a trainee roleplays over gRPC, a second session arrives as a VAPI webhook,
//! both are graded, a manager reads the summary over REST/JSON and gRPC-Web, a trainee is
//! refused another trainee's analytics, and one trace covers gateway → call → bus →
//! grading → bus → analytics. Prints the measurements (run with `--nocapture`).
//!
//! Needs PostgreSQL (127.0.0.1:5432 or SALESTRAINER_TEST_POSTGRES_URL), Redis (db 13 of
//! 127.0.0.1:6379 or of SALESTRAINER_TEST_REDIS_URL's host), `envoy` on PATH and the
//! service binaries built (`cargo test --workspace` builds them).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use prost::Message;
use salestrainer_proto::{
    analytics::{self, analytics_service_client::AnalyticsServiceClient},
    call::{self, call_service_client::CallServiceClient},
    config::{self, config_service_client::ConfigServiceClient},
};
use salestrainer_runtime::Role;
use salestrainer_tests::{
    authed,
    cluster::{Cluster, GATEWAY_SERVICE_NAME},
    otlp::SpanRecord,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

const ORG: &str = "organizations/demo";
const TRAINEE_A: &str = "organizations/demo/members/trainee-a";
const TRAINEE_B: &str = "organizations/demo/members/trainee-b";
const VAPI_WEBHOOK_SECRET: &str = "e2e-vapi-webhook-secret";

/// The answer of a step, or a panic naming the step and the status.
fn ok<T>(step: &str, r: Result<tonic::Response<T>, Status>) -> T {
    match r {
        Ok(r) => r.into_inner(),
        Err(s) => panic!(
            "{step}: {:?} {:?} (details {} bytes)",
            s.code(),
            s.message(),
            s.details().len()
        ),
    }
}

/// A W3C trace context the test chooses, so the trace of session 1 is known in advance.
struct TraceContext {
    trace_id: String,
}

impl TraceContext {
    fn new() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// A `traceparent` with a fresh (client-side) parent span id, sampled.
    fn traceparent(&self) -> String {
        let span = uuid::Uuid::new_v4().simple().to_string();
        format!("00-{}-{}-01", self.trace_id, &span[..16])
    }

    fn request<T>(&self, msg: T, token: &str) -> tonic::Request<T> {
        let mut req = authed(msg, token);
        req.metadata_mut()
            .insert("traceparent", self.traceparent().parse().unwrap());
        req
    }
}

/// The next Converse message, or a panic naming the step.
async fn next(
    inbound: &mut tonic::Streaming<call::ConverseResponse>,
    step: String,
) -> Option<call::converse_response::Payload> {
    match tokio::time::timeout(Duration::from_secs(20), inbound.message()).await {
        Err(_) => panic!("{step}: no message on the Converse stream within 20s"),
        Ok(Err(s)) => panic!("{step}: Converse failed: {:?} {:?}", s.code(), s.message()),
        Ok(Ok(None)) => panic!("{step}: the Converse stream ended early"),
        Ok(Ok(Some(m))) => m.payload,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// gRPC-Web framing: flag byte, big-endian length, message.
fn grpc_web_frame(msg: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(msg);
    body
}

/// Splits a gRPC-Web response body into (data message, trailer text).
fn grpc_web_unframe(body: &[u8]) -> (Option<Vec<u8>>, String) {
    let (mut data, mut trailers) = (None, String::new());
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = (5 + len).min(rest.len());
        let payload = &rest[5..end];
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(payload));
        } else {
            data = Some(payload.to_vec());
        }
        rest = &rest[end..];
    }
    (data, trailers)
}

/// VAPI's end-of-call-report for `session`, in the shape VAPI posts it.
fn vapi_end_of_call_report(session: &str, call_id: &str) -> serde_json::Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now_ms - 120_000;
    let lines = [
        (
            "bot",
            "Hi, this is Dana from Northwind Logistics. What is this about?",
        ),
        (
            "user",
            "Hi Dana, thanks for your time. How do you plan your delivery routes today?",
        ),
        (
            "bot",
            "Mostly by hand in spreadsheets. We already have a routing tool though.",
        ),
        (
            "user",
            "I understand. What is the biggest challenge with that process, and how many drivers does it affect?",
        ),
        (
            "bot",
            "About forty drivers. Honestly it's too expensive for us this year.",
        ),
        (
            "user",
            "That's a fair point. Teams like yours recovered the cost within three months through lower fuel spend.",
        ),
        ("bot", "That would be interesting if it is true."),
        (
            "user",
            "Would you be open to a 30-minute meeting next Tuesday for a demo with your team?",
        ),
        ("bot", "Sure, let's book a meeting next Tuesday."),
    ];
    let messages: Vec<serde_json::Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (role, text))| {
            let offset_ms = i as i64 * 8_000 + 1_000;
            serde_json::json!({
                "role": role,
                "message": text,
                "time": start + offset_ms,
                "endTime": start + offset_ms + 6_000,
                "secondsFromStart": offset_ms as f64 / 1000.0,
                "duration": 6_000,
            })
        })
        .collect();
    serde_json::json!({
        "message": {
            "type": "end-of-call-report",
            "timestamp": now_ms,
            "call": {
                "id": call_id,
                "type": "webCall",
                "status": "ended",
                "metadata": { "session": session },
            },
            "endedReason": "customer-ended-call",
            "cost": 0.12,
            "startedAt": "2025-10-09T08:53:20.000Z",
            "endedAt": "2025-10-09T08:55:20.000Z",
            "artifact": {
                "messages": messages,
                "recordingUrl": format!("https://storage.vapi.ai/{call_id}-mono.wav"),
            },
        }
    })
}

fn state_name(state: i32) -> String {
    call::SessionState::try_from(state)
        .map(|s| s.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("state {state}"))
}

fn print_rss(label: &str, rss: &[(String, Option<u64>)]) {
    let cells: Vec<String> = rss
        .iter()
        .map(|(name, kib)| match kib {
            Some(k) => format!("{name} {:.1} MiB", *k as f64 / 1024.0),
            None => format!("{name} gone"),
        })
        .collect();
    println!("MEASURE rss {label}: {}", cells.join(", "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_through_envoy_with_one_trace_across_the_bus() {
    let boot = Instant::now();
    let cluster = Cluster::start().await;
    println!(
        "cluster up in {:.1}s (gateway {}, logs in {})",
        boot.elapsed().as_secs_f64(),
        cluster.gateway,
        cluster.dir().display()
    );
    let rss_at_rest = cluster.rss();

    let gateway = cluster.gateway_channel();
    let admin = cluster.token("demo-admin", Role::Admin);
    let manager = cluster.token("e2e-manager", Role::Manager);
    let trainee_a = cluster.token("trainee-a", Role::Trainee);
    let trainee_b = cluster.token("trainee-b", Role::Trainee);
    let mut cfg = ConfigServiceClient::new(gateway.clone());
    let mut calls = CallServiceClient::new(gateway.clone());
    let mut stats = AnalyticsServiceClient::new(gateway.clone());
    let journey = Instant::now();

    // ---- 1. the admin sets up members, persona, rubric, scenario, assignment, VAPI key ----
    for (id, subject, role, display) in [
        (
            "e2e-manager",
            "e2e-manager",
            config::Role::Manager,
            "Mara Manager",
        ),
        (
            "trainee-a",
            "trainee-a",
            config::Role::Trainee,
            "Ada Trainee",
        ),
        (
            "trainee-b",
            "trainee-b",
            config::Role::Trainee,
            "Ben Trainee",
        ),
    ] {
        ok(
            &format!("step 1: CreateMember {id}"),
            cfg.create_member(authed(
                config::CreateMemberRequest {
                    parent: ORG.into(),
                    member: Some(config::Member {
                        subject: subject.into(),
                        display_name: display.into(),
                        email: format!("{id}@demo.test"),
                        role: role as i32,
                        ..Default::default()
                    }),
                    member_id: id.into(),
                },
                &admin,
            ))
            .await,
        );
    }
    let persona = ok(
        "step 1: CreatePersona",
        cfg.create_persona(authed(
            config::CreatePersonaRequest {
                parent: ORG.into(),
                persona: Some(config::Persona {
                    display_name: "Dana Reyes".into(),
                    role: "Head of Operations".into(),
                    company: "Northwind Logistics".into(),
                    background:
                        "Runs a fleet of forty delivery vans; plans routes in spreadsheets.".into(),
                    personality: "Sceptical, busy, fair when given numbers.".into(),
                    objections: vec![
                        "We already have a routing tool.".into(),
                        "It's too expensive for us this year.".into(),
                    ],
                    difficulty: config::Difficulty::Medium as i32,
                    first_message: "Hi, this is Dana. What is this about?".into(),
                    ..Default::default()
                }),
                persona_id: "dana".into(),
            },
            &admin,
        ))
        .await,
    )
    .persona
    .unwrap();
    let criterion =
        |id: &str, weight: f64, description: &str, phrases: &[&str]| config::Criterion {
            id: id.into(),
            skill: id.into(),
            description: description.into(),
            weight,
            signal_phrases: phrases.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        };
    let rubric = ok(
        "step 1: CreateRubric",
        cfg.create_rubric(authed(
            config::CreateRubricRequest {
                parent: ORG.into(),
                rubric: Some(config::Rubric {
                    display_name: "Discovery call".into(),
                    criteria: vec![
                        criterion(
                            "discovery",
                            1.0,
                            "Asks open questions about the customer's process and pain.",
                            &["how do you", "biggest challenge", "how many"],
                        ),
                        criterion(
                            "objection_handling",
                            1.0,
                            "Acknowledges objections and answers them with evidence.",
                            &["i understand", "fair point", "recovered the cost"],
                        ),
                        criterion(
                            "closing",
                            1.0,
                            "Asks for a concrete next step.",
                            &["meeting", "next tuesday", "demo"],
                        ),
                    ],
                    passing_score: 60.0,
                    ..Default::default()
                }),
                rubric_id: "discovery-call".into(),
            },
            &admin,
        ))
        .await,
    )
    .rubric
    .unwrap();
    let scenario = ok(
        "step 1: CreateScenario",
        cfg.create_scenario(authed(
            config::CreateScenarioRequest {
                parent: ORG.into(),
                scenario: Some(config::Scenario {
                    display_name: "Book a demo with Northwind".into(),
                    persona: persona.name.clone(),
                    product_brief: "RouteWise plans delivery routes automatically.".into(),
                    goal: Some(config::Goal {
                        kind: config::GoalKind::BookMeeting as i32,
                        description: "Book a 30-minute demo meeting.".into(),
                    }),
                    rubric: rubric.name.clone(),
                    time_limit: Some(prost_types::Duration {
                        seconds: 600,
                        nanos: 0,
                    }),
                    open_to_all: true,
                    ..Default::default()
                }),
                scenario_id: "northwind-demo".into(),
            },
            &admin,
        ))
        .await,
    )
    .scenario
    .unwrap();
    let due = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 7 * 24 * 3600;
    let assignment = ok(
        "step 1: CreateAssignment",
        cfg.create_assignment(authed(
            config::CreateAssignmentRequest {
                parent: ORG.into(),
                assignment: Some(config::Assignment {
                    scenario: scenario.name.clone(),
                    assignees: vec![TRAINEE_A.into()],
                    due_time: Some(prost_types::Timestamp {
                        seconds: due,
                        nanos: 0,
                    }),
                    required_attempts: 1,
                    passing_score: 60.0,
                    state: config::AssignmentState::Open as i32,
                    ..Default::default()
                }),
                assignment_id: "northwind-week-1".into(),
            },
            &admin,
        ))
        .await,
    )
    .assignment
    .unwrap();
    ok(
        "step 1: CreateProviderCredential (VAPI)",
        cfg.create_provider_credential(authed(
            config::CreateProviderCredentialRequest {
                parent: ORG.into(),
                provider_credential: Some(config::ProviderCredential {
                    kind: config::ProviderKind::Vapi as i32,
                    display_name: "VAPI".into(),
                    api_key: "vapi-test-key-not-real".into(),
                    webhook_secret: VAPI_WEBHOOK_SECRET.into(),
                    ..Default::default()
                }),
                provider_credential_id: "vapi".into(),
            },
            &admin,
        ))
        .await,
    );
    println!("step 1 ok: members, persona, rubric, scenario, assignment, VAPI credential");

    // ---- 2. trainee A: a text roleplay over the Converse stream, ended by EndSession ----
    // Session 1's requests carry a trace id chosen here; step 7 looks for exactly that trace.
    let trace = TraceContext::new();
    let session1 = ok(
        "step 2: StartSession (TEXT, trainee A)",
        calls
            .start_session(trace.request(
                call::StartSessionRequest {
                    parent: ORG.into(),
                    scenario: scenario.name.clone(),
                    assignment: assignment.name.clone(),
                    mode: call::SessionMode::Text as i32,
                    request_id: uuid::Uuid::new_v4().to_string(),
                    drill: String::new(),
                },
                &trainee_a,
            ))
            .await,
    )
    .session
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<call::ConverseRequest>(8);
    let send = |payload: call::converse_request::Payload| call::ConverseRequest {
        payload: Some(payload),
    };
    tx.send(send(call::converse_request::Payload::Start(
        call::ConverseStart {
            session: session1.name.clone(),
        },
    )))
    .await
    .unwrap();
    let mut inbound = ok(
        "step 2: Converse (open stream)",
        calls
            .converse(trace.request(ReceiverStream::new(rx), &trainee_a))
            .await,
    );
    match next(&mut inbound, "step 2: Converse started".into()).await {
        Some(call::converse_response::Payload::Started(_)) => {}
        other => panic!("step 2: expected ConverseStarted first, got {other:?}"),
    }
    let turns = [
        "Hi Dana, thanks for taking the call. How do you plan your delivery routes today?",
        "What is the biggest challenge with that process, and how many drivers does it affect?",
        "I understand the budget concern. Teams like yours recovered the cost within three months through lower fuel spend.",
        "That's a fair point about your current tool. What would make switching worth it for you?",
        "Would you be open to a 30-minute meeting next Tuesday for a demo with your team?",
    ];
    let mut agreed = false;
    for (i, text) in turns.iter().enumerate() {
        let turn_id = format!("turn-{i}");
        tx.send(send(call::converse_request::Payload::Turn(
            call::TraineeTurn {
                text: (*text).into(),
                client_turn_id: turn_id.clone(),
            },
        )))
        .await
        .unwrap();
        let (mut accepted, mut chunks) = (false, 0);
        loop {
            match next(&mut inbound, format!("step 2: turn {i}")).await {
                Some(call::converse_response::Payload::Accepted(a))
                    if a.client_turn_id == turn_id =>
                {
                    accepted = true;
                }
                Some(call::converse_response::Payload::Chunk(_)) => chunks += 1,
                Some(call::converse_response::Payload::Done(d)) if d.client_turn_id == turn_id => {
                    println!("  trainee: {text}\n  persona: {}", d.full_text);
                    agreed |= d.agreed_next_step;
                    break;
                }
                Some(call::converse_response::Payload::Ended(e)) => {
                    panic!("step 2: the session ended during turn {i}: {e:?}")
                }
                _ => {}
            }
        }
        assert!(
            accepted,
            "step 2: turn {i} was never acknowledged (TurnAccepted)"
        );
        assert!(
            chunks > 0,
            "step 2: turn {i}'s reply was not streamed in chunks"
        );
    }
    let ended = ok(
        "step 2: EndSession (trainee A)",
        calls
            .end_session(trace.request(
                call::EndSessionRequest {
                    name: session1.name.clone(),
                    etag: String::new(),
                },
                &trainee_a,
            ))
            .await,
    )
    .session
    .unwrap();
    assert_ne!(
        ended.state,
        call::SessionState::Active as i32,
        "step 2: EndSession left the session ACTIVE"
    );
    // Closing our side now: the session is already ended, whatever the stream says last.
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await;
    println!(
        "step 2 ok: {} ended ({}), persona agreed to a next step: {agreed}",
        session1.name,
        state_name(ended.state)
    );

    // ---- 3. trainee B: a voice session that ends with VAPI's end-of-call report ----
    let started2 = ok(
        "step 3: StartSession (VOICE, trainee B)",
        calls
            .start_session(authed(
                call::StartSessionRequest {
                    parent: ORG.into(),
                    scenario: scenario.name.clone(),
                    assignment: String::new(),
                    mode: call::SessionMode::Voice as i32,
                    request_id: uuid::Uuid::new_v4().to_string(),
                    drill: String::new(),
                },
                &trainee_b,
            ))
            .await,
    );
    let session2 = started2.session.unwrap();
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let report = vapi_end_of_call_report(&session2.name, "call_e2e_vapi_1");
    // HTTP/1.1, as VAPI posts it.
    let resp = http1
        .post(format!("http://{}/webhooks/vapi", cluster.gateway))
        .header("content-type", "application/json")
        .header("x-vapi-secret", VAPI_WEBHOOK_SECRET)
        .body(report.to_string())
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap_or_else(|e| panic!("step 3: POST /webhooks/vapi through Envoy: {e}"));
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "step 3: VAPI webhook (HTTP/1.1) through Envoy answered {status}: {body:?}"
    );
    println!(
        "step 3 ok: {} ended by the VAPI webhook ({status} {body})",
        session2.name
    );

    // ---- 4. both graded: WatchSession pushes GRADED for 1; GetSession polled for 2 ----
    let mut watch = ok(
        "step 4: WatchSession (session 1)",
        calls
            .watch_session(authed(
                call::WatchSessionRequest {
                    name: session1.name.clone(),
                    ..Default::default()
                },
                &trainee_a,
            ))
            .await,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout_at(deadline, watch.message()).await;
        match msg {
            Err(_) => {
                panic!("step 4: WatchSession pushed no GRADED within 60s; states seen {seen:?}")
            }
            Ok(Err(s)) => panic!(
                "step 4: WatchSession failed: {:?} {:?}; states seen {seen:?}",
                s.code(),
                s.message()
            ),
            Ok(Ok(None)) => {
                panic!("step 4: WatchSession ended before GRADED; states seen {seen:?}")
            }
            Ok(Ok(Some(m))) => {
                seen.push(state_name(m.state));
                if m.state == call::SessionState::Graded as i32 {
                    let s = m.session.unwrap_or_default();
                    println!(
                        "step 4: session 1 GRADED (states {seen:?}): score {:.1}, passed {}, closed {}",
                        s.overall_score, s.passed, s.closed
                    );
                    break;
                }
                assert_ne!(
                    m.state,
                    call::SessionState::Failed as i32,
                    "step 4: session 1 grading FAILED; states seen {seen:?}"
                );
            }
        }
    }
    drop(watch);
    let deadline = Instant::now() + Duration::from_secs(60);
    let graded2 = loop {
        let s = ok(
            "step 4: GetSession (session 2)",
            calls
                .get_session(authed(
                    call::GetSessionRequest {
                        name: session2.name.clone(),
                    },
                    &trainee_b,
                ))
                .await,
        )
        .session
        .unwrap();
        if s.state == call::SessionState::Graded as i32 {
            break s;
        }
        assert_ne!(
            s.state,
            call::SessionState::Failed as i32,
            "step 4: session 2 grading FAILED"
        );
        assert!(
            Instant::now() < deadline,
            "step 4: session 2 not GRADED within 60s (last state {})",
            state_name(s.state)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!(
        "step 4 ok: session 2 GRADED: score {:.1}, passed {}, closed {}",
        graded2.overall_score, graded2.passed, graded2.closed
    );

    // ---- 5. the manager reads the organization summary: REST/JSON and gRPC-Web ----
    let rest_url = format!("http://{}/v1/{ORG}/summary", cluster.gateway);
    let deadline = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let resp = http1
            .get(&rest_url)
            .bearer_auth(&manager)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("step 5: GET {rest_url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "step 5: GET {rest_url} answered {status}: {text}"
        );
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("step 5: summary is not JSON ({e}): {text}"));
        let count = |k: &str| json["summary"][k].as_i64().unwrap_or(0);
        // The analytics read model is fed by events: it may trail GRADED by a moment.
        if count("sessions") >= 2 && count("gradedSessions") >= 2 {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "step 5: REST summary never showed 2 graded sessions within 30s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("step 5: REST/JSON summary: {}", json["summary"]);

    let resp = http1
        .post(format!(
            "http://{}/salestrainer.analytics.v1.AnalyticsService/GetOrganizationSummary",
            cluster.gateway
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(&manager)
        .body(grpc_web_frame(
            &analytics::GetOrganizationSummaryRequest {
                name: ORG.into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("step 5: gRPC-Web POST through Envoy: {e}"));
    let status = resp.status();
    let header_status = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .unwrap_or_default();
    let body = resp.bytes().await.unwrap();
    let (data, trailers) = grpc_web_unframe(&body);
    assert!(
        status.is_success() && content_type.starts_with("application/grpc-web"),
        "step 5: gRPC-Web answered {status} {content_type:?}"
    );
    let trailers = trailers.to_lowercase();
    assert!(
        trailers.contains("grpc-status:0") || header_status.as_deref() == Some("0"),
        "step 5: gRPC-Web status not OK: trailers {trailers:?}, header {header_status:?}"
    );
    let web = analytics::GetOrganizationSummaryResponse::decode(
        data.as_deref()
            .expect("step 5: gRPC-Web answer has no data frame"),
    )
    .unwrap()
    .summary
    .unwrap_or_default();
    assert!(
        web.sessions >= 2 && web.graded_sessions >= 2,
        "step 5: gRPC-Web summary {web:?}"
    );
    println!(
        "step 5 ok: gRPC-Web summary: {} sessions, {} graded, average {:.1}",
        web.sessions, web.graded_sessions, web.average_score
    );

    // ---- 6. a trainee is refused another trainee's analytics ----
    let own = stats
        .get_trainee_summary(authed(
            analytics::GetTraineeSummaryRequest {
                trainee: TRAINEE_A.into(),
                ..Default::default()
            },
            &trainee_a,
        ))
        .await;
    ok("step 6: GetTraineeSummary (trainee A, own)", own);
    let other = stats
        .get_trainee_summary(authed(
            analytics::GetTraineeSummaryRequest {
                trainee: TRAINEE_B.into(),
                ..Default::default()
            },
            &trainee_a,
        ))
        .await;
    match other {
        Err(s) if matches!(s.code(), Code::PermissionDenied | Code::NotFound) => {
            println!("step 6 ok: trainee A reading B's summary: {:?}", s.code());
        }
        Err(s) => panic!(
            "step 6: trainee A reading B's summary: expected PERMISSION_DENIED or NOT_FOUND, got {:?} {:?}",
            s.code(),
            s.message()
        ),
        Ok(r) => panic!(
            "step 6: trainee A read trainee B's summary: {:?}",
            r.into_inner()
        ),
    }
    let journey_time = journey.elapsed();
    let rss_after = cluster.rss();

    // ---- measurements (before the trace assertion, so a trace failure still reports them) ----
    println!("MEASURE journey wall time (steps 1-6, through Envoy): {journey_time:.2?}");
    print_rss("at rest (after start)", &rss_at_rest);
    print_rss("after the journey", &rss_after);
    latency_comparison(&cluster, &manager, &http1, &rest_url).await;
    print_rss("after the latency runs", &cluster.rss());

    // ---- 7. one trace: gateway → call → bus → grading → bus → analytics ----
    let chain = [GATEWAY_SERVICE_NAME, "call", "grading", "analytics"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = cluster.otlp.collector.trace(&trace.trace_id);
        // Some analytics span whose ancestry runs gateway → call → grading: each bus hop
        // carried the context on, rather than each service merely appearing in the trace.
        if spans
            .iter()
            .any(|s| s.service == "analytics" && is_subsequence(&chain, &lineage(&spans, s)))
        {
            break spans;
        }
        if Instant::now() >= deadline {
            print_trace(&trace.trace_id, &spans);
            let all = cluster.otlp.collector.spans();
            let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
            for s in &all {
                *by_service.entry(s.service.as_str()).or_default() += 1;
            }
            // Where the grading → analytics hop went instead.
            let graded_traces: BTreeSet<&str> = all
                .iter()
                .filter(|s| s.name.contains("session.graded"))
                .map(|s| s.trace_id.as_str())
                .collect();
            for other in graded_traces.iter().take(2) {
                let other_spans: Vec<SpanRecord> = all
                    .iter()
                    .filter(|s| s.trace_id == *other)
                    .cloned()
                    .collect();
                print_trace(other, &other_spans);
            }
            let lineages: Vec<String> = spans
                .iter()
                .filter(|s| s.service == "analytics" || s.service == "grading")
                .map(|s| format!("{}: {}", s.name, lineage(&spans, s).join(" → ")))
                .collect();
            panic!(
                "step 7: trace {} of session 1 never covered {} within 20s.\n\
                 Grading/analytics spans in it and their ancestry: {lineages:#?}\n\
                 {} traces hold a `session.graded` span (printed above); all {} spans by \
                 service: {by_service:?}",
                trace.trace_id,
                chain.join(" → "),
                graded_traces.len(),
                all.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    print_trace(&trace.trace_id, &spans);
    let all = cluster.otlp.collector.spans();
    let health: Vec<&SpanRecord> = all
        .iter()
        .filter(|s| s.name.contains("grpc.health"))
        .collect();
    assert!(
        health.is_empty(),
        "step 7: health checks were traced: {health:?}"
    );
    println!(
        "step 7 ok: trace {} covers {} ({} spans); none of the {} spans received is a health check",
        trace.trace_id,
        chain.join(" → "),
        spans.len(),
        all.len()
    );

    cluster.stop().await;
}

/// The services from the root of `span`'s trace down to it, consecutive repeats collapsed.
fn lineage<'a>(spans: &'a [SpanRecord], span: &'a SpanRecord) -> Vec<&'a str> {
    let mut path = vec![span.service.as_str()];
    let mut current = span;
    // Bounded: a malformed (cyclic) parent chain must not hang the test.
    for _ in 0..spans.len() {
        let Some(parent) = spans.iter().find(|s| s.span_id == current.parent_span_id) else {
            break;
        };
        if path.last() != Some(&parent.service.as_str()) {
            path.push(parent.service.as_str());
        }
        current = parent;
    }
    path.reverse();
    path
}

/// Whether `wanted` appears in `path` in order (not necessarily adjacent).
fn is_subsequence(wanted: &[&str], path: &[&str]) -> bool {
    let mut it = path.iter();
    wanted.iter().all(|w| it.any(|p| p == w))
}

/// Prints a trace as an indented tree (by parent span id).
fn print_trace(trace_id: &str, spans: &[SpanRecord]) {
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    fn walk(spans: &[SpanRecord], parent: &str, depth: usize) {
        for s in spans.iter().filter(|s| s.parent_span_id == parent) {
            println!("    {}{} [{}]", "  ".repeat(depth), s.name, s.service);
            walk(spans, &s.span_id, depth + 1);
        }
    }
    println!("trace {trace_id}:");
    let roots: BTreeSet<&str> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .map(|s| s.parent_span_id.as_str())
        .collect();
    for root in roots {
        walk(spans, root, 0);
    }
}

/// p50/p99 of GetOrganizationSummary: REST/JSON through Envoy, gRPC through Envoy, and gRPC
/// straight to the analytics service — 200 sequential calls each after a warm-up.
async fn latency_comparison(
    cluster: &Cluster,
    token: &str,
    http1: &reqwest::Client,
    rest_url: &str,
) {
    const N: usize = 200;
    let request = || {
        authed(
            analytics::GetOrganizationSummaryRequest {
                name: ORG.into(),
                ..Default::default()
            },
            token,
        )
    };
    let mut direct = AnalyticsServiceClient::new(cluster.direct_channel("analytics"));
    let mut via_envoy = AnalyticsServiceClient::new(cluster.gateway_channel());

    let mut rest = Vec::with_capacity(N);
    let mut grpc_envoy = Vec::with_capacity(N);
    let mut grpc_direct = Vec::with_capacity(N);
    for i in 0..N + 10 {
        let t = Instant::now();
        let resp = http1.get(rest_url).bearer_auth(token).send().await.unwrap();
        let status = resp.status();
        let _ = resp.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "latency: REST call {i} answered {status}"
        );
        if i >= 10 {
            rest.push(t.elapsed());
        }
        let t = Instant::now();
        ok(
            "latency: gRPC via Envoy",
            via_envoy.get_organization_summary(request()).await,
        );
        if i >= 10 {
            grpc_envoy.push(t.elapsed());
        }
        let t = Instant::now();
        ok(
            "latency: gRPC direct",
            direct.get_organization_summary(request()).await,
        );
        if i >= 10 {
            grpc_direct.push(t.elapsed());
        }
    }
    for (label, samples) in [
        ("REST/JSON through Envoy", &mut rest),
        ("gRPC through Envoy     ", &mut grpc_envoy),
        ("gRPC direct to service ", &mut grpc_direct),
    ] {
        samples.sort();
        println!(
            "MEASURE GetOrganizationSummary {label}: p50 {}  p99 {}  ({N} sequential calls)",
            fmt_ms(percentile(samples, 0.50)),
            fmt_ms(percentile(samples, 0.99))
        );
    }
}
