//! Shared by the authorization matrix (`authorization.rs`), the attacker suite (`attacker.rs`)
//! and the revocation latency test: the whole suite over real connections, on SQLite or
//! PostgreSQL (optionally Redis as the bus), with organization "acme" — admin alice, manager
//! mia, trainee tom (with a TEXT session, graded when asked), dan and rex (managers, whom a
//! test demotes to trainee or removes while their tokens still say "manager") — and "globex"
//! (admin olga). Also a forger of HS256 tokens for the claims `TokenMinter` refuses to sign.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use salestrainer_proto::{
    analytics::{self as an, analytics_service_client::AnalyticsServiceClient},
    call::{self, call_service_client::CallServiceClient},
    config::{self as cfg, config_service_client::ConfigServiceClient},
    events as ev,
    grading::{self as gr, grading_service_client::GradingServiceClient},
};
use salestrainer_runtime::Role;
use salestrainer_tests::{
    Backend, DATABASES, TEST_SECRET, TestApp, authed, drop_postgres_databases, spawn_app_with,
    wait_serving,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, transport::Channel};

pub const ORG: &str = "organizations/acme";

/// The outcome code of a unary call.
pub fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// The outcome of a server stream: the error of opening it, else of its first message.
pub async fn first<T>(r: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>) -> Code {
    let mut stream = match r {
        Ok(s) => s.into_inner(),
        Err(s) => return s.code(),
    };
    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
        Err(_) => Code::DeadlineExceeded,
        Ok(Ok(_)) => Code::Ok,
        Ok(Err(s)) => s.code(),
    }
}

pub struct World {
    pub app: TestApp,
    pub backend: Backend,
    database_url: String,
    pub admin: String,
    pub manager: String,
    /// tom, whose session the rows name.
    pub trainee: String,
    /// olga, admin of "globex".
    pub other_admin: String,
    /// A valid token for "acme" (role admin) whose subject was never a member.
    pub stranger: String,
    /// dan's token: says manager, whatever his stored role has become.
    pub dan: String,
    /// rex's token: says manager, and stays valid after his removal.
    pub rex: String,
    pub scenario: String,
    /// tom's TEXT session.
    pub session: String,
    /// tom's grading job and evaluation (empty unless started `graded`).
    pub job: String,
    pub evaluation: String,
}

pub fn member(subject: &str) -> String {
    format!("{ORG}/members/{subject}")
}

impl World {
    /// The suite on `backend` (Redis as the bus when `redis`), seeded; tom's session graded
    /// (and seen by analytics) when `graded`.
    pub async fn start(backend: Backend, redis: bool, graded: bool) -> World {
        let mut w = World::start_with(backend, redis, |_| {}).await;
        if graded {
            w.grade_session().await;
        }
        w
    }

    /// The suite on `backend` (Redis as the bus when `redis`) with settings `customize`
    /// changes, seeded; tom's session started, not graded.
    #[allow(dead_code)] // not every test binary uses it
    pub async fn start_with(
        backend: Backend,
        redis: bool,
        customize: impl FnOnce(&mut salestrainer_runtime::settings::Settings),
    ) -> World {
        let database_url = backend.database_url();
        let app = spawn_app_with(|s| {
            s.database_url = database_url.clone();
            if redis {
                s.redis_url = salestrainer_tests::redis_url();
            }
            customize(s);
        })
        .await;
        wait_serving(&app, "", Duration::from_secs(30)).await;
        let t = |role, subject: &str, org: &str| app.token(role, subject, org);
        let mut w = World {
            admin: t(Role::Admin, "alice", "acme"),
            manager: t(Role::Manager, "mia", "acme"),
            trainee: t(Role::Trainee, "tom", "acme"),
            other_admin: t(Role::Admin, "olga", "globex"),
            stranger: t(Role::Admin, "nobody", "acme"),
            dan: t(Role::Manager, "dan", "acme"),
            rex: t(Role::Manager, "rex", "acme"),
            app,
            backend,
            database_url,
            scenario: String::new(),
            session: String::new(),
            job: String::new(),
            evaluation: String::new(),
        };
        w.seed().await;
        w
    }

    pub fn config(&self) -> ConfigServiceClient<Channel> {
        ConfigServiceClient::new(self.app.channel.clone())
    }
    pub fn call(&self) -> CallServiceClient<Channel> {
        CallServiceClient::new(self.app.channel.clone())
    }
    pub fn grading(&self) -> GradingServiceClient<Channel> {
        GradingServiceClient::new(self.app.channel.clone())
    }
    pub fn analytics(&self) -> AnalyticsServiceClient<Channel> {
        AnalyticsServiceClient::new(self.app.channel.clone())
    }

