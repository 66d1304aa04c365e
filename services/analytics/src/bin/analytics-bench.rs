//! Benchmark of the analytics read model on PostgreSQL.
//!
//! Loads `trainees × days` graded sessions into one organization (default 1,000 × 365 = 1M)
//! with set-based SQL, builds the raw session/grade/skill tables a naive dashboard would
//! join, then through gRPC measures GetOrganizationSummary over 90 days (uncached and
//! cached p50/p99) and IngestEvents throughput, and times the naive join for the ratio.
//!
//! `analytics-bench [--sessions N] [--trainees N] [--days N] [--samples N] [--ingest N]
//!                  [--batch N] [--workers N] [--postgres postgres://user@host:port]`

use std::{sync::Arc, time::Instant};

use salestrainer_analytics::{app::settings::AnalyticsSettings, mount_with, store::Migrator};
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::{
    Context, Role, Settings,
    auth::{JwtVerifier, TokenMinter},
    server::ServerBuilder,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::transport::Channel;

const DAY_US: i64 = 86_400_000_000;
/// 2025-01-01T00:00:00Z.
const BASE_US: i64 = 1_735_689_600_000_000;
const SECRET: &[u8] = b"analytics-bench-secret";
const ORG: &str = "bench";

struct Args {
    /// Graded sessions to load, spread evenly over trainees and days.
    sessions: i64,
    trainees: i64,
    days: i64,
    samples: usize,
    ingest: usize,
    batch: usize,
    workers: usize,
    postgres: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        sessions: 1_000_000,
        trainees: 1000,
        days: 365,
        samples: 1000,
        ingest: 20_000,
        batch: 250,
        workers: 2,
        postgres: "postgres://postgres@127.0.0.1:5432".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sessions" => a.sessions = value.parse()?,
            "--trainees" => a.trainees = value.parse()?,
            "--days" => a.days = value.parse()?,
            "--samples" => a.samples = value.parse()?,
            "--ingest" => a.ingest = value.parse()?,
            "--batch" => a.batch = value.parse::<usize>()?.clamp(1, 500),
            "--workers" => a.workers = value.parse::<usize>()?.max(1),
            "--postgres" => a.postgres = value,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(
        a.days >= 91,
        "--days must be at least 91 (the query spans 90)"
    );
    anyhow::ensure!(
        a.trainees >= 1 && a.trainees <= 86_000,
        "--trainees 1..86000"
    );
    Ok(a)
}

async fn timed(db: &DatabaseConnection, label: &str, sql: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    db.execute_unprepared(sql).await?;
    // Recycle WAL between steps: the bulk load must fit a small disk.
    db.execute_unprepared("CHECKPOINT").await?;
    println!("  {label:<44} {:>8.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Everything generated from one pseudo-random table so facts, rollups and raw tables agree.
async fn load(db: &DatabaseConnection, a: &Args) -> anyhow::Result<()> {
    let total = Instant::now();
    for index in [
        "analytics_facts_org_start",
        "analytics_facts_trainee_start",
        "analytics_facts_scenario_start",
        "analytics_facts_assignment",
        "analytics_facts_trainee_graded",
    ] {
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
            .await?;
    }
    timed(
        db,
        "generate sessions",
        &format!(
            "CREATE UNLOGGED TABLE bench_gen AS
             SELECT n AS id, t, d,
                    {BASE_US}::bigint + d * {DAY_US}::bigint + ((n * 7919) % 86000) * 1000000::bigint AS start_us,
                    (60 + (t * 31 + d * 17) % 1740) * 1000 AS duration_ms,
                    ((t * 7919 + n * 104729) % 100001) AS score,
                    ((t * 13 + n * 7) % 100001) AS s_closing,
                    ((t * 101 + n * 11) % 100001) AS s_discovery,
                    ((t * 37 + n * 5) % 100001) AS s_rapport,
                    ((t + n) % 5 = 0) AS closed
             FROM (SELECT n, n % {trainees} AS t, (n / {trainees}) % {days} AS d
                   FROM generate_series(0, {n1}::bigint) AS n) g",
            trainees = a.trainees,
            days = a.days,
            n1 = a.sessions - 1,
        ),
    )
    .await?;
    timed(
        db,
        "facts",
        "INSERT INTO analytics_facts (session, org, trainee, scenario, assignment, start_us,
            duration_ms, ended, cancelled, grading_failed, graded, evaluation, score_milli,
            passed, closed, graded_us, skills, superseded)
         SELECT 'organizations/bench/sessions/' || id, 'bench',
            'organizations/bench/members/m' || t, 'organizations/bench/scenarios/s' || (t % 10),
            '', start_us, duration_ms, 1, 0, 0, 1,
            'organizations/bench/sessions/' || id || '/evaluations/1', score,
            (score >= 70000)::int, closed::int, start_us + 3600000000,
            '[[\"closing\",' || s_closing || '],[\"discovery\",' || s_discovery || '],[\"rapport\",' || s_rapport || ']]',
            '[]'
         FROM bench_gen",
    )
    .await?;
    timed(
        db,
        "fact indexes",
        "CREATE INDEX analytics_facts_org_start ON analytics_facts (org, start_us);
         CREATE INDEX analytics_facts_trainee_start ON analytics_facts (org, trainee, start_us);
         CREATE INDEX analytics_facts_scenario_start ON analytics_facts (org, scenario, start_us);
         CREATE INDEX analytics_facts_assignment ON analytics_facts (org, assignment, trainee);
         CREATE INDEX analytics_facts_trainee_graded ON analytics_facts (org, trainee, graded_us)",
    )
    .await?;
    let daily = |dim: &str, key: &str| {
        format!(
            "INSERT INTO analytics_daily (org, dim, dim_key, day, sessions, duration_ms_sum,
                duration_n, graded, score_milli_sum, passed, closed)
             SELECT 'bench', '{dim}', {key}, start_us / {DAY_US}, count(*), sum(duration_ms),
                count(*), count(*), sum(score), sum((score >= 70000)::int), sum(closed::int)
             FROM bench_gen GROUP BY 3, 4"
        )
    };
    let skills = |dim: &str, key: &str| {
        format!(
            "INSERT INTO analytics_skill_daily (org, dim, dim_key, day, skill, score_milli_sum, samples)
             SELECT 'bench', '{dim}', k, day, skill, sum(v), count(*) FROM (
               SELECT {key} AS k, start_us / {DAY_US} AS day, x.skill, x.v FROM bench_gen,
               LATERAL (VALUES ('closing', s_closing), ('discovery', s_discovery),
                               ('rapport', s_rapport)) AS x(skill, v)) s
             GROUP BY k, day, skill"
        )
    };
    let trainee = "'organizations/bench/members/m' || t";
    let scenario = "'organizations/bench/scenarios/s' || (t % 10)";
    timed(db, "rollup: organization/day", &daily("o", "''")).await?;
    timed(db, "rollup: trainee/day", &daily("t", trainee)).await?;
    timed(db, "rollup: scenario/day", &daily("s", scenario)).await?;
    timed(db, "rollup: skills organization/day", &skills("o", "''")).await?;
    timed(db, "rollup: skills trainee/day", &skills("t", trainee)).await?;
    timed(db, "rollup: skills scenario/day", &skills("s", scenario)).await?;
    timed(
        db,
        "names",
        &format!(
            "INSERT INTO analytics_names (resource, org, kind, display_name)
             SELECT 'organizations/bench/members/m' || t, 'bench', 'member', 'Member ' || t
             FROM generate_series(0, {}) AS t",
            a.trainees - 1
        ),
    )
    .await?;
    // The raw tables of the usual design: sessions, grades and skill scores, joined at read.
    timed(
        db,
        "raw: sessions",
        "CREATE TABLE bench_sessions (id BIGINT PRIMARY KEY, org TEXT NOT NULL,
            trainee TEXT NOT NULL, scenario TEXT NOT NULL, start_time TIMESTAMPTZ NOT NULL,
            duration_ms BIGINT NOT NULL, cancelled BOOLEAN NOT NULL);
         INSERT INTO bench_sessions SELECT id, 'bench', 'organizations/bench/members/m' || t,
            'organizations/bench/scenarios/s' || (t % 10), to_timestamp(start_us / 1e6),
            duration_ms, false FROM bench_gen;
         CREATE INDEX bench_sessions_org_start ON bench_sessions (org, start_time)",
    )
    .await?;
    timed(
        db,
        "raw: grades",
        "CREATE TABLE bench_grades (id BIGINT PRIMARY KEY, session_id BIGINT NOT NULL,
            score DOUBLE PRECISION NOT NULL, passed BOOLEAN NOT NULL, closed BOOLEAN NOT NULL,
            is_current BOOLEAN NOT NULL);
         INSERT INTO bench_grades SELECT id, id, score / 1000.0, score >= 70000, closed, true
            FROM bench_gen;
         CREATE INDEX bench_grades_session ON bench_grades (session_id)",
    )
    .await?;
    timed(
        db,
        "raw: skill scores",
        "CREATE TABLE bench_skill_scores (grade_id BIGINT NOT NULL, skill TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL);
         INSERT INTO bench_skill_scores SELECT id, x.skill, x.v / 1000.0 FROM bench_gen,
            LATERAL (VALUES ('closing', s_closing), ('discovery', s_discovery),
                            ('rapport', s_rapport)) AS x(skill, v);
         CREATE INDEX bench_skill_scores_grade ON bench_skill_scores (grade_id)",
    )
    .await?;
    timed(db, "analyze", "DROP TABLE bench_gen; ANALYZE").await?;
    println!(
        "  loaded {} sessions in {:.1} s",
        a.sessions,
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve(db_url: &str, cache: bool) -> anyhow::Result<(Channel, TokenMinter)> {
    let dir = std::env::temp_dir().join(format!("analytics-bench-{}", std::process::id()));
    let mut settings = Settings {
        data_dir: dir,
        admin_listen: None,
        database_url: db_url.to_owned(),
        ..Settings::default()
    };
    settings.auth.dev_secret = String::from_utf8_lossy(SECRET).into_owned();
    let verifier = Arc::new(JwtVerifier::new(Some(SECRET), &[], "")?);
    let mut server = ServerBuilder::new(settings.server.clone(), verifier).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let minter = TokenMinter::new(SECRET, "");
    let ctx = Context::new(settings, minter.clone(), addr)?;
    let mut an = AnalyticsSettings {
        consume_bus: false,
        // No grading here to reconcile with.
        reconcile_after_secs: 0,
        ..AnalyticsSettings::default()
    };
    if !cache {
        an.cache_ttl_ms = 0;
    }
    let starter = mount_with(&mut server, &ctx, an).await;
    // One Readiness shared by the starter and the server, so we can wait for SERVING.
    let readiness = server.readiness();
    tokio::spawn(starter(readiness.clone()));
    tokio::spawn(server.serve(listener, readiness.clone(), std::future::pending()));
    readiness.wait_all().await;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    Ok((channel, minter))
}

fn authed<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

async fn summary_latencies(
    channel: &Channel,
    token: &str,
    req: &pb::GetOrganizationSummaryRequest,
    samples: usize,
) -> anyhow::Result<(Vec<f64>, pb::SummaryStats)> {
    let mut client = pb::analytics_service_client::AnalyticsServiceClient::new(channel.clone());
    let mut last = pb::SummaryStats::default();
    for _ in 0..20 {
        client
            .get_organization_summary(authed(req.clone(), token)?)
            .await?;
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let resp = client
            .get_organization_summary(authed(req.clone(), token)?)
            .await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        last = resp.into_inner().summary.unwrap_or_default();
    }
    out.sort_by(f64::total_cmp);
    Ok((out, last))
}

const NAIVE: &str = "
    SELECT date_trunc('day', s.start_time) AS day, count(*) AS sessions,
           count(g.id) AS graded, avg(g.score) AS average_score,
           avg(g.passed::int) AS pass_rate, avg(g.closed::int) AS close_rate,
           avg(s.duration_ms) AS duration
    FROM bench_sessions s LEFT JOIN bench_grades g ON g.session_id = s.id AND g.is_current
    WHERE s.org = $1 AND s.start_time >= $2 AND s.start_time < $3 AND NOT s.cancelled
    GROUP BY 1 ORDER BY 1";
const NAIVE_SKILLS: &str = "
    SELECT k.skill, avg(k.score), count(*)
    FROM bench_sessions s JOIN bench_grades g ON g.session_id = s.id AND g.is_current
         JOIN bench_skill_scores k ON k.grade_id = g.id
    WHERE s.org = $1 AND s.start_time >= $2 AND s.start_time < $3 AND NOT s.cancelled
    GROUP BY 1";

async fn naive(
    db: &DatabaseConnection,
    start_us: i64,
    end_us: i64,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    use sea_orm::{DbBackend, Statement};
    let at = |us: i64| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_micros(us).ok_or_else(|| anyhow::anyhow!("bad time"))
    };
    let values: Vec<sea_orm::Value> = vec![ORG.into(), at(start_us)?.into(), at(end_us)?.into()];
    let mut out = Vec::new();
    for i in 0..runs + 2 {
        let t = Instant::now();
        db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            NAIVE,
            values.clone(),
        ))
        .await?;
        db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            NAIVE_SKILLS,
            values.clone(),
        ))
        .await?;
        // The first two runs warm the buffer cache.
        if i >= 2 {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

async fn ingest(channel: &Channel, token: &str, a: &Args) -> anyhow::Result<f64> {
    let mut events = Vec::with_capacity(a.ingest);
    for i in 0..a.ingest as i64 {
        let start_us = BASE_US + (i % a.days) * DAY_US + 1000;
        let session = format!("organizations/{ORG}/sessions/new-{i}");
        events.push(ev::Event {
            event_id: format!("bench-{i}"),
            occur_time: Some(ts(start_us + 3_600_000_000)),
            organization: format!("organizations/{ORG}"),
            trace_context: Default::default(),
            producer: "bench".into(),
            payload: Some(ev::event::Payload::SessionGraded(ev::SessionGraded {
                evaluation: format!("{session}/evaluations/1"),
                session,
                trainee: format!("organizations/{ORG}/members/m{}", i % a.trainees),
                scenario: format!("organizations/{ORG}/scenarios/s{}", i % 10),
                assignment: String::new(),
                session_start_time: Some(ts(start_us)),
                session_duration: Some(prost_types::Duration {
                    seconds: 300,
                    nanos: 0,
                }),
                overall_score: (i % 100) as f64,
                passed: i % 100 >= 70,
                closed: i % 7 == 0,
                skill_scores: ["closing", "discovery", "rapport"]
                    .iter()
                    .map(|k| ev::SkillScore {
                        skill: (*k).into(),
                        score: ((i * 3) % 100) as f64,
                    })
                    .collect(),
                metrics: None,
                usage: Some(ev::LlmUsage {
                    prompt_tokens: 1200,
                    completion_tokens: 300,
                    cost_micros: 900,
                    provider: "openai".into(),
                    model: "gpt-4o-mini".into(),
                    requests: 2,
                }),
                regrade: false,
                supersedes: String::new(),
                // The session events say the source.
                source: ev::SessionSource::Unspecified as i32,
                criterion_scores: Vec::new(),
            })),
        });
    }
    let batches: Vec<Vec<ev::Event>> = events.chunks(a.batch).map(<[_]>::to_vec).collect();
    let queue = Arc::new(tokio::sync::Mutex::new(batches));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.workers {
        let queue = queue.clone();
        let channel = channel.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut client = pb::analytics_service_client::AnalyticsServiceClient::new(channel);
            loop {
                let Some(batch) = queue.lock().await.pop() else {
                    return anyhow::Ok(());
                };
                client
                    .ingest_events(authed(pb::IngestEventsRequest { events: batch }, &token)?)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(a.ingest as f64 / t.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::install_crypto_provider();
    let a = args()?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let url = format!("{}/st_analytics_bench_{}", a.postgres, &id[..8]);
    println!(
        "analytics bench: {} graded sessions over {} trainees × {} days, database {}",
        a.sessions,
        a.trainees,
        a.days,
        salestrainer_runtime::db::redact_url(&url)
    );
    let db = salestrainer_runtime::db::connect_and_migrate::<Migrator>(&url).await?;
    load(&db, &a).await?;

    let (uncached, minter) = serve(&url, false).await?;
    let (cached, _) = serve(&url, true).await?;
    let manager = minter.mint("bench-manager", ORG, Role::Manager, 3600)?;
    let service = minter.service_token("grading")?;
    // 90 whole days inside the loaded year.
    let start_us = BASE_US + (a.days - 95) * DAY_US;
    let end_us = start_us + 90 * DAY_US;
    let req = pb::GetOrganizationSummaryRequest {
        name: format!("organizations/{ORG}"),
        start_time: Some(ts(start_us)),
        end_time: Some(ts(end_us)),
        ..Default::default()
    };
    let (u, stats) = summary_latencies(&uncached, &manager, &req, a.samples).await?;
    let (c, _) = summary_latencies(&cached, &manager, &req, a.samples).await?;
    // The same question with ragged edges (partial first and last day read from facts).
    let mut ragged = req.clone();
    ragged.start_time = Some(ts(start_us + 7 * 3_600_000_000));
    ragged.end_time = Some(ts(end_us + 5 * 3_600_000_000));
    let (r, _) = summary_latencies(&uncached, &manager, &ragged, a.samples / 4).await?;
    let n = naive(&db, start_us, end_us, 10).await?;
    println!(
        "GetOrganizationSummary 90 days: {} sessions, {} graded, average {:.2}, {} trend points, {} skills",
        stats.sessions,
        stats.graded_sessions,
        stats.average_score,
        stats.trend.len(),
        stats.skills.len()
    );
    println!(
        "  uncached        p50 {:>7.2} ms  p99 {:>7.2} ms  ({} calls)",
        percentile(&u, 0.5),
        percentile(&u, 0.99),
        u.len()
    );
    println!(
        "  cached          p50 {:>7.2} ms  p99 {:>7.2} ms  ({} calls)",
        percentile(&c, 0.5),
        percentile(&c, 0.99),
        c.len()
    );
    println!(
        "  uncached, partial first/last day  p50 {:>7.2} ms  p99 {:>7.2} ms",
        percentile(&r, 0.5),
        percentile(&r, 0.99)
    );
    println!(
        "  naive join + GROUP BY (SQL only)  p50 {:>7.1} ms  min {:>7.1} ms  ({} runs)",
        percentile(&n, 0.5),
        percentile(&n, 0.0),
        n.len()
    );
    println!(
        "  ratio naive p50 / uncached p50: {:.0}×; naive p50 / cached p50: {:.0}×",
        percentile(&n, 0.5) / percentile(&u, 0.5),
        percentile(&n, 0.5) / percentile(&c, 0.5)
    );
    let rate = ingest(&uncached, &service, &a).await?;
    println!(
        "IngestEvents: {} graded events (batches of {}, {} concurrent callers): {:.0} events/s",
        a.ingest, a.batch, a.workers, rate
    );
    Ok(())
}
