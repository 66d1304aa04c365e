//! The run: sessions started at a fixed rate by distinct trainees, each a StartSession and a
//! Converse stream of timed turns; managers reading dashboards meanwhile.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use salestrainer_proto::{
    analytics::{self as an, analytics_service_client::AnalyticsServiceClient},
    call::{self as pb, call_service_client::CallServiceClient},
};
use salestrainer_runtime::{Role, auth::TokenMinter};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Status, Streaming,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::{
    Args, procs,
    report::{Report, Stats},
    seed::Plan,
};

/// Trainee lines, in order; the last one asks for the next step.
const LINES: &[&str] = &[
    "Hi, thanks for taking my call. How do you plan your delivery routes today?",
    "What happens when a driver calls in sick in the morning?",
    "I understand. Customers your size usually recover the cost within a quarter.",
    "Tell me about the penalties for late deliveries last month.",
    "Our drivers get the route on their phone, no spreadsheet needed.",
    "Could we schedule a short demo next week with your dispatch lead?",
];

type Token = MetadataValue<Ascii>;

pub async fn connect(args: &Args) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(args.target.clone())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(
            endpoint
                .connect()
                .await
                .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", args.target))?,
        );
    }
    Ok(channels)
}

/// `msg` with the bearer token.
pub fn authed<T>(msg: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

fn with_token<T>(msg: T, token: &Token, timeout: Option<Duration>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", token.clone());
    if let Some(t) = timeout {
        req.set_timeout(t);
    }
    req
}

struct Ctx {
    args: Args,
    plan: Plan,
    channels: Vec<Channel>,
    trainee_tokens: Vec<Token>,
    stats: Arc<Stats>,
    next_channel: AtomicUsize,
}

impl Ctx {
    fn channel(&self) -> Channel {
        let i = self.next_channel.fetch_add(1, Ordering::Relaxed);
        self.channels[i % self.channels.len()].clone()
    }

    /// `mean` ±25%.
    fn jitter(mean: Duration) -> Duration {
        mean.mul_f64(rand::random_range(0.75..1.25))
    }
}

fn token(minter: &TokenMinter, subject: &str, org: &str, role: Role) -> anyhow::Result<Token> {
    // Valid for the whole run, however long.
    let t = minter.mint(subject, org, role, 24 * 3600)?;
    Ok(format!("Bearer {t}").parse()?)
}

pub async fn run(
    args: &Args,
    plan: &Plan,
    minter: &TokenMinter,
    channels: Vec<Channel>,
) -> anyhow::Result<Report> {
    let trainee_tokens = plan
        .trainees
        .iter()
        .map(|s| token(minter, s, &args.org, Role::Trainee))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let manager_tokens = plan
        .managers
        .iter()
        .map(|s| token(minter, s, &args.org, Role::Manager))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ctx = Arc::new(Ctx {
        args: args.clone(),
        plan: plan.clone(),
        channels,
        trainee_tokens,
        stats: Arc::new(Stats::default()),
        next_channel: AtomicUsize::new(0),
    });

    let (stop_procs, procs_stopped) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(procs::sample(args.pids.clone(), procs_stopped));
    let (stop_managers, managers_stop) = tokio::sync::watch::channel(false);
    let mut managers = JoinSet::new();
    for t in manager_tokens {
        managers.spawn(manager(ctx.clone(), t, managers_stop.clone()));
    }

    let started_at = Instant::now();
    let free: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..args.trainees).rev().collect()));
    let active = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let (mut started, mut skipped, mut peak) = (0u64, 0u64, 0usize);
    let mut sessions = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = started_at + Duration::from_secs(args.duration);
    let mut last_print = Instant::now();
    while Instant::now() < end {
        tick.tick().await;
        let next = free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let Some(i) = next else {
            skipped += 1;
            continue;
        };
        started += 1;
        peak = peak.max(active.fetch_add(1, Ordering::Relaxed) + 1);
        let (c, f, a, done) = (ctx.clone(), free.clone(), active.clone(), completed.clone());
        sessions.spawn(async move {
            if session(&c, i).await {
                done.fetch_add(1, Ordering::Relaxed);
            }
            a.fetch_sub(1, Ordering::Relaxed);
            f.lock().unwrap_or_else(|p| p.into_inner()).push(i);
        });
        // Reap finished tasks so the set does not grow with the run.
        while sessions.try_join_next().is_some() {}
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!(
                "{:>4.0} s: {started} sessions started, {} active, {} errors",
                started_at.elapsed().as_secs_f64(),
                active.load(Ordering::Relaxed),
                ctx.stats.total_errors()
            );
        }
    }
    eprintln!(
        "no new sessions; waiting for {} to finish",
        active.load(Ordering::Relaxed)
    );
    while sessions.join_next().await.is_some() {}
    let _ = stop_managers.send(true);
    while managers.join_next().await.is_some() {}
    let elapsed = started_at.elapsed();
    let _ = stop_procs.send(());
    let procs = sampler.await.unwrap_or_default();
    Ok(Report {
        stats: ctx.stats.clone(),
        procs,
        elapsed,
        sessions_started: started,
        sessions_completed: completed.load(Ordering::Relaxed),
        sessions_skipped: skipped,
        peak_active: peak,
    })
}

