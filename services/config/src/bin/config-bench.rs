//! config-bench: GetPersona through the full stack versus an empty handler on the same server.
//!
//! One in-process server (the runtime's `ServerBuilder`: auth, metrics, tracing, deadline,
//! concurrency and message limits) carries the config service and `/bench.Empty/Get`, a
//! unary method that requires auth like any RPC and returns at once. A Rust load generator
//! (`--connections` HTTP/2 connections × `--concurrency` tasks, one token) drives each for a
//! fixed time after a warm-up: phase A the empty handler, phase B GetPersona (caller
//! membership check, persona read, conversion). It prints requests/s, p50/p99 latency per
//! phase and the ratio B/A; the acceptance bar is B/A ≥ 60%.
//!
//! Usage: config-bench [--seconds N] [--warmup N] [--connections N] [--concurrency N]
//!                     [--role admin|manager|trainee] [--postgres postgres://user@host:port]
//! SQLite in a temporary data directory by default. `SALESTRAINER_CONFIG__CACHE_TTL_MS=0`
//! (the `[config]` settings section) turns the config service's read cache off, for the
//! uncached baseline.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use salestrainer_proto::config::{self as pb, config_service_client::ConfigServiceClient};
use salestrainer_runtime::{
    Role, Settings,
    app::Starter,
    auth::{JwtVerifier, TokenMinter},
    server::ServerBuilder,
    settings::{ServerSettings, TelemetrySettings},
};
use tonic::{
    Code, Request, Status,
    codegen::{BoxFuture, http},
    metadata::MetadataValue,
    transport::Channel,
};
use tonic_prost::ProstCodec;

const SECRET: &[u8] = b"config-bench-secret";
const EMPTY_PATH: &str = "/bench.Empty/Get";
const ORG: &str = "acme";
const PERSONA: &str = "organizations/acme/personas/bench";

struct Args {
    seconds: u64,
    warmup: u64,
    connections: usize,
    concurrency: usize,
    role: Role,
    postgres: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        seconds: 10,
        warmup: 2,
        connections: 4,
        concurrency: 64,
        role: Role::Admin,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse()?,
            "--warmup" => a.warmup = value.parse()?,
            "--connections" => a.connections = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            "--role" => {
                a.role = match value.as_str() {
                    "admin" => Role::Admin,
                    "manager" => Role::Manager,
                    "trainee" => Role::Trainee,
                    other => anyhow::bail!("unknown role {other}"),
                }
            }
            "--postgres" => a.postgres = Some(value.trim_end_matches('/').to_owned()),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(a.seconds >= 1 && a.connections >= 1 && a.concurrency >= 1);
    Ok(a)
}

// ---- the empty handler ----

/// `/bench.Empty/Get`: decodes the same request message as GetPersona and answers an empty
/// message at once. Mounted like any service, so it passes every layer, auth included.
#[derive(Clone)]
struct Empty;

impl tonic::server::NamedService for Empty {
    const NAME: &'static str = "bench.Empty";
}

struct EmptyGet;

impl tonic::server::UnaryService<pb::GetPersonaRequest> for EmptyGet {
    type Response = ();
    type Future = BoxFuture<tonic::Response<()>, Status>;
    fn call(&mut self, _req: Request<pb::GetPersonaRequest>) -> Self::Future {
        Box::pin(async { Ok(tonic::Response::new(())) })
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Empty {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != EMPTY_PATH {
                return Ok(Status::unimplemented(req.uri().path().to_owned()).into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
            Ok(grpc.unary(EmptyGet, req).await)
        })
    }
}

// ---- the two calls ----

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Empty,
    GetPersona,
}

fn request(token: &MetadataValue<tonic::metadata::Ascii>) -> Request<pb::GetPersonaRequest> {
    let mut r = Request::new(pb::GetPersonaRequest {
        name: PERSONA.into(),
    });
    r.metadata_mut().insert("authorization", token.clone());
    r
}

async fn call(
    target: Target,
    channel: &Channel,
    token: &MetadataValue<tonic::metadata::Ascii>,
) -> Result<(), Status> {
    match target {
        Target::Empty => {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static(EMPTY_PATH);
            grpc.unary::<_, (), _>(request(token), path, ProstCodec::default())
                .await?;
        }
        Target::GetPersona => {
            let r = ConfigServiceClient::new(channel.clone())
                .get_persona(request(token))
                .await?;
            if r.get_ref().persona.is_none() {
                return Err(Status::internal("no persona in the reply"));
            }
        }
    }
    Ok(())
}

// ---- the load generator ----

