//! grading-bench: throughput and latency of the grading pipeline on this machine.
//!
//! 1. Built-in grader: a burst of sessions, graded per second end to end (SessionEnded handled
//!    as the consumer handles a burst, 16 per transaction → evaluation committed with its
//!    SessionGraded event), then a steady stream at about half
//!    that rate for the p99 SessionEnded → SessionGraded latency.
//! 2. A fake OpenAI-compatible provider that answers at once: the same burst.
//! 3. A provider limited to 10,000 tokens per minute, enforced as OpenAI does (a bucket of
//!    10,000 tokens refilling continuously at 10,000 per minute; 429 past it): the share of
//!    what it admits at most over `--tpm-seconds` (default 180: 10,000 + 30,000) that was
//!    used, and the number of 429s.
//!
//! Usage: grading-bench [--sessions N] [--tpm-seconds S] [--postgres URL]
//! Workers: `[grading] workers` of the settings, e.g. SALESTRAINER_GRADING__WORKERS (default 16).

// The fakes live with the tests, out of the library; the bench borrows them by path.
#[path = "../../tests/common/testkit.rs"]
mod testkit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use salestrainer_grading::app::inputs::Credential;
use salestrainer_grading::app::rate_limit::LocalRateLimit;
use salestrainer_grading::app::session_events::{handle_session_ended, handle_session_ended_batch};
use salestrainer_grading::app::{Engine, EngineConfig, GradingSettings};
use salestrainer_grading::store::{Migrator, evaluation, job};
use salestrainer_proto::grading::JobState;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use testkit::{FakeProvider, RecordedTranscripts, StaticInputs, session_ended, strong_call};
use tokio_util::sync::CancellationToken;

struct Args {
    sessions: usize,
    tpm_seconds: u64,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        sessions: 2000,
        tpm_seconds: 180,
        postgres: None,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--sessions" => a.sessions = next.parse().unwrap_or(a.sessions),
            "--tpm-seconds" => a.tpm_seconds = next.parse().unwrap_or(a.tpm_seconds),
            "--postgres" => a.postgres = Some(next),
            _ => {}
        }
        i += 2;
    }
    a
}

