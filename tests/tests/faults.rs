//! Fault tests on loopback: the four service binaries as separate processes (a PostgreSQL
//! database each) on a Redis of their own (an ephemeral port, never the machine's shared one),
//! under a load of text sessions, while one of them — or Redis — is killed with SIGKILL and
//! started again. After each fault every accepted session must end up GRADED in call, with
//! exactly one evaluation in grading, and counted once by analytics; the time from the fault
//! to that point is printed (run with `--nocapture` to read it).
//!
//! Each phase is bounded (`SETTLE_LIMIT`); the two suites take turns (`SERIAL`) so that the
//! file stays well under three minutes on two cores. `SALESTRAINER_FAULTS_BIN_DIR` runs other
//! builds of the binaries (to measure a baseline) and `SALESTRAINER_FAULTS_NO_LIMIT=1` then
//! waits up to five minutes per phase instead of failing at the bound.
//!
//! The last tests run the embedded suite (SQLite and PostgreSQL): a session that ended without
//! its SessionEnded ever reaching the bus is graded through the reconciler, and a real call none
//! of whose events left call reaches analytics complete (source, day, duration) that way.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use salestrainer_proto::{
    analytics::{self, analytics_service_client::AnalyticsServiceClient},
    call::{self, call_service_client::CallServiceClient},
    config::{self, config_service_client::ConfigServiceClient},
    grading::{self, grading_service_client::GradingServiceClient},
};
use salestrainer_runtime::{Role, auth::TokenMinter};
use salestrainer_test_ports::{free_port, free_ports};
use salestrainer_tests::cluster::SERVICE_NAMES as SERVICES;
use salestrainer_tests::{
    Backend, TEST_SECRET, authed, cluster::binary_dir, fresh_postgres_template, seed_organization,
    spawn_app_with, wait_serving,
};
use sea_orm::ConnectionTrait;
use tonic::transport::Channel;

const ORG: &str = "organizations/demo";
const TRAINEE: &str = "faults-trainee";
/// Longest wait for the suite to settle after a fault.
const SETTLE_LIMIT: Duration = Duration::from_secs(45);
/// Sessions per phase.
const SESSIONS: usize = 12;

/// One suite at a time: each is six processes on a two-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

/// SIGKILL (std's `Child::kill`) and reap.
fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// What a killed Redis comes back with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// Nothing: it restarts empty.
    None,
    /// Everything it acknowledged (append-only file, fsync always).
    AppendOnly,
    /// What it held at the test's last SAVE: a replica that lagged, promoted.
    Snapshot,
}

impl Persistence {
    fn describe(self) -> &'static str {
        match self {
            Persistence::None => "no persistence",
            Persistence::AppendOnly => "appendonly, fsync always",
            Persistence::Snapshot => "back from an older snapshot",
        }
    }
}

/// A redis-server of the test's own on an ephemeral port.
struct Redis {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
}

impl Redis {
    async fn start(dir: &Path, persistence: Persistence) -> Redis {
        let mut r = Redis {
            port: free_port(),
            dir: dir.join("redis"),
            persistence,
            child: None,
        };
        std::fs::create_dir_all(&r.dir).unwrap();
        r.spawn().await;
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""]);
        if self.persistence == Persistence::AppendOnly {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            // A snapshot only on the test's SAVE; none without persistence.
            cmd.args(["--appendonly", "no"]);
        }
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(cmd.spawn().expect("redis-server on PATH"));
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }

    /// Writes the snapshot a restart comes back with (persistence `Snapshot`).
    async fn save(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
    }
}