/// What a stream step ended with.
enum Step<T> {
    Done(T),
    Failed,
}

/// Reads the persona's reply up to its `done`; returns the time to the first chunk.
async fn read_reply(
    ctx: &Ctx,
    inbound: &mut Streaming<pb::ConverseResponse>,
    step: &'static str,
    start: Instant,
) -> Step<Option<Duration>> {
    let mut first = None;
    loop {
        let msg = match tokio::time::timeout(ctx.args.timeout(), inbound.message()).await {
            Err(_) => {
                ctx.stats.err(step, "ClientTimeout");
                return Step::Failed;
            }
            Ok(Err(s)) => {
                ctx.stats.err(step, &format!("{:?}", s.code()));
                return Step::Failed;
            }
            Ok(Ok(None)) => {
                ctx.stats.err(step, "StreamEndedEarly");
                return Step::Failed;
            }
            Ok(Ok(Some(m))) => m,
        };
        match msg.payload {
            Some(pb::converse_response::Payload::Chunk(_)) if first.is_none() => {
                first = Some(start.elapsed());
            }
            Some(pb::converse_response::Payload::Done(_)) => {
                ctx.stats.ok(step, start.elapsed());
                return Step::Done(first);
            }
            Some(pb::converse_response::Payload::Ended(_)) => {
                ctx.stats.err(step, "SessionEndedEarly");
                return Step::Failed;
            }
            _ => {}
        }
    }
}

