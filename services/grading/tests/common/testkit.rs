//! Test and benchmark helpers: a local fake OpenAI-compatible server speaking the real wire
//! format, recorded transcripts, static config inputs and SessionEnded events. Kept out of the
//! library: the tests include it as `common::testkit`, the bench by path.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use salestrainer_proto::events as ev;
use serde_json::{Value, json};

use salestrainer_grading::app::inputs::{
    Credential, GradingInputs, InputError, ScenarioInputs, TranscriptSource,
};
use salestrainer_grading::domain::types::{Criterion, GoalKind, RawTurn, Rubric};

/// What the fake provider does with one request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// A valid answer built from the request (every criterion, quotes from the transcript).
    Answer,
    /// A valid answer whose first quote is not in the transcript.
    BadQuote,
    /// Content that breaks the schema (no `criteria`).
    BreakSchema,
    /// An HTTP error with headers and a JSON body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// Waits this long, then answers.
    Hang(Duration),
}

impl Behaviour {
    pub fn status(status: u16, headers: &[(&str, &str)], body: Value) -> Behaviour {
        Behaviour::Status {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    pub fn insufficient_quota() -> Behaviour {
        Behaviour::status(
            429,
            &[],
            json!({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        )
    }
}

#[derive(Default)]
struct FakeState {
    script: Mutex<VecDeque<Behaviour>>,
    requests: AtomicU64,
    answered: AtomicU64,
    rejected_429: AtomicU64,
    /// The TPM limit as OpenAI enforces it: a bucket of `tpm` tokens refilling continuously
    /// at `tpm` per minute; (tokens left, when counted). Empty until the first request.
    bucket: Mutex<Option<(f64, Instant)>>,
    tpm: Option<u64>,
    completion_tokens: u64,
    tokens_used: AtomicU64,
    /// The body of the latest request, for tests that check what was sent.
    last_request: Mutex<Option<Value>>,
}

/// A local OpenAI-compatible server.
pub struct FakeProvider {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    /// Starts the server; `tpm` makes it enforce a tokens-per-minute limit (429 past it, and
    /// `x-ratelimit-*-tokens` headers on every answer).
    pub async fn start(tpm: Option<u64>) -> std::io::Result<FakeProvider> {
        let state = Arc::new(FakeState {
            tpm,
            completion_tokens: 150,
            ..FakeState::default()
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeProvider { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues behaviours for the next requests; after them it answers validly.
    pub fn script(&self, b: impl IntoIterator<Item = Behaviour>) {
        let mut s = self.state.script.lock().unwrap_or_else(|e| e.into_inner());
        s.extend(b);
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The body of the latest request received.
    pub fn last_request(&self) -> Option<Value> {
        self.state
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::SeqCst)
    }

    pub fn rejected_429(&self) -> u64 {
        self.state.rejected_429.load(Ordering::SeqCst)
    }

    /// Tokens of accepted requests (prompt + completion), as reported in `usage`.
    pub fn tokens_used(&self) -> u64 {
        self.state.tokens_used.load(Ordering::SeqCst)
    }

    pub fn credential(&self, rpm: u64, tpm: u64) -> Credential {
        Credential {
            name: format!("organizations/acme/credentials/fake-{}", self.addr.port()),
            base_url: self.base_url(),
            model: "fake-grader-1".into(),
            api_key: "sk-test-secret".into(),
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
        }
    }
}

async fn handle(
    State(st): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(req): Json<Value>,
) -> Response {
    st.requests.fetch_add(1, Ordering::SeqCst);
    *st.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(req.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test-secret") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}})),
        )
            .into_response();
    }
    let behaviour = {
        let mut s = st.script.lock().unwrap_or_else(|e| e.into_inner());
        s.pop_front().unwrap_or(Behaviour::Answer)
    };
    let prompt_tokens = (req.to_string().len() / 4) as u64;
    let total = prompt_tokens + st.completion_tokens;
    let mut limit_headers = Vec::new();
    if let Some(tpm) = st.tpm {
        let mut bucket = st.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let capacity = tpm as f64;
        let (left, at) = bucket.unwrap_or((capacity, now));
        let left = (left + now.duration_since(at).as_secs_f64() * capacity / 60.0).min(capacity);
        if left < total as f64 {
            *bucket = Some((left, now));
            st.rejected_429.fetch_add(1, Ordering::SeqCst);
            let wait = (total as f64 - left) * 60.0 / capacity;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after-ms", format!("{}", (wait * 1000.0).ceil() as u64))],
                Json(json!({"error": {"message": "Rate limit reached for tokens per min", "type": "tokens", "code": "rate_limit_exceeded"}})),
            )
                .into_response();
        }
        let left = left - total as f64;
        *bucket = Some((left, now));
        limit_headers = vec![
            ("x-ratelimit-limit-tokens", tpm.to_string()),
            (
                "x-ratelimit-remaining-tokens",
                format!("{}", left.floor() as u64),
            ),
            (
                "x-ratelimit-reset-tokens",
                format!("{:.3}s", (capacity - left) * 60.0 / capacity),
            ),
        ];
    }
    let content = match behaviour {
        Behaviour::Answer => answer(&req, false),
        Behaviour::BadQuote => answer(&req, true),
        Behaviour::BreakSchema => {
            json!({"summary": "no criteria here", "closed": false}).to_string()
        }
        Behaviour::Hang(d) => {
            tokio::time::sleep(d).await;
            answer(&req, false)
        }
        Behaviour::Status {
            status,
            headers,
            body,
        } => {
            if status == 429 {
                st.rejected_429.fetch_add(1, Ordering::SeqCst);
            }
            let mut resp = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Json(body),
            )
                .into_response();
            for (k, v) in headers {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::try_from(k.as_str()),
                    HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(name, value);
                }
            }
            return resp;
        }
    };
    st.answered.fetch_add(1, Ordering::SeqCst);
    st.tokens_used.fetch_add(total, Ordering::SeqCst);
    let mut resp = Json(json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": req.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": st.completion_tokens,
                  "total_tokens": total}
    }))
    .into_response();
    for (name, value) in limit_headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Builds a valid answer from the request: criterion ids and bounds from the schema, quotes
/// from the "[id] Speaker: text" transcript lines of the prompt.
fn answer(req: &Value, bad_quote: bool) -> String {
    let schema =
        &req["response_format"]["json_schema"]["schema"]["properties"]["criteria"]["items"];
    let variants: Vec<&Value> = match schema.get("anyOf").and_then(Value::as_array) {
        Some(v) => v.iter().collect(),
        None => vec![schema],
    };
    let mut items: Vec<(String, i64)> = Vec::new();
    for v in variants {
        let max = v["properties"]["score"]["maximum"].as_i64().unwrap_or(5);
        if let Some(ids) = v["properties"]["criterion_id"]["enum"].as_array() {
            for id in ids.iter().filter_map(Value::as_str) {
                items.push((id.to_owned(), max));
            }
        }
    }
    let prompt: String = req["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let quote = prompt
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (_, after) = rest.split_once("] ")?;
            let (_, text) = after.split_once(": ")?;
            Some(text.to_owned())
        })
        .next()
        .unwrap_or_default();
    let criteria: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (id, max))| {
            let q = if bad_quote && i == 0 {
                "We guarantee a 300% return on investment in one week.".to_owned()
            } else {
                quote.clone()
            };
            json!({"criterion_id": id, "score": max - 1, "rationale": "Solid.", "evidence": [q]})
        })
        .collect();
    json!({
        "criteria": criteria,
        "summary": "The trainee ran a structured discovery call.",
        "strengths": ["Asked open questions"],
        "improvements": ["Confirm the next step in writing"],
        "closed": true
    })
    .to_string()
}

