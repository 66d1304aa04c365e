//! watch-bench: what idle WatchSession streams cost a running server — database transactions
//! per second (PostgreSQL's pg_stat_database for the call service's database) and the
//! server's resident memory (VmRSS of /proc/<pid>/status) before and after opening them.
//!
//! Against `salestrainer up` on PostgreSQL (its demo organization: trainee tom, scenario
//! cold-call), started with room for the streams, e.g.:
//!
//! ```text
//! SALESTRAINER_DATABASE_URL='postgres://postgres@127.0.0.1/wb_{service}' \
//! SALESTRAINER_CALL__MAX_WATCH_STREAMS_PER_CALLER=10000 \
//! SALESTRAINER_SERVER__CONCURRENCY_LIMIT=20000 salestrainer up &
//! watch-bench --pid $! --data-dir data --database wb_call --streams 5000 --seconds 30
//! ```
//!
//! Usage: watch-bench --pid PID [--addr http://127.0.0.1:50051] [--data-dir data]
//! [--database NAME] [--postgres postgres://postgres@127.0.0.1:5432] [--streams 5000]
//! [--seconds 30] [--sessions 50]

use std::time::{Duration, Instant};

use salestrainer_proto::call::{self as pb, call_service_client::CallServiceClient};
use salestrainer_runtime::{Role, auth::TokenMinter};
use sea_orm::{ConnectionTrait, Statement};
use tonic::transport::Channel;

/// Streams per HTTP/2 connection (its usual concurrent-stream bound).
const PER_CONNECTION: usize = 100;

struct Args {
    addr: String,
    pid: u32,
    data_dir: String,
    database: String,
    postgres: String,
    streams: usize,
    seconds: u64,
    sessions: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        addr: "http://127.0.0.1:50051".into(),
        pid: 0,
        data_dir: "data".into(),
        database: "salestrainer_call".into(),
        postgres: "postgres://postgres@127.0.0.1:5432".into(),
        streams: 5000,
        seconds: 30,
        sessions: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = value,
            "--pid" => a.pid = value.parse()?,
            "--data-dir" => a.data_dir = value,
            "--database" => a.database = value,
            "--postgres" => a.postgres = value,
            "--streams" => a.streams = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--sessions" => a.sessions = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(a.pid != 0, "--pid of the server is required");
    anyhow::ensure!(a.sessions > 0, "--sessions must be at least 1");
    Ok(a)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// (transactions, rows returned) of `database` so far.
async fn db_counters(
    admin: &sea_orm::DatabaseConnection,
    database: &str,
) -> anyhow::Result<(i64, i64)> {
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT (xact_commit + xact_rollback)::bigint AS x, tup_returned::bigint AS t \
             FROM pg_stat_database WHERE datname = $1",
            [database.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no database {database}"))?;
    Ok((row.try_get("", "x")?, row.try_get("", "t")?))
}

fn authed<T>(msg: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

/// Transactions and rows returned per second over `seconds`, once the server has been quiet
/// a while (PostgreSQL publishes a backend's statistics some seconds after it goes idle).
async fn measure(a: &Args, admin: &sea_orm::DatabaseConnection) -> anyhow::Result<(f64, f64)> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (x0, t0) = db_counters(admin, &a.database).await?;
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let (x1, t1) = db_counters(admin, &a.database).await?;
    let s = a.seconds.max(1) as f64;
    Ok(((x1 - x0) as f64 / s, (t1 - t0) as f64 / s))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let secret = std::fs::read_to_string(format!("{}/dev-jwt.secret", a.data_dir))?;
    let minter = TokenMinter::new(secret.trim().as_bytes(), "");
    let token = minter.mint("tom", "demo", Role::Trainee, 3600)?;
    let admin = sea_orm::Database::connect(format!("{}/postgres", a.postgres)).await?;

    let channels: Vec<Channel> = (0..a.streams.div_ceil(PER_CONNECTION).max(1))
        .map(|_| Ok(Channel::from_shared(a.addr.clone())?.connect_lazy()))
        .collect::<anyhow::Result<_>>()?;
    let mut client = CallServiceClient::new(channels[0].clone());
    let mut sessions = Vec::new();
    for _ in 0..a.sessions {
        let s = client
            .start_session(authed(
                pb::StartSessionRequest {
                    parent: "organizations/demo".into(),
                    scenario: "organizations/demo/scenarios/cold-call".into(),
                    mode: pb::SessionMode::Text as i32,
                    ..Default::default()
                },
                &token,
            )?)
            .await?
            .into_inner()
            .session
            .ok_or_else(|| anyhow::anyhow!("no session"))?;
        sessions.push(s.name);
    }

    let rss_before = rss_kib(a.pid)?;
    let (idle_xps, idle_tps) = measure(&a, &admin).await?;
    println!(
        "no streams: RSS {rss_before} KiB, {idle_xps:.1} transactions/s, {idle_tps:.0} rows returned/s"
    );

    let opened = Instant::now();
    let mut streams = Vec::with_capacity(a.streams);
    for i in 0..a.streams {
        let mut c = CallServiceClient::new(channels[i / PER_CONNECTION].clone());
        let name = sessions[i % sessions.len()].clone();
        let mut s = c
            .watch_session(authed(
                pb::WatchSessionRequest {
                    name,
                    ..Default::default()
                },
                &token,
            )?)
            .await?
            .into_inner();
        s.message()
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream {i} closed"))?;
        streams.push(s);
    }
    println!("opened {} streams in {:?}", streams.len(), opened.elapsed());
    let (xps, tps) = measure(&a, &admin).await?;
    let rss_after = rss_kib(a.pid)?;
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "{} idle streams: RSS {rss_after} KiB (+{grown} KiB, {:.1} KiB/stream), \
         {xps:.1} transactions/s, {tps:.0} rows returned/s",
        streams.len(),
        grown as f64 / streams.len().max(1) as f64,
    );
    drop(streams);
    Ok(())
}