struct Service {
    name: &'static str,
    addr: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

/// The distributed suite on loopback, without a gateway (the faults are the services').
struct Suite {
    dir: tempfile::TempDir,
    bin: PathBuf,
    redis: Redis,
    db_template: String,
    services: Vec<Service>,
    minter: TokenMinter,
}

impl Suite {
    async fn start(persistence: Persistence) -> Suite {
        salestrainer_runtime::install_crypto_provider();
        let bin = std::env::var_os("SALESTRAINER_FAULTS_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(binary_dir);
        for name in SERVICES {
            let path = bin.join(format!("salestrainer-{name}"));
            assert!(
                path.exists(),
                "{} is missing: build the service binaries first (`cargo build --bins`)",
                path.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("salestrainer-faults-")
            .tempdir()
            .unwrap();
        let redis = Redis::start(dir.path(), persistence).await;
        let mut ports = free_ports(2 * SERVICES.len()).into_iter();
        let mut port = move || SocketAddr::from(([127, 0, 0, 1], ports.next().unwrap()));
        let services = SERVICES
            .iter()
            .map(|name| Service {
                name,
                addr: port(),
                admin: port(),
                log: dir.path().join(format!("{name}.log")),
                child: None,
            })
            .collect();
        let mut suite = Suite {
            dir,
            bin,
            redis,
            db_template: fresh_postgres_template(),
            services,
            minter: TokenMinter::new(TEST_SECRET, ""),
        };
        for name in SERVICES {
            suite.spawn(name);
        }
        for name in SERVICES {
            suite.wait_serving(name).await;
        }
        let settings = salestrainer_runtime::Settings {
            database_url: suite.db_template.clone(),
            data_dir: suite.dir.path().to_path_buf(),
            ..Default::default()
        };
        salestrainer::ensure_demo_organization(&settings)
            .await
            .unwrap();
        suite
    }

    fn service(&mut self, name: &str) -> &mut Service {
        self.services.iter_mut().find(|s| s.name == name).unwrap()
    }

    fn endpoint(&self, name: &str) -> String {
        let s = self.services.iter().find(|s| s.name == name).unwrap();
        format!("http://{}", s.addr)
    }

    fn spawn(&mut self, name: &str) {
        let endpoints: Vec<(String, String)> = SERVICES
            .iter()
            .map(|n| {
                (
                    format!("SALESTRAINER_ENDPOINTS__{}", n.to_uppercase()),
                    self.endpoint(n),
                )
            })
            .collect();
        let (bin, dir, redis, db) = (
            self.bin.clone(),
            self.dir.path().to_path_buf(),
            self.redis.url(),
            self.db_template.clone(),
        );
        let s = self.service(name);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log)
            .unwrap();
        let child = Command::new(bin.join(format!("salestrainer-{name}")))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            // Stable across restarts, as a StatefulSet pod's name.
            .env("HOSTNAME", format!("{name}-faults"))
            .env("SALESTRAINER_LISTEN", s.addr.to_string())
            .env("SALESTRAINER_ADMIN_LISTEN", s.admin.to_string())
            .env("SALESTRAINER_DATABASE_URL", db)
            .env("SALESTRAINER_REDIS_URL", redis)
            .env(
                "SALESTRAINER_AUTH__DEV_SECRET",
                String::from_utf8_lossy(TEST_SECRET).into_owned(),
            )
            .env("SALESTRAINER_DATA_DIR", dir.join(format!("{name}-data")))
            .env("SALESTRAINER_SERVER__DRAIN_DEADLINE_MS", "1000")
            // Analytics answers from its tables, not a cache the test would wait out.
            .env("SALESTRAINER_ANALYTICS__CACHE_TTL_MS", "0")
            // The reconciler's bound, short enough for a bounded test.
            .env("SALESTRAINER_CALL__RECONCILE_AFTER_SECS", "4")
            .envs(endpoints)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        s.child = Some(child);
    }

    async fn wait_serving(&mut self, name: &str) {
        let uri = self.endpoint(name);
        if let Err(e) = salestrainer::wait_serving(&uri, Duration::from_secs(60)).await {
            self.print_logs();
            panic!("{name} not SERVING: {e}");
        }
    }

    /// SIGKILL, and when it happened.
    fn kill(&mut self, name: &str) -> Instant {
        let s = self.service(name);
        let mut child = s.child.take().unwrap();
        let at = Instant::now();
        kill9(&mut child);
        at
    }

    async fn restart(&mut self, name: &str) {
        self.spawn(name);
        self.wait_serving(name).await;
    }

    fn pid(&mut self, name: &str) -> u32 {
        self.service(name).child.as_ref().unwrap().id()
    }

    fn channel(&self, name: &str) -> Channel {
        Channel::from_shared(self.endpoint(name))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy()
    }

    fn token(&self, subject: &str, role: Role) -> String {
        self.minter.mint(subject, "demo", role, 3600).unwrap()
    }

    /// The value of a Prometheus counter (summed over its labels) of one service.
    async fn counter(&self, service: &str, name: &str) -> u64 {
        let s = self.services.iter().find(|s| s.name == service).unwrap();
        let Ok(resp) = reqwest::get(format!("http://{}/metrics", s.admin)).await else {
            return 0;
        };
        let text = resp.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    fn print_logs(&self) {
        for s in &self.services {
            eprintln!(
                "----- {} — last 40 lines -----\n{}",
                s.name,
                tail(&s.log, 40)
            );
        }
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        if std::env::var_os("SALESTRAINER_FAULTS_KEEP").is_some() {
            eprintln!("logs kept in {}", self.dir.path().display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
        }
        for s in &mut self.services {
            if let Some(mut c) = s.child.take() {
                kill9(&mut c);
            }
        }
        self.redis.kill();
        salestrainer_tests::cluster::drop_service_databases(&self.db_template);
    }
}

/// Retries `f` (any failure: the service may be down or restarting) until it answers.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(s) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: still failing after {SETTLE_LIMIT:?}: {s}"
                );
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
}

/// A persona, a rubric and a scenario open to all in organization `parent`; the scenario's name.
async fn create_scenario(channel: Channel, admin: &str, parent: &str) -> String {
    let mut cfg = ConfigServiceClient::new(channel);
    let persona = cfg
        .create_persona(authed(
            config::CreatePersonaRequest {
                parent: parent.into(),
                persona: Some(config::Persona {
                    display_name: "Dana Reyes".into(),
                    role: "Head of Operations".into(),
                    company: "Northwind Logistics".into(),
                    objections: vec!["It's too expensive for us this year.".into()],
                    difficulty: config::Difficulty::Medium as i32,
                    first_message: "Hi, this is Dana. What is this about?".into(),
                    ..Default::default()
                }),
                persona_id: "dana".into(),
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    let rubric = cfg
        .create_rubric(authed(
            config::CreateRubricRequest {
                parent: parent.into(),
                rubric: Some(config::Rubric {
                    display_name: "Discovery".into(),
                    criteria: vec![config::Criterion {
                        id: "discovery".into(),
                        skill: "discovery".into(),
                        description: "Asks open questions.".into(),
                        weight: 1.0,
                        signal_phrases: vec!["how do you".into()],
                        ..Default::default()
                    }],
                    passing_score: 50.0,
                    ..Default::default()
                }),
                rubric_id: "discovery".into(),
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .rubric
        .unwrap();
    cfg.create_scenario(authed(
        config::CreateScenarioRequest {
            parent: parent.into(),
            scenario: Some(config::Scenario {
                display_name: "Book a demo".into(),
                persona: persona.name,
                product_brief: "RouteWise plans delivery routes.".into(),
                goal: Some(config::Goal {
                    kind: config::GoalKind::BookMeeting as i32,
                    description: "Book a demo meeting.".into(),
                }),
                rubric: rubric.name,
                open_to_all: true,
                ..Default::default()
            }),
            scenario_id: "demo-call".into(),
        },
        admin,
    ))
    .await
    .unwrap()
    .into_inner()
    .scenario
    .unwrap()
    .name
}

/// Starts a text session and says one line in it (retrying through outages); returns its name.
async fn prepare(channel: Channel, token: String, scenario: String, key: String) -> String {
    let calls = CallServiceClient::new(channel);
    let parent = scenario.split("/scenarios/").next().unwrap().to_owned();
    let session = retry("StartSession", || {
        let mut c = calls.clone();
        let req = authed(
            call::StartSessionRequest {
                parent: parent.clone(),
                scenario: scenario.clone(),
                assignment: String::new(),
                mode: call::SessionMode::Text as i32,
                // The same request id after a lost answer: the same session.
                request_id: key.clone(),
                ..Default::default()
            },
            &token,
        );
        async move { c.start_session(req).await }
    })
    .await
    .into_inner()
    .session
    .unwrap()
    .name;
    retry("SendTurn", || {
        let req = authed(
            call::SendTurnRequest {
                session: session.clone(),
                text: "Hi Dana, how do you plan your delivery routes today?".into(),
                client_turn_id: "turn-1".into(),
            },
            &token,
        );
        let mut c = calls.clone();
        async move {
            let mut stream = c.send_turn(req).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok(())
        }
    })
    .await;
    session
}

/// Ends a session (idempotent, retried through outages).
async fn end(channel: Channel, token: String, session: String) {
    let calls = CallServiceClient::new(channel);
    retry("EndSession", || {
        let mut c = calls.clone();
        let req = authed(
            call::EndSessionRequest {
                name: session.clone(),
                etag: String::new(),
            },
            &token,
        );
        async move { c.end_session(req).await }
    })
    .await;
}

/// What keeps a phase's load going.
struct Load {
    token: String,
    scenario: String,
    /// Every session accepted as ended so far, all phases.
    accepted: BTreeSet<String>,
}

impl Load {
    async fn prepare(&self, suite: &Suite, phase: &str, n: usize) -> Vec<String> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            set.spawn(prepare(
                suite.channel("call"),
                self.token.clone(),
                self.scenario.clone(),
                format!("{phase}-{i}"),
            ));
        }
        set.join_all().await
    }

    fn end_all(&self, suite: &Suite, sessions: &[String]) -> tokio::task::JoinSet<()> {
        let mut set = tokio::task::JoinSet::new();
        for s in sessions {
            set.spawn(end(suite.channel("call"), self.token.clone(), s.clone()));
        }
        set
    }
}

/// Why the suite has not settled yet, or None when every accepted session is graded once.
async fn unsettled(suite: &Suite, expected: &BTreeSet<String>) -> Option<String> {
    let admin = suite.token("demo-admin", Role::Admin);
    let mut grading = GradingServiceClient::new(suite.channel("grading"));
    let mut per_session: BTreeMap<String, usize> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = match grading
            .list_evaluations(authed(
                grading::ListEvaluationsRequest {
                    parent: ORG.into(),
                    page_size: 1000,
                    page_token: token.clone(),
                    show_superseded: true,
                    ..Default::default()
                },
                &admin,
            ))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return Some(format!("grading: {s}")),
        };
        for e in page.evaluations {
            *per_session.entry(e.session).or_default() += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let twice: Vec<_> = per_session.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "sessions graded more than once: {twice:?}"
    );
    let stray: Vec<_> = per_session
        .keys()
        .filter(|s| !expected.contains(*s))
        .collect();
    assert!(
        stray.is_empty(),
        "evaluations of sessions never accepted: {stray:?}"
    );
    let missing = expected
        .iter()
        .filter(|s| !per_session.contains_key(*s))
        .count();
    if missing > 0 {
        return Some(format!("{missing} sessions without an evaluation"));
    }
    let mut calls = CallServiceClient::new(suite.channel("call"));
    for s in expected {
        match calls
            .get_session(authed(call::GetSessionRequest { name: s.clone() }, &admin))
            .await
        {
            Ok(r)
                if r.get_ref().session.as_ref().map(|m| m.state)
                    == Some(call::SessionState::Graded as i32) => {}
            Ok(r) => {
                return Some(format!(
                    "{s} is {:?} in call",
                    r.into_inner().session.map(|m| m.state)
                ));
            }
            Err(e) => return Some(format!("call: {e}")),
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut stats = AnalyticsServiceClient::new(suite.channel("analytics"));
    let summary = match stats
        .get_organization_summary(authed(
            analytics::GetOrganizationSummaryRequest {
                name: ORG.into(),
                start_time: Some(prost_types::Timestamp {
                    seconds: now - 86_400,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: now + 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &admin,
        ))
        .await
    {
        Ok(r) => r.into_inner().summary.unwrap_or_default(),
        Err(e) => return Some(format!("analytics: {e}")),
    };
    let n = expected.len() as i32;
    assert!(
        summary.graded_sessions <= n && summary.sessions <= n,
        "analytics counted more than there are: {} sessions, {} graded, {n} accepted",
        summary.sessions,
        summary.graded_sessions
    );
    if summary.graded_sessions != n || summary.sessions != n {
        return Some(format!(
            "analytics counts {} sessions, {} graded of {n}",
            summary.sessions, summary.graded_sessions
        ));
    }
    None
}

/// Waits until every accepted session is graded once and counted once; returns how long it
/// took from `since`.
async fn settle(suite: &Suite, load: &Load, since: Instant, label: &str) -> Duration {
    let limit = if std::env::var_os("SALESTRAINER_FAULTS_NO_LIMIT").is_some() {
        Duration::from_secs(300)
    } else {
        SETTLE_LIMIT
    };
    let mut said = Instant::now();
    loop {
        match unsettled(suite, &load.accepted).await {
            None => return since.elapsed(),
            Some(why) => {
                if said.elapsed() > Duration::from_secs(10) {
                    println!(
                        "{label}: waiting ({:.0}s): {why}",
                        since.elapsed().as_secs_f64()
                    );
                    said = Instant::now();
                }
                assert!(
                    since.elapsed() < limit,
                    "{label}: not settled {limit:?} after the fault: {why}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Half the phase's sessions are ended before the fault, the other half during it (their
/// EndSession retried until call answers); `fault` runs between, returns when it hit and
/// restores what it broke.
async fn kill_and_restart(suite: &mut Suite, load: &mut Load, label: &str, service: &str) {
    let sessions = load.prepare(suite, label, SESSIONS).await;
    let (first, second) = sessions.split_at(SESSIONS / 2);
    load.end_all(suite, first).join_all().await;
    load.accepted.extend(first.iter().cloned());
    let killed = suite.kill(service);
    let during = load.end_all(suite, second);
    tokio::time::sleep(Duration::from_millis(500)).await;
    suite.restart(service).await;
    during.join_all().await;
    load.accepted.extend(second.iter().cloned());
    let took = settle(suite, load, killed, label).await;
    println!(
        "FAULT {label}: SIGKILL {service} under load -> all {} accepted sessions graded once and \
         counted once {:.1}s after the kill",
        load.accepted.len(),
        took.as_secs_f64()
    );
}

/// Grading killed with attempts in flight: call is paused (SIGSTOP) right after a burst of
/// ends, so grading's workers hold leased jobs waiting for transcripts when grading is killed.
/// Returns the recovery time and how many jobs needed a second attempt.
async fn kill_grading_mid_job(suite: &mut Suite, load: &mut Load, label: &str) -> Duration {
    let sessions = load.prepare(suite, label, SESSIONS).await;
    load.end_all(suite, &sessions).join_all().await;
    load.accepted.extend(sessions.iter().cloned());
    let call_pid = suite.pid("call");
    signal(call_pid, "-STOP");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = suite.kill("grading");
    signal(call_pid, "-CONT");
    suite.restart("grading").await;
    let took = settle(suite, load, killed, label).await;
    let admin = suite.token("demo-admin", Role::Admin);
    let jobs = GradingServiceClient::new(suite.channel("grading"))
        .list_grading_jobs(authed(
            grading::ListGradingJobsRequest {
                parent: ORG.into(),
                page_size: 1000,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .grading_jobs;
    let retaken = jobs.iter().filter(|j| j.attempts > 1).count();
    println!(
        "FAULT {label}: SIGKILL grading with {retaken} jobs mid-attempt -> last affected session \
         graded {:.1}s after the kill (all {} accepted sessions graded once, counted once)",
        took.as_secs_f64(),
        load.accepted.len()
    );
    took
}

/// Redis killed with SIGKILL while it holds events nobody has consumed yet — grading and
/// analytics are paused (SIGSTOP) while the first half of the sessions end — and started again
/// on the same port (with its append-only file, empty, or with the snapshot taken before this
/// phase's sessions started: their SessionStarted and the first half's SessionEnded gone, the
/// marker and everything older kept); the second half ends while Redis is down.
async fn kill_redis(suite: &mut Suite, load: &mut Load, label: &str) {
    let paused = [suite.pid("grading"), suite.pid("analytics")];
    let snapshot = suite.redis.persistence == Persistence::Snapshot;
    if snapshot {
        for pid in paused {
            signal(pid, "-STOP");
        }
        suite.redis.save().await;
    }
    let sessions = load.prepare(suite, label, SESSIONS).await;
    let (first, second) = sessions.split_at(SESSIONS / 2);
    if !snapshot {
        for pid in paused {
            signal(pid, "-STOP");
        }
    }
    load.end_all(suite, first).join_all().await;
    load.accepted.extend(first.iter().cloned());
    // Call's relay publishes the SessionEnded events to Redis, where they wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    suite.redis.kill();
    let during = load.end_all(suite, second);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    suite.redis.spawn().await;
    for pid in paused {
        signal(pid, "-CONT");
    }
    during.join_all().await;
    load.accepted.extend(second.iter().cloned());
    let took = settle(suite, load, killed, label).await;
    println!(
        "FAULT {label}: SIGKILL Redis ({}) holding unconsumed events, under load -> all {} \
         accepted sessions graded once and counted once {:.1}s after the kill",
        suite.redis.persistence.describe(),
        load.accepted.len(),
        took.as_secs_f64()
    );
}

async fn load_for(suite: &Suite) -> Load {
    let admin = suite.token("demo-admin", Role::Admin);
    let mut cfg = ConfigServiceClient::new(suite.channel("config"));
    cfg.create_member(authed(
        config::CreateMemberRequest {
            parent: ORG.into(),
            member: Some(config::Member {
                subject: TRAINEE.into(),
                display_name: "Fay Faults".into(),
                email: "fay@faults.test".into(),
                role: config::Role::Trainee as i32,
                ..Default::default()
            }),
            member_id: TRAINEE.into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let scenario = create_scenario(suite.channel("config"), &admin, ORG).await;
    Load {
        token: suite.token(TRAINEE, Role::Trainee),
        scenario,
        accepted: BTreeSet::new(),
    }
}

/// Every service and a persistent Redis, each killed once under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_each_service_and_persistent_redis_under_load() {
    let _turn = SERIAL.lock().await;
    let run = async {
        let mut suite = Suite::start(Persistence::AppendOnly).await;
        let mut load = load_for(&suite).await;
        kill_grading_mid_job(&mut suite, &mut load, "grading").await;
        for service in ["call", "config", "analytics"] {
            kill_and_restart(&mut suite, &mut load, service, service).await;
        }
        kill_redis(&mut suite, &mut load, "redis-aof").await;
        let repaired = suite.counter("call", "reconciler_repaired_total").await;
        println!("FAULT summary: reconciler repaired {repaired} sessions in this suite");
    };
    tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the fault suite took longer than 150 s");
}

/// Redis without persistence killed under load: what it held is gone, and is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_redis_without_persistence_under_load() {
    let _turn = SERIAL.lock().await;
    let run = async {
        let mut suite = Suite::start(Persistence::None).await;
        let mut load = load_for(&suite).await;
        kill_redis(&mut suite, &mut load, "redis-volatile").await;
        let mut replayed = 0;
        for s in SERVICES {
            replayed += suite.counter(s, "bus_relay_replayed_events_total").await;
        }
        let repaired = suite.counter("call", "reconciler_repaired_total").await;
        let requeued = suite.counter("grading", "reconciler_repaired_total").await;
        println!(
            "FAULT redis-volatile: relays sent {replayed} events again, the grading scheduler \
             requeued {requeued} jobs, the call reconciler repaired {repaired} sessions"
        );
    };
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the fault suite took longer than 90 s");
}

/// Redis back from a snapshot older than what it acknowledged (a failover to a replica that
/// lagged): the marker survives, so only the relays' watermarks tell that the latest events
/// are gone; they are sent again, SessionStarted included (no reconciler looks for those).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_redis_back_from_an_older_snapshot_under_load() {
    let _turn = SERIAL.lock().await;
    let run = async {
        let mut suite = Suite::start(Persistence::Snapshot).await;
        let mut load = load_for(&suite).await;
        kill_redis(&mut suite, &mut load, "redis-snapshot").await;
        let replayed = suite
            .counter("call", "bus_relay_replayed_events_total")
            .await;
        let repaired = suite.counter("call", "reconciler_repaired_total").await;
        println!(
            "FAULT redis-snapshot: call's relay sent {replayed} events again, the call \
             reconciler repaired {repaired} sessions"
        );
        // The SessionStarted and SessionEnded events of the first half, at least.
        assert!(
            replayed >= (SESSIONS + SESSIONS / 2) as u64,
            "call's relay sent only {replayed} events again"
        );
    };
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the fault suite took longer than 90 s");
}

/// The embedded suite with a reconciler that acts after a second, and in organization `org`
/// an admin, a trainee (their tokens) and a scenario open to all, with a started session of
/// the trainee's in which they said one line.
struct Reconciling {
    app: salestrainer_tests::TestApp,
    admin: String,
    trainee: String,
    session: String,
}

async fn reconciling(backend: Backend, org: &str) -> Reconciling {
    let app = spawn_app_with(|s| {
        s.database_url = backend.database_url();
        s.set_section("call", serde_json::json!({ "reconcile_after_secs": 1 }));
    })
    .await;
    wait_serving(&app, "", Duration::from_secs(30)).await;
    seed_organization(&app, org, &[("boss", Role::Admin), ("tess", Role::Trainee)]).await;
    let admin = app.token(Role::Admin, "boss", org);
    let trainee = app.token(Role::Trainee, "tess", org);
    let parent = format!("organizations/{org}");
    let scenario = create_scenario(app.channel.clone(), &admin, &parent).await;
    let session = prepare(
        app.channel.clone(),
        trainee.clone(),
        scenario,
        "lost-event".into(),
    )
    .await;
    Reconciling {
        app,
        admin,
        trainee,
        session,
    }
}

/// Waits (20 s at most) for `session` to be GRADED.
async fn wait_graded(
    backend: Backend,
    channel: Channel,
    token: &str,
    session: &str,
) -> call::Session {
    let mut calls = CallServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = calls
            .get_session(authed(
                call::GetSessionRequest {
                    name: session.to_owned(),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        if s.state == call::SessionState::Graded as i32 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: the reconciler did not get the session graded (state {})",
            s.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every evaluation of `session` in organizations/recon, superseded ones included.
async fn all_evaluations(channel: Channel, session: &str, admin: &str) -> Vec<grading::Evaluation> {
    GradingServiceClient::new(channel)
        .list_evaluations(authed(
            grading::ListEvaluationsRequest {
                parent: "organizations/recon".into(),
                session: session.to_owned(),
                show_superseded: true,
                ..Default::default()
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .evaluations
}

/// Embedded suite: a session whose end was accepted but whose SessionEnded never reached the
/// bus (written here straight to call's table, as if the event had been lost) is handed to
/// grading by the reconciler, graded once and shown GRADED.
async fn reconciler_grades_a_session_whose_event_was_lost(backend: Backend) {
    let Reconciling {
        app,
        admin,
        trainee,
        session,
    } = reconciling(backend, "recon").await;
    let id = session.rsplit('/').next().unwrap().to_owned();
    // Ended in call's table with no SessionEnded in the outbox: the event is lost.
    let db = salestrainer_runtime::db::connect(&app.settings.database_url_for("call"))
        .await
        .unwrap();
    let ended_us = salestrainer_runtime::time::now_us() - 10_000_000;
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE call_sessions SET state = $1, end_us = $2, update_us = $2, duration_ms = 1000, \
         transcript_final = $3, end_reason = $4 WHERE id = $5",
        [
            (call::SessionState::Ended as i32).into(),
            ended_us.into(),
            true.into(),
            (call::EndReason::TraineeEnded as i32).into(),
            id.clone().into(),
        ],
    ))
    .await
    .unwrap();
    let graded = wait_graded(backend, app.channel.clone(), &trainee, &session).await;
    let evaluations = all_evaluations(app.channel.clone(), &session, &admin).await;
    assert_eq!(evaluations.len(), 1, "{backend:?}: graded exactly once");
    assert_eq!(graded.evaluation, evaluations[0].name);
    // Rounds after the repair change nothing: still one evaluation.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = all_evaluations(app.channel.clone(), &session, &admin).await;
    assert_eq!(again.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn reconciler_grades_a_session_whose_event_was_lost_sqlite() {
    reconciler_grades_a_session_whose_event_was_lost(Backend::Sqlite).await;
}

#[tokio::test]
async fn reconciler_grades_a_session_whose_event_was_lost_postgres() {
    reconciler_grades_a_session_whose_event_was_lost(Backend::Postgres).await;
}

/// Embedded suite: a real call of which no event ever left call — neither SessionStarted nor
/// SessionEnded (its rows are a copy of another session's under a new id, three days back) —
/// is reconciled, and analytics counts it complete: as a real call, on its own day, with its
/// duration, all of which reach analytics only through SubmitSession and SessionGraded.
async fn reconciled_session_reaches_analytics_complete(backend: Backend) {
    let Reconciling {
        app,
        admin,
        session: original,
        ..
    } = reconciling(backend, "lost").await;
    let original_id = original.rsplit('/').next().unwrap().to_owned();
    let copy_id = uuid::Uuid::now_v7().to_string();
    const DAY_US: i64 = 86_400_000_000;
    let now = salestrainer_runtime::time::now_us();
    let start_us = now - 3 * DAY_US;
    let day_start = start_us - start_us.rem_euclid(DAY_US);
    let db = salestrainer_runtime::db::connect(&app.settings.database_url_for("call"))
        .await
        .unwrap();
    // One connection (the temporary tables live on it), no outbox row.
    let txn = sea_orm::TransactionTrait::begin(&db).await.unwrap();
    for sql in [
        format!(
            "CREATE TEMP TABLE lost_session AS SELECT * FROM call_sessions WHERE id = '{original_id}'"
        ),
        format!(
            "UPDATE lost_session SET id = '{copy_id}', request_id = NULL, state = {}, \
             source = {}, start_us = {start_us}, end_us = {}, duration_ms = 95000, \
             update_us = {}, transcript_final = TRUE, end_reason = {}",
            call::SessionState::Ended as i32,
            call::SessionSource::RealCall as i32,
            start_us + 95_000_000,
            now - 10_000_000,
            call::EndReason::TraineeEnded as i32,
        ),
        "INSERT INTO call_sessions SELECT * FROM lost_session".into(),
        format!(
            "CREATE TEMP TABLE lost_segments AS SELECT * FROM call_segments \
             WHERE session_id = '{original_id}'"
        ),
        format!("UPDATE lost_segments SET session_id = '{copy_id}'"),
        "INSERT INTO call_segments SELECT * FROM lost_segments".into(),
        "DROP TABLE lost_session".into(),
        "DROP TABLE lost_segments".into(),
    ] {
        txn.execute_unprepared(&sql).await.unwrap();
    }
    txn.commit().await.unwrap();

    let copy = format!("organizations/lost/sessions/{copy_id}");
    wait_graded(backend, app.channel.clone(), &admin, &copy).await;
    let summary = |source: analytics::SessionSource| {
        let mut c = AnalyticsServiceClient::new(app.channel.clone());
        let token = admin.clone();
        async move {
            c.get_organization_summary(authed(
                analytics::GetOrganizationSummaryRequest {
                    name: "organizations/lost".into(),
                    start_time: Some(salestrainer_runtime::time::timestamp(day_start)),
                    end_time: Some(salestrainer_runtime::time::timestamp(day_start + DAY_US)),
                    source: source as i32,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .summary
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let real = loop {
        let real = summary(analytics::SessionSource::RealCall).await;
        if real.graded_sessions == 1 {
            break real;
        }
        assert!(
            Instant::now() < deadline,
            "{backend:?}: analytics never counted the reconciled real call on its day: {real:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(real.sessions, 1, "{backend:?}: {real:?}");
    assert_eq!(real.average_duration.unwrap().seconds, 95, "{backend:?}");
    let practice = summary(analytics::SessionSource::Practice).await;
    assert_eq!(
        practice.sessions, 0,
        "{backend:?}: not counted as practice: {practice:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn reconciled_session_reaches_analytics_complete_sqlite() {
    reconciled_session_reaches_analytics_complete(Backend::Sqlite).await;
}

#[tokio::test]
async fn reconciled_session_reaches_analytics_complete_postgres() {
    reconciled_session_reaches_analytics_complete(Backend::Postgres).await;
}