/// Config inputs from memory.
pub struct StaticInputs {
    pub scenario: ScenarioInputs,
    pub credential: Mutex<Option<Credential>>,
}

impl StaticInputs {
    pub fn new(credential: Option<Credential>) -> Self {
        Self {
            scenario: sample_scenario(),
            credential: Mutex::new(credential),
        }
    }
}

impl GradingInputs for StaticInputs {
    fn scenario<'a>(
        &'a self,
        _organization: &'a str,
        _scenario: &'a str,
        _rubric_override: &'a str,
    ) -> BoxFuture<'a, Result<ScenarioInputs, InputError>> {
        let s = self.scenario.clone();
        Box::pin(async move { Ok(s) })
    }

    fn credential<'a>(
        &'a self,
        _organization: &'a str,
    ) -> BoxFuture<'a, Result<Option<Credential>, InputError>> {
        let c = self
            .credential
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Box::pin(async move { Ok(c) })
    }
}

/// Recorded transcripts by session; sessions not recorded get `default`.
pub struct RecordedTranscripts {
    pub by_session: Mutex<HashMap<String, Vec<RawTurn>>>,
    pub default: Vec<RawTurn>,
    pub fetches: AtomicU64,
}

impl RecordedTranscripts {
    pub fn new(default: Vec<RawTurn>) -> Self {
        Self {
            by_session: Mutex::new(HashMap::new()),
            default,
            fetches: AtomicU64::new(0),
        }
    }
}

impl TranscriptSource for RecordedTranscripts {
    fn transcript<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RawTurn>, InputError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let t = self
            .by_session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .cloned()
            .unwrap_or_else(|| self.default.clone());
        Box::pin(async move { Ok(t) })
    }
}