struct Phase {
    requests: u64,
    errors: u64,
    first_error: Option<Status>,
    elapsed: Duration,
    /// Sorted latencies in microseconds.
    latencies: Vec<u32>,
}

impl Phase {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let n = self.latencies.len();
        let idx = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.latencies[idx] as f64 / 1000.0
    }
}

/// Every task issues calls back to back until the deadline; only calls that completed
/// successfully count as requests.
async fn run_phase(
    target: Target,
    channels: &[Channel],
    token: &MetadataValue<tonic::metadata::Ascii>,
    concurrency: usize,
    duration: Duration,
) -> Phase {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let channel = channels[i % channels.len()].clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(16 * 1024);
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let t = Instant::now();
                if t >= deadline {
                    break;
                }
                match call(target, &channel, &token).await {
                    Ok(()) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Err(s) => {
                        errors += 1;
                        first_error.get_or_insert(s);
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut phase = Phase {
        requests: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (lat, errors, first) = t.await.expect("load task panicked");
        phase.latencies.extend(lat);
        phase.errors += errors;
        if phase.first_error.is_none() {
            phase.first_error = first;
        }
    }
    phase.elapsed = start.elapsed();
    phase.requests = phase.latencies.len() as u64;
    phase.latencies.sort_unstable();
    phase
}

fn print_phase(label: &str, p: &Phase) {
    println!(
        "  {label:<28} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {} errors in {:.1} s)",
        p.rps(),
        p.pct_ms(0.50),
        p.pct_ms(0.99),
        p.requests,
        p.errors,
        p.elapsed.as_secs_f64()
    );
    if let Some(e) = &p.first_error {
        println!("    first error: {:?} {}", e.code(), e.message());
    }
}

// ---- set-up ----

fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("token header"),
    );
    r
}