/// One trainee's session; true when it ran to its end without an error.
async fn session(ctx: &Ctx, i: usize) -> bool {
    let token = &ctx.trainee_tokens[i];
    let mut call = CallServiceClient::new(ctx.channel());
    let timeout = Some(ctx.args.timeout());

    let t = Instant::now();
    let started = call
        .start_session(with_token(
            pb::StartSessionRequest {
                parent: ctx.plan.parent.clone(),
                scenario: ctx.plan.scenario.clone(),
                mode: pb::SessionMode::Text as i32,
                ..Default::default()
            },
            token,
            timeout,
        ))
        .await
        .map(|r| r.into_inner());
    let Some(started) = ctx.stats.record("StartSession", t, started) else {
        return false;
    };
    let Some(name) = started.session.map(|s| s.name) else {
        ctx.stats.err("StartSession", "NoSessionInReply");
        return false;
    };

    let (tx, rx) = mpsc::channel(4);
    let payload = |p| pb::ConverseRequest { payload: Some(p) };
    let t = Instant::now();
    if tx
        .send(payload(pb::converse_request::Payload::Start(
            pb::ConverseStart { session: name },
        )))
        .await
        .is_err()
    {
        return false;
    }
    // No deadline on the stream itself: it lives for the whole session.
    let opened = tokio::time::timeout(
        ctx.args.timeout(),
        call.converse(with_token(ReceiverStream::new(rx), token, None)),
    )
    .await
    .unwrap_or_else(|_| Err(Status::deadline_exceeded("client timeout")))
    .map(|r| r.into_inner());
    let Some(mut inbound) = ctx.stats.record("Converse (open)", t, opened) else {
        return false;
    };
    // started, then the persona's greeting.
    let Step::Done(first) = read_reply(ctx, &mut inbound, "Converse greeting (done)", t).await
    else {
        return false;
    };
    if let Some(first) = first {
        ctx.stats.ok("Converse greeting (first chunk)", first);
    }

    for turn in 0..ctx.args.turns {
        tokio::time::sleep(Ctx::jitter(Duration::from_millis(
            ctx.args.turn_interval_ms,
        )))
        .await;
        let line = LINES[(turn as usize).min(LINES.len() - 1)];
        let t = Instant::now();
        if tx
            .send(payload(pb::converse_request::Payload::Turn(
                pb::TraineeTurn {
                    text: line.to_owned(),
                    client_turn_id: format!("t{turn}"),
                },
            )))
            .await
            .is_err()
        {
            ctx.stats.err("Converse turn (done)", "StreamClosed");
            return false;
        }
        let Step::Done(first) = read_reply(ctx, &mut inbound, "Converse turn (done)", t).await
        else {
            return false;
        };
        match first {
            Some(first) => ctx.stats.ok("Converse turn (first chunk)", first),
            None => ctx.stats.err("Converse turn (first chunk)", "NoChunk"),
        }
    }

    let t = Instant::now();
    if tx
        .send(payload(pb::converse_request::Payload::End(
            pb::EndConversation {},
        )))
        .await
        .is_err()
    {
        ctx.stats.err("Converse end", "StreamClosed");
        return false;
    }
    loop {
        match tokio::time::timeout(ctx.args.timeout(), inbound.message()).await {
            Ok(Ok(Some(m))) => {
                if let Some(pb::converse_response::Payload::Ended(_)) = m.payload {
                    ctx.stats.ok("Converse end", t.elapsed());
                    return true;
                }
            }
            Ok(Ok(None)) => {
                ctx.stats.err("Converse end", "StreamEndedEarly");
                return false;
            }
            Ok(Err(s)) => {
                ctx.stats.err("Converse end", &format!("{:?}", s.code()));
                return false;
            }
            Err(_) => {
                ctx.stats.err("Converse end", "ClientTimeout");
                return false;
            }
        }
    }
}

/// A manager refreshing the dashboard until told to stop.
async fn manager(ctx: Arc<Ctx>, token: Token, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut analytics = AnalyticsServiceClient::new(ctx.channel());
    let mut call = CallServiceClient::new(ctx.channel());
    let timeout = Some(ctx.args.timeout());
    let parent = ctx.plan.parent.clone();
    loop {
        let wait = Ctx::jitter(Duration::from_millis(ctx.args.manager_interval_ms));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        let t = Instant::now();
        let r = analytics
            .get_organization_summary(with_token(
                an::GetOrganizationSummaryRequest {
                    name: parent.clone(),
                    ..Default::default()
                },
                &token,
                timeout,
            ))
            .await;
        ctx.stats.record("GetOrganizationSummary", t, r);
        let t = Instant::now();
        let r = analytics
            .get_leaderboard(with_token(
                an::GetLeaderboardRequest {
                    organization: parent.clone(),
                    ..Default::default()
                },
                &token,
                timeout,
            ))
            .await;
        ctx.stats.record("GetLeaderboard", t, r);
        let t = Instant::now();
        let r = call
            .list_sessions(with_token(
                pb::ListSessionsRequest {
                    parent: parent.clone(),
                    page_size: 20,
                    ..Default::default()
                },
                &token,
                timeout,
            ))
            .await;
        ctx.stats.record("ListSessions", t, r);
    }
}