fn crit(id: &str, skill: &str, description: &str, phrases: &[&str]) -> Criterion {
    Criterion {
        id: id.into(),
        skill: skill.into(),
        description: description.into(),
        weight: 1.0,
        scale_min: 1,
        scale_max: 5,
        levels: vec![(1, "poor".into()), (5, "excellent".into())],
        signal_phrases: phrases.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn sample_rubric() -> Rubric {
    Rubric {
        criteria: vec![
            crit(
                "discovery",
                "discovery",
                "Asks open questions to uncover needs",
                &["tell me about", "how do you"],
            ),
            crit(
                "objections",
                "objection handling",
                "Acknowledges and answers objections",
                &["i understand", "that makes sense"],
            ),
            crit(
                "closing",
                "closing",
                "Asks for a concrete next step",
                &["meeting", "next step"],
            ),
            crit("rapport", "rapport", "Builds rapport", &["thanks for"]),
        ],
        passing_score: 60.0,
    }
}

pub fn sample_scenario() -> ScenarioInputs {
    ScenarioInputs {
        rubric_name: "organizations/acme/rubrics/discovery".into(),
        rubric: sample_rubric(),
        goal: GoalKind::BookMeeting,
        product_brief:
            "Routewise: route optimisation software for delivery fleets that cuts fuel costs".into(),
        persona_name: Some("Dana".into()),
        persona_role: "Head of Operations".into(),
        persona_company: "Northwind Freight".into(),
        template: None,
    }
}

fn turn(i: usize, who: &str, text: &str, start_s: u64, end_s: u64) -> RawTurn {
    RawTurn {
        id: format!("seg-{i}"),
        speaker_label: who.into(),
        text: text.into(),
        start_ms: Some(start_s * 1000),
        end_ms: Some(end_s * 1000),
    }
}

/// A clearly strong discovery call that books a meeting.
pub fn strong_call() -> Vec<RawTurn> {
    let lines = [
        (
            "user",
            "Hi Dana, thanks for taking the time today. How is your week going?",
        ),
        (
            "assistant",
            "Busy, we have a lot of deliveries. What is this about?",
        ),
        (
            "user",
            "I work with delivery fleets on fuel costs. Tell me about how you plan routes today?",
        ),
        (
            "assistant",
            "We plan them by hand every morning, it takes two hours and fuel is eating our margin.",
        ),
        (
            "user",
            "How do you measure the fuel cost per route right now, and what would a ten percent cut mean for you?",
        ),
        (
            "assistant",
            "We don't measure per route. Ten percent would be huge, but honestly it's too expensive to switch.",
        ),
        (
            "user",
            "I understand, that makes sense. Many fleets felt that way; Routewise usually pays for itself in fuel savings within three months.",
        ),
        ("assistant", "Okay, that sounds interesting."),
        (
            "user",
            "Would you be open to a 30 minute meeting next Tuesday at 10am to look at your routes together?",
        ),
        (
            "assistant",
            "Yes, Tuesday at 10 works for me. Send me an invite.",
        ),
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, (w, t))| turn(i, w, t, (i as u64) * 12, (i as u64) * 12 + 10))
        .collect()
}

/// A clearly weak call: a monologue, fillers, no questions, no next step.
pub fn weak_call() -> Vec<RawTurn> {
    let lines = [
        (
            "user",
            "Um, hi, so, like, I'm calling about our software, it's um really great and it does a lot of things.",
        ),
        ("assistant", "Okay. We are busy."),
        (
            "user",
            "Yeah so basically it's like the best product and um you should buy it, it has features and stuff and it's cheap.",
        ),
        (
            "assistant",
            "It's too expensive for us, we are not interested.",
        ),
        (
            "user",
            "Well um it's really good, like, everyone uses it, so yeah.",
        ),
        ("assistant", "No thanks. Goodbye."),
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, (w, t))| turn(i, w, t, (i as u64) * 15, (i as u64) * 15 + 14))
        .collect()
}

/// A SessionEnded event as the call service records it.
pub fn session_ended(organization: &str, session_id: &str) -> ev::Event {
    let session = format!("{organization}/sessions/{session_id}");
    salestrainer_runtime::events::new_event(
        organization,
        "call",
        ev::event::Payload::SessionEnded(ev::SessionEnded {
            session,
            trainee: format!("{organization}/members/trainee-1"),
            scenario: format!("{organization}/scenarios/discovery"),
            assignment: String::new(),
            mode: ev::SessionMode::Text as i32,
            start_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() - 120,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp(),
                nanos: 0,
            }),
            duration: Some(prost_types::Duration {
                seconds: 120,
                nanos: 0,
            }),
            end_reason: ev::EndReason::TraineeEnded as i32,
            end_reason_detail: String::new(),
            usage: None,
            ..Default::default()
        }),
    )
}