/// Creates the organization (retrying while the database is still starting), its members
/// and one persona; a trainee gets a scenario open to all so the persona is readable.
async fn seed(
    client: &mut ConfigServiceClient<Channel>,
    service: &str,
    admin: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = client
            .create_organization(with_token(
                pb::CreateOrganizationRequest {
                    organization: Some(pb::Organization {
                        display_name: "Acme".into(),
                        ..Default::default()
                    }),
                    organization_id: ORG.into(),
                },
                service,
            ))
            .await;
        match r {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => anyhow::bail!("create organization: {s}"),
        }
    }
    for (id, role) in [
        ("alice", pb::Role::Admin),
        ("mia", pb::Role::Manager),
        ("tom", pb::Role::Trainee),
    ] {
        client
            .create_member(with_token(
                pb::CreateMemberRequest {
                    parent: format!("organizations/{ORG}"),
                    member: Some(pb::Member {
                        subject: id.into(),
                        display_name: id.into(),
                        role: role as i32,
                        ..Default::default()
                    }),
                    member_id: id.into(),
                },
                service,
            ))
            .await?;
    }
    client
        .create_persona(with_token(
            pb::CreatePersonaRequest {
                parent: format!("organizations/{ORG}"),
                persona: Some(pb::Persona {
                    display_name: "Dana Whitfield".into(),
                    role: "VP Operations".into(),
                    company: "Initech".into(),
                    background: "Runs a 40-person operations team; burned by a failed CRM rollout last year.".into(),
                    personality: "Direct, sceptical, short on time.".into(),
                    objections: vec![
                        "too expensive".into(),
                        "we tried something like this before".into(),
                        "my team has no time to learn a new tool".into(),
                    ],
                    difficulty: pb::Difficulty::Hard as i32,
                    voice_id: "alloy".into(),
                    first_message: "You have five minutes. What is this about?".into(),
                    ..Default::default()
                }),
                persona_id: "bench".into(),
            },
            admin,
        ))
        .await?;
    client
        .create_rubric(with_token(
            pb::CreateRubricRequest {
                parent: format!("organizations/{ORG}"),
                rubric: Some(pb::Rubric {
                    display_name: "Discovery".into(),
                    criteria: vec![pb::Criterion {
                        id: "discovery".into(),
                        skill: "discovery".into(),
                        weight: 1.0,
                        ..Default::default()
                    }],
                    passing_score: 70.0,
                    ..Default::default()
                }),
                rubric_id: "bench".into(),
            },
            admin,
        ))
        .await?;
    client
        .create_scenario(with_token(
            pb::CreateScenarioRequest {
                parent: format!("organizations/{ORG}"),
                scenario: Some(pb::Scenario {
                    display_name: "Cold call".into(),
                    persona: PERSONA.into(),
                    rubric: format!("organizations/{ORG}/rubrics/bench"),
                    open_to_all: true,
                    goal: Some(pb::Goal {
                        kind: pb::GoalKind::BookMeeting as i32,
                        description: String::new(),
                    }),
                    ..Default::default()
                }),
                scenario_id: "bench".into(),
            },
            admin,
        ))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    salestrainer_runtime::install_crypto_provider();
    // As in production: the Prometheus recorder and the tracing subscriber (only warnings
    // printed, so the bench output stays readable; request spans are still created).
    let _metrics = salestrainer_runtime::metrics::prometheus();
    let _telemetry = salestrainer_runtime::telemetry::init(
        "config-bench",
        &TelemetrySettings {
            log_filter: "warn".into(),
            ..TelemetrySettings::default()
        },
    )?;

    let dir = tempfile::tempdir()?;
    // The service's own section comes from the usual sources (`SALESTRAINER_CONFIG__*`);
    // where the data lives is the bench's.
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        database_url: String::new(),
        ..Settings::load()?
    };
    let config_settings: salestrainer_config::app::settings::ConfigSettings =
        settings.section(salestrainer_config::SERVICE)?;
    let mut pg_db = None;
    if let Some(server) = &a.postgres {
        let name = format!(
            "cfg_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        settings.database_url = format!("{server}/{name}");
        pg_db = Some(name);
    }

    let verifier = Arc::new(JwtVerifier::new(Some(SECRET), &[], "")?);
    let minter = TokenMinter::new(SECRET, "");
    let mut server = ServerBuilder::new(ServerSettings::default(), verifier).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let ctx = salestrainer_runtime::Context::new(settings.clone(), minter.clone(), addr)?;
    let config = salestrainer_config::mount(&mut server, &ctx).await;
    server.add_service(Empty).await;
    let empty: Starter = Box::new(|readiness| {
        Box::pin(async move {
            readiness
                .set_serving(<Empty as tonic::server::NamedService>::NAME)
                .await
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(salestrainer_runtime::app::run_until(
        server,
        vec![config, empty],
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let mut channels = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        // One HTTP/2 connection each.
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let service = minter.service_token("bench")?;
    let admin = minter.mint("alice", ORG, Role::Admin, 3600)?;
    seed(
        &mut ConfigServiceClient::new(channels[0].clone()),
        &service,
        &admin,
    )
    .await?;
    let subject = match a.role {
        Role::Manager => "mia",
        Role::Trainee => "tom",
        _ => "alice",
    };
    let token = minter.mint(subject, ORG, a.role, 3600)?;
    let token: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}").parse()?;

    let profile = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    let backend = if a.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "config-bench ({profile}, {backend}, {workers} runtime threads shared by server and load generator)"
    );
    let read_cache = match config_settings.cache_ttl_ms {
        0 => "off".to_owned(),
        ms => format!("on, TTL {ms} ms"),
    };
    println!("  config read cache (membership + content row): {read_cache}");
    println!(
        "  {} connections x {} concurrent tasks, {} s warm-up + {} s per phase, caller role {:?}",
        a.connections, a.concurrency, a.warmup, a.seconds, a.role
    );

    let warm = Duration::from_secs(a.warmup);
    let run = Duration::from_secs(a.seconds);
    if !warm.is_zero() {
        run_phase(Target::Empty, &channels, &token, a.concurrency, warm).await;
    }
    let empty_phase = run_phase(Target::Empty, &channels, &token, a.concurrency, run).await;
    if !warm.is_zero() {
        run_phase(Target::GetPersona, &channels, &token, a.concurrency, warm).await;
    }
    let persona_phase = run_phase(Target::GetPersona, &channels, &token, a.concurrency, run).await;

    println!();
    print_phase("A  empty handler", &empty_phase);
    print_phase("B  GetPersona (full stack)", &persona_phase);
    let ratio = persona_phase.rps() / empty_phase.rps();
    println!();
    println!(
        "  ratio B/A = {:.1}%  (target >= 60%: {})",
        ratio * 100.0,
        if ratio >= 0.60 { "PASS" } else { "FAIL" }
    );
    let metrics = salestrainer_runtime::metrics::prometheus().render();
    let caches: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("cache_requests_total"))
        .collect();
    if !caches.is_empty() {
        println!("  caches: {}", caches.join("; "));
    }

    let _ = stop_tx.send(());
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), serving).await;
    if let (Some(server), Some(name)) = (&a.postgres, pg_db) {
        // Drop the scratch database.
        if let Ok(admin) = sea_orm::Database::connect(format!("{server}/postgres")).await {
            use sea_orm::ConnectionTrait;
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
    if empty_phase.errors + persona_phase.errors > 0 {
        anyhow::bail!("some calls failed");
    }
    Ok(())
}