    async fn seed(&mut self) {
        let service = self.app.service_token("tests");
        let mut c = self.config();
        for id in ["acme", "globex"] {
            c.create_organization(authed(
                cfg::CreateOrganizationRequest {
                    organization: Some(cfg::Organization {
                        display_name: id.into(),
                        ..Default::default()
                    }),
                    organization_id: id.into(),
                },
                &service,
            ))
            .await
            .unwrap();
        }
        for (org, subject, role) in [
            ("acme", "alice", cfg::Role::Admin),
            ("acme", "mia", cfg::Role::Manager),
            ("acme", "tom", cfg::Role::Trainee),
            ("acme", "dan", cfg::Role::Manager),
            ("acme", "rex", cfg::Role::Manager),
            ("globex", "olga", cfg::Role::Admin),
        ] {
            c.create_member(authed(
                cfg::CreateMemberRequest {
                    parent: format!("organizations/{org}"),
                    member: Some(cfg::Member {
                        subject: subject.into(),
                        display_name: subject.into(),
                        role: role as i32,
                        ..Default::default()
                    }),
                    member_id: subject.into(),
                },
                &service,
            ))
            .await
            .unwrap();
        }
        let persona = c
            .create_persona(authed(
                cfg::CreatePersonaRequest {
                    parent: ORG.into(),
                    persona: Some(cfg::Persona {
                        display_name: "Dana".into(),
                        role: "VP Operations".into(),
                        company: "Northwind".into(),
                        objections: vec!["too expensive".into()],
                        difficulty: cfg::Difficulty::Medium as i32,
                        ..Default::default()
                    }),
                    persona_id: "dana".into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .persona
            .unwrap();
        let rubric = c
            .create_rubric(authed(
                cfg::CreateRubricRequest {
                    parent: ORG.into(),
                    rubric: Some(cfg::Rubric {
                        display_name: "Discovery".into(),
                        criteria: vec![
                            cfg::Criterion {
                                id: "discovery".into(),
                                skill: "discovery".into(),
                                weight: 1.0,
                                ..Default::default()
                            },
                            cfg::Criterion {
                                id: "closing".into(),
                                skill: "closing".into(),
                                weight: 1.0,
                                ..Default::default()
                            },
                        ],
                        passing_score: 60.0,
                        ..Default::default()
                    }),
                    rubric_id: "discovery".into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .rubric
            .unwrap();
        let scenario = c
            .create_scenario(authed(
                cfg::CreateScenarioRequest {
                    parent: ORG.into(),
                    scenario: Some(cfg::Scenario {
                        display_name: "Book a demo".into(),
                        persona: persona.name,
                        rubric: rubric.name,
                        goal: Some(cfg::Goal {
                            kind: cfg::GoalKind::BookMeeting as i32,
                            description: "Book a 30-minute demo.".into(),
                        }),
                        open_to_all: true,
                        ..Default::default()
                    }),
                    scenario_id: "demo".into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .scenario
            .unwrap();
        self.scenario = scenario.name;
        self.session = self
            .call()
            .start_session(authed(
                call::StartSessionRequest {
                    parent: ORG.into(),
                    scenario: self.scenario.clone(),
                    assignment: String::new(),
                    mode: call::SessionMode::Text as i32,
                    request_id: "tom-1".into(),
                    drill: String::new(),
                },
                &self.trainee,
            ))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap()
            .name;
    }

    /// tom talks (two turns over Converse), ends the call, and waits for GRADED and for
    /// analytics to count it.
    async fn grade_session(&mut self) {
        self.end_and_grade().await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.org_summary(&self.admin, "").await.unwrap();
            if s.graded_sessions >= 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "analytics did not count the graded session within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// tom talks (two turns over Converse), ends the call, and waits for GRADED; sets
    /// `job` and `evaluation`.
    pub async fn end_and_grade(&mut self) {
        use call::converse_request::Payload as Up;
        use call::converse_response::Payload as Down;
        let mut calls = self.call();
        let (tx, rx) = tokio::sync::mpsc::channel::<call::ConverseRequest>(8);
        let send = |p: Up| call::ConverseRequest { payload: Some(p) };
        tx.send(send(Up::Start(call::ConverseStart {
            session: self.session.clone(),
        })))
        .await
        .unwrap();
        let mut inbound = calls
            .converse(authed(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                &self.trainee,
            ))
            .await
            .unwrap()
            .into_inner();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        // The opening reply, then one reply per turn.
        let turns = [
            "",
            "Hi Dana, how do you plan delivery routes today, and what is the biggest challenge?",
            "I understand the budget concern. Would you be open to a demo meeting next Tuesday?",
        ];
        'turns: for (i, text) in turns.iter().enumerate() {
            let id = format!("turn-{i}");
            if i > 0 {
                tx.send(send(Up::Turn(call::TraineeTurn {
                    text: (*text).into(),
                    client_turn_id: id.clone(),
                })))
                .await
                .unwrap();
            }
            loop {
                let m = tokio::time::timeout_at(deadline, inbound.message())
                    .await
                    .expect("converse replies within 20 s")
                    .expect("converse stream");
                match m.and_then(|m| m.payload) {
                    None => break 'turns,
                    Some(Down::Ended(_)) => break 'turns,
                    Some(Down::Done(d)) if i == 0 || d.client_turn_id == id => break,
                    Some(_) => {}
                }
            }
        }
        let _ = calls
            .end_session(authed(
                call::EndSessionRequest {
                    name: self.session.clone(),
                    etag: String::new(),
                },
                &self.trainee,
            ))
            .await
            .unwrap();
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(45);
        let graded = loop {
            let s = calls
                .get_session(authed(
                    call::GetSessionRequest {
                        name: self.session.clone(),
                    },
                    &self.admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .session
                .unwrap();
            if s.state == call::SessionState::Graded as i32 {
                break s;
            }
            assert_ne!(
                s.state,
                call::SessionState::Failed as i32,
                "grading failed: {}",
                s.failure_reason
            );
            assert!(Instant::now() < deadline, "not GRADED within 45 s: {s:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.evaluation = graded.evaluation;
        assert!(
            !self.evaluation.is_empty(),
            "a graded session names its evaluation"
        );
        self.job = self
            .grading()
            .list_grading_jobs(authed(
                gr::ListGradingJobsRequest {
                    parent: ORG.into(),
                    session: self.session.clone(),
                    ..Default::default()
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .grading_jobs
            .first()
            .expect("the session's grading job")
            .name
            .clone();
    }

    /// A connection to `service`'s own database.
    pub async fn db_of(&self, service: &str) -> DatabaseConnection {
        salestrainer_runtime::db::connect(&self.app.settings.database_url_for(service))
            .await
            .unwrap()
    }

    /// The events `service` wrote to its outbox about `session`, oldest first.
    pub async fn outbox(&self, service: &str, session: &str) -> Vec<ev::Event> {
        let db = self.db_of(service).await;
        let rows = db
            .query_all_raw(sql(
                &db,
                "SELECT payload FROM bus_outbox ORDER BY id",
                vec![],
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                ev::Event::decode(r.try_get::<Vec<u8>>("", "payload").unwrap().as_slice()).unwrap()
            })
            .filter(|e| session_of(e) == session)
            .collect()
    }

    /// The session's evaluation as grading serves it now (read as the admin).
    pub async fn evaluation_now(&self) -> gr::Evaluation {
        self.grading()
            .get_evaluation(authed(
                gr::GetEvaluationRequest {
                    name: self.evaluation.clone(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .evaluation
            .unwrap()
    }

    pub async fn org_summary(
        &self,
        token: &str,
        trainee: &str,
    ) -> Result<an::SummaryStats, tonic::Status> {
        self.analytics()
            .get_organization_summary(authed(
                an::GetOrganizationSummaryRequest {
                    name: ORG.into(),
                    trainee: trainee.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().summary.unwrap_or_default())
    }

    /// Makes `subject` a trainee (admin alice's UpdateMember); returns once committed.
    pub async fn demote(&self, subject: &str) {
        self.config()
            .update_member(authed(
                cfg::UpdateMemberRequest {
                    member: Some(cfg::Member {
                        name: member(subject),
                        role: cfg::Role::Trainee as i32,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["role".into()],
                    }),
                },
                &self.admin,
            ))
            .await
            .unwrap();
    }

    /// Removes `subject` from "acme" (admin alice's DeleteMember); returns once committed.
    pub async fn remove(&self, subject: &str) {
        self.config()
            .delete_member(authed(
                cfg::DeleteMemberRequest {
                    name: member(subject),
                    etag: String::new(),
                },
                &self.admin,
            ))
            .await
            .unwrap();
    }

    /// Stops the suite and drops its PostgreSQL databases.
    pub async fn stop(self) {
        let url = self.database_url.clone();
        self.app.stop().await;
        drop_postgres_databases(&url, &DATABASES).await;
    }
}

/// Seconds since the epoch.
/// `reconciler_repaired_total{kind}` in this process (the suite runs in it).
/// A statement in `db`'s dialect (`$n` placeholders work on both backends).
pub fn sql(db: &DatabaseConnection, q: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), q, values)
}

/// The session an event is about; empty for other events.
pub fn session_of(e: &ev::Event) -> &str {
    use ev::event::Payload as P;
    match &e.payload {
        Some(P::SessionStarted(p)) => &p.session,
        Some(P::SessionEnded(p)) => &p.session,
        Some(P::SessionGraded(p)) => &p.session,
        Some(P::EvaluationOverridden(p)) => &p.session,
        Some(P::GradingFailed(p)) => &p.session,
        _ => "",
    }
}

pub fn repaired(kind: &str) -> u64 {
    let text = salestrainer_runtime::metrics::prometheus().render();
    let line = format!("reconciler_repaired_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 JWT over `claims` (a JSON object) signed with the suite's user-token secret:
/// what someone holding that secret (or an identity provider) could issue, including claims
/// `TokenMinter` refuses to mint.
pub fn forge(claims: &serde_json::Value) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let sig = hmac_sha256(TEST_SECRET, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&sig))
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

#[allow(clippy::needless_range_loop, clippy::many_single_char_names)]
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[test]
fn the_forger_hashes_like_sha256() {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // RFC 4231 test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