async fn database(
    pg: &Option<String>,
    dir: &std::path::Path,
    tag: &str,
) -> anyhow::Result<DatabaseConnection> {
    let url = match pg {
        Some(server) => format!(
            "{server}/st_bench_{tag}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        None => format!("sqlite://{}/bench-{tag}.db?mode=rwc", dir.display()),
    };
    salestrainer_runtime::db::connect_and_migrate::<Migrator>(&url).await
}

fn engine(
    db: &DatabaseConnection,
    cred: Option<Credential>,
    cfg: EngineConfig,
) -> anyhow::Result<(Arc<Engine>, CancellationToken)> {
    let e = Engine::new(
        db.clone(),
        cfg,
        Arc::new(StaticInputs::new(cred)),
        Arc::new(RecordedTranscripts::new(strong_call())),
        Arc::new(LocalRateLimit::default()),
        None,
        salestrainer_runtime::changes::Changes::new("grading"),
        None,
    )?;
    let stop = CancellationToken::new();
    e.start(stop.clone());
    Ok((e, stop))
}

/// A burst of SessionEnded events, handled as the consumer takes a burst off the bus: up to 16
/// per transaction.
async fn feed(e: &Arc<Engine>, prefix: &str, n: usize) -> anyhow::Result<()> {
    let events: Vec<_> = (0..n)
        .map(|i| session_ended("organizations/acme", &format!("{prefix}-{i}")))
        .collect();
    for chunk in events.chunks(16) {
        let batch: Vec<_> = chunk.iter().map(|ev| (ev, BTreeMap::new())).collect();
        for id in handle_session_ended_batch(&e.db, &batch, 5)
            .await?
            .into_iter()
            .flatten()
        {
            e.job_ready(&id).await;
        }
    }
    Ok(())
}

async fn succeeded(db: &DatabaseConnection) -> anyhow::Result<u64> {
    Ok(job::Entity::find()
        .filter(job::Column::State.eq(JobState::Succeeded as i32))
        .count(db)
        .await?)
}

/// Feeds a burst and waits for all of it; sessions per second.
async fn burst(e: &Arc<Engine>, prefix: &str, n: usize) -> anyhow::Result<f64> {
    let before = succeeded(&e.db).await?;
    let start = Instant::now();
    let feeder = {
        let e = e.clone();
        let prefix = prefix.to_owned();
        tokio::spawn(async move { feed(&e, &prefix, n).await })
    };
    loop {
        if succeeded(&e.db).await? >= before + n as u64 {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "burst did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feeder.await??;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Steady arrivals at `rate`/s for `secs`; p50/p99 of job creation → evaluation commit, in ms.
async fn latency(e: &Arc<Engine>, rate: f64, secs: u64) -> anyhow::Result<(f64, f64, usize)> {
    let n = (rate * secs as f64) as usize;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut ids = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let due = start + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let ev = session_ended("organizations/acme", &format!("lat-{i}"));
        if let Some(id) = handle_session_ended(&e.db, &ev, 5).await? {
            e.job_ready(&id).await;
            ids.push(id);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while succeeded_of(&e.db, &ids).await? < ids.len() as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jobs: Vec<(String, i64)> = job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .column(job::Column::CreateUs)
        .filter(job::Column::Id.is_in(ids.clone()))
        .into_tuple()
        .all(&e.db)
        .await?;
    let evals: Vec<(String, i64)> = evaluation::Entity::find()
        .select_only()
        .column(evaluation::Column::JobId)
        .column(evaluation::Column::CreateUs)
        .filter(evaluation::Column::JobId.is_in(ids.clone()))
        .into_tuple()
        .all(&e.db)
        .await?;
    let created: std::collections::HashMap<String, i64> = jobs.into_iter().collect();
    // Microseconds (the stored instants).
    let mut lat: Vec<i64> = evals
        .iter()
        .filter_map(|(j, t)| created.get(j).map(|c| t - c))
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let idx = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[idx] as f64 / 1000.0
    };
    Ok((pct(0.50), pct(0.99), lat.len()))
}

async fn succeeded_of(db: &DatabaseConnection, ids: &[String]) -> anyhow::Result<u64> {
    Ok(job::Entity::find()
        .filter(job::Column::Id.is_in(ids.iter().cloned()))
        .filter(job::Column::State.eq(JobState::Succeeded as i32))
        .count(db)
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let dir = tempfile::tempdir()?;
    let cfg = EngineConfig {
        poll: Duration::from_millis(50),
        max_completion_tokens: 400,
        ..salestrainer_runtime::Settings::load()
            .and_then(|s| s.section::<GradingSettings>(salestrainer_grading::SERVICE))
            .map_err(|e| anyhow::anyhow!("settings: {e}"))?
            .engine()
    };
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
    println!(
        "grading-bench ({profile}, {backend}, {} workers)",
        cfg.workers
    );

    // 1. Built-in grader.
    let db = database(&a.postgres, dir.path(), "det").await?;
    let (e, stop) = engine(&db, None, cfg.clone())?;
    let warm = burst(&e, "warm", 50).await?;
    let det = burst(&e, "det", a.sessions).await?;
    println!(
        "built-in grader: {det:.0} sessions/s end to end ({} sessions; warm-up {warm:.0}/s)",
        a.sessions
    );
    let rate = (det * 0.5).clamp(10.0, 1000.0);
    let (p50, p99, n) = latency(&e, rate, 10).await?;
    println!(
        "built-in grader: SessionEnded -> SessionGraded p50 {p50:.0} ms, p99 {p99:.0} ms ({n} sessions at {rate:.0}/s)"
    );
    stop.cancel();

    // 2. Fake provider answering at once.
    let fake = FakeProvider::start(None).await?;
    let db = database(&a.postgres, dir.path(), "llm").await?;
    let (e, stop) = engine(&db, Some(fake.credential(0, 0)), cfg.clone())?;
    burst(&e, "warm", 50).await?;
    let llm = burst(&e, "llm", a.sessions).await?;
    println!(
        "LLM grader, fake provider answering at once: {llm:.0} sessions/s end to end ({} sessions, {} requests)",
        a.sessions,
        fake.requests()
    );
    stop.cancel();

    // 3. 10,000 tokens per minute.
    let tpm = 10_000u64;
    let fake = FakeProvider::start(Some(tpm)).await?;
    let db = database(&a.postgres, dir.path(), "tpm").await?;
    let (e, stop) = engine(&db, Some(fake.credential(0, tpm)), cfg.clone())?;
    // More demand than the budget can serve in the window.
    let demand = (a.tpm_seconds as usize / 2).max(60);
    let start = Instant::now();
    feed(&e, "tpm", demand).await?;
    // After the first minute the full bucket is spent and only the refill is left to use.
    let first_minute = Duration::from_secs(60.min(a.tpm_seconds));
    tokio::time::sleep(first_minute.saturating_sub(start.elapsed())).await;
    let used_first_minute = fake.tokens_used();
    tokio::time::sleep(Duration::from_secs(a.tpm_seconds).saturating_sub(start.elapsed())).await;
    let used = fake.tokens_used();
    // The provider's bucket starts full (tpm) and refills tpm per minute: the most it admits.
    let budget = tpm + tpm * a.tpm_seconds / 60;
    println!(
        "10,000 TPM over {} s: {used} of the {budget} tokens the provider admits at most ({:.1}% of the budget), {} answers 429, {} accepted requests, {} graded",
        a.tpm_seconds,
        used as f64 * 100.0 / budget as f64,
        fake.rejected_429(),
        fake.answered(),
        succeeded(&db).await?
    );
    if a.tpm_seconds > 60 {
        let refill = tpm * (a.tpm_seconds - 60) / 60;
        println!(
            "  after the first minute: {} of the {refill} tokens refilled ({:.1}%)",
            used - used_first_minute,
            (used - used_first_minute) as f64 * 100.0 / refill as f64
        );
    }
    stop.cancel();
    Ok(())
}
