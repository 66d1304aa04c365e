//! Converse under load: the whole suite in-process on 127.0.0.1:0 (SQLite, or PostgreSQL with
//! `BENCH_POSTGRES=1`; scripted persona),
//! N concurrent Converse streams (default 1,000; `BENCH_STREAMS`), each sending `BENCH_TURNS`
//! turns (default 5) with a random think time of up to 2 s between them. Reports p50/p99/max
//! from a turn sent to the first reply chunk, and the process RSS (client and server share the
//! process, so the figure is an upper bound for the server).
//!
//! `BENCH_LLM_FIRST_TOKEN_MS=N`: the persona is an LLM instead, a local fake OpenAI-compatible
//! provider (real SSE) whose first token comes N ms after each request; the time to the first
//! chunk then includes those N ms.
//!
//! `cargo bench -p salestrainer-call --bench converse` (release), or build it with
//! `cargo build -p salestrainer-call --bench converse` for a debug figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use salestrainer_proto::{call as pb, config as cfg};
use salestrainer_runtime::Role;
use salestrainer_tests::authed;
use tonic::transport::Channel;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let streams = env_usize("BENCH_STREAMS", 1000);
    let turns = env_usize("BENCH_TURNS", 5);
    // BENCH_POSTGRES=1: the services' databases on PostgreSQL (SALESTRAINER_TEST_POSTGRES_URL or
    // the local server) instead of SQLite.
    let backend = if std::env::var("BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        common::Backend::Postgres
    } else {
        common::Backend::Sqlite
    };
    let s = common::suite(backend).await;
    let first_token = std::env::var("BENCH_LLM_FIRST_TOKEN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    if let Some(wait) = first_token {
        common::use_llm(&s, common::steady_llm(wait).await).await;
        println!("persona: LLM, a fake provider whose first token comes after {wait:?}");
    }
    let rss_idle = rss_mb();
    // Several connections, as many browsers would use; HTTP/2 caps streams per connection.
    let channels: Vec<Channel> = (0..20)
        .map(|_| {
            Channel::from_shared(format!("http://{}", s.app.addr))
                .unwrap()
                .connect_lazy()
        })
        .collect();

    // Each stream is a trainee of its own: members of the organization.
    let trainees: Vec<String> = (0..streams).map(|i| format!("bench-{i}")).collect();
    for chunk in trainees.chunks(50) {
        let adds = chunk
            .iter()
            .map(|t| common::add_member(&s, t, cfg::Role::Trainee));
        futures::future::join_all(adds).await;
    }

    let t0 = Instant::now();
    let mut sessions = Vec::with_capacity(streams);
    for chunk in (0..streams).collect::<Vec<_>>().chunks(50) {
        let futs = chunk.iter().map(|i| {
            let token = s.app.token(Role::Trainee, &format!("bench-{i}"), "acme");
            let mut call = pb::call_service_client::CallServiceClient::new(
                channels[i % channels.len()].clone(),
            );
            async move {
                let r = call
                    .start_session(authed(
                        pb::StartSessionRequest {
                            parent: "organizations/acme".into(),
                            scenario: common::SCENARIO.into(),
                            mode: pb::SessionMode::Text as i32,
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await
                    .expect("start")
                    .into_inner();
                (token, r.session.unwrap().name)
            }
        });
        sessions.extend(futures::future::join_all(futs).await);
    }
    println!("started {streams} sessions in {:?}", t0.elapsed());

    // Open every stream first, so all of them are concurrently open while turns flow.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(streams));
    let mut tasks = Vec::with_capacity(streams);
    for (i, (token, name)) in sessions.into_iter().enumerate() {
        let client =
            pb::call_service_client::CallServiceClient::new(channels[i % channels.len()].clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = common::Conversation::open(client, &token, &name).await.expect("open");
            c.next().await.expect("started");
            c.reply().await.expect("greeting");
            barrier.wait().await;
            let mut lat = Vec::with_capacity(turns);
            let script = [
                "How do you plan your routes today?",
                "What does a late delivery cost you?",
                "RouteWise plans the routes automatically every morning and sends them to a driver app.",
                "I understand, price matters. Most customers recover the cost within three months.",
                "Can we schedule a 30 minute demo next week?",
            ];
            for t in 0..turns {
                let think = rand::random_range(0..2000u64);
                tokio::time::sleep(Duration::from_millis(think)).await;
                let sent = Instant::now();
                c.send_turn(script[t % script.len()], &format!("b{t}")).await;
                let mut first = None;
                loop {
                    match c.next().await.expect("reply") {
                        pb::converse_response::Payload::Chunk(_) if first.is_none() => {
                            first = Some(sent.elapsed())
                        }
                        pb::converse_response::Payload::Done(_) => break,
                        _ => {}
                    }
                }
                lat.push(first.expect("a chunk"));
            }
            (c, lat)
        }));
    }
    let mut all = Vec::new();
    let mut keep = Vec::new();
    let mut peak = rss_mb();
    for t in tasks {
        let (c, lat) = t.await.expect("stream task");
        all.extend(lat);
        keep.push(c);
        peak = peak.max(rss_mb());
    }
    let rss_open = rss_mb();
    all.sort();
    println!(
        "{} concurrent Converse streams, {} turns: turn -> first chunk p50 {:?}, p99 {:?}, max {:?}",
        streams,
        all.len(),
        pct(&all, 0.50),
        pct(&all, 0.99),
        all.last().copied().unwrap_or_default()
    );
    println!(
        "process RSS (server + client): idle {rss_idle:.1} MB, with {streams} streams open {rss_open:.1} MB, peak seen {peak:.1} MB"
    );
    drop(keep);
    let url = s.app.settings.database_url.clone();
    s.app.stop().await;
    // Nothing to drop on SQLite.
    salestrainer_tests::drop_postgres_databases(&url, &salestrainer_tests::DATABASES).await;
}
