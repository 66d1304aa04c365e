//! The LLM rate limiter per credential (requests and tokens per minute), in front of every
//! provider call: in-process on the domain [`Limiter`], or shared by all replicas through one
//! Redis Lua script (the same sliding-window log, as a sorted set scored by expiry) when the
//! process runs distributed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::domain::limiter::{Limiter, LimiterConfig, Reservation};

/// Budgets per minute; 0 means "no limit known".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub rpm: u64,
    pub tpm: u64,
}

/// Lua numbers are doubles: keep "unlimited" well inside 2^53.
const UNLIMITED: u64 = 1 << 50;

impl Budget {
    fn config(self) -> LimiterConfig {
        let f = |v: u64| if v == 0 { UNLIMITED } else { v };
        LimiterConfig {
            // We book a call before it reaches the provider, so our window would end slightly
            // before the provider's; a second of margin keeps the two from disagreeing (429).
            window: Duration::from_secs(61),
            ..LimiterConfig::per_minute(f(self.rpm), f(self.tpm))
        }
    }
}

/// A granted reservation.
#[derive(Clone, Debug)]
pub enum Permit {
    Local(Reservation),
    Redis { member: String, tokens: u64 },
}

/// Provider hints from `x-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
}

pub trait RateLimit: Send + Sync + 'static {
    /// Reserves one request and `tokens`, or says how long to wait.
    fn try_reserve<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        tokens: u64,
    ) -> BoxFuture<'a, anyhow::Result<Result<Permit, Duration>>>;

    /// Replaces the estimate with the reported usage.
    fn correct<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        permit: &'a Permit,
        actual: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    fn observe<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        seen: Observed,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Waits until the limiter grants the call (or shutdown). Returns the permit and the wait.
pub async fn acquire(
    limiter: &dyn RateLimit,
    key: &str,
    budget: Budget,
    tokens: u64,
    cancel: &CancellationToken,
) -> anyhow::Result<(Permit, Duration)> {
    let start = Instant::now();
    loop {
        match limiter.try_reserve(key, budget, tokens).await? {
            Ok(p) => {
                let waited = start.elapsed();
                if !waited.is_zero() {
                    metrics::histogram!("grading_limiter_wait_seconds")
                        .record(waited.as_secs_f64());
                }
                return Ok((p, waited));
            }
            Err(wait) => {
                metrics::counter!("grading_limiter_waits_total").increment(1);
                tokio::select! {
                    () = cancel.cancelled() => anyhow::bail!("shutting down"),
                    () = tokio::time::sleep(wait.min(Duration::from_secs(5))) => {}
                }
            }
        }
    }
}

/// In-process limiter (embedded mode): one domain [`Limiter`] per credential.
pub struct LocalRateLimit {
    origin: Instant,
    limiters: Mutex<HashMap<String, Limiter>>,
}

impl Default for LocalRateLimit {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            limiters: Mutex::new(HashMap::new()),
        }
    }
}

impl LocalRateLimit {
    fn with<R>(&self, key: &str, budget: Budget, f: impl FnOnce(&mut Limiter, Duration) -> R) -> R {
        let now = self.origin.elapsed();
        let cfg = budget.config();
        // A poisoned lock only means another thread panicked mid-update; the log is still usable.
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        let l = map
            .entry(key.to_owned())
            .or_insert_with(|| Limiter::new(cfg));
        if l.config() != cfg {
            // The credential's limits changed: start a fresh window with the new budget.
            *l = Limiter::new(cfg);
        }
        f(l, now)
    }
}

impl RateLimit for LocalRateLimit {
    fn try_reserve<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        tokens: u64,
    ) -> BoxFuture<'a, anyhow::Result<Result<Permit, Duration>>> {
        let r = self.with(key, budget, |l, now| l.reserve(now, tokens));
        Box::pin(async move { Ok(r.map(Permit::Local)) })
    }

    fn correct<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        permit: &'a Permit,
        actual: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        if let Permit::Local(r) = permit {
            self.with(key, budget, |l, now| l.correct(now, *r, actual));
        }
        Box::pin(async { Ok(()) })
    }

    fn observe<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        seen: Observed,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.with(key, budget, |l, now| {
            l.observe_headers(
                now,
                seen.remaining_requests,
                seen.remaining_tokens,
                seen.reset_requests,
                seen.reset_tokens,
            )
        });
        Box::pin(async { Ok(()) })
    }
}

/// The sliding-window log in Redis: members "id|requests|tokens" scored by expiry (ms, Redis
/// clock, so replicas' clocks do not matter). One script call is atomic.
const RESERVE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local op = ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local reqs, toks = 0, 0
local entries = {}
for i = 1, #all, 2 do
  local _, _, r, k = string.find(all[i], '|(%d+)|(%d+)$')
  r = tonumber(r) or 0
  k = tonumber(k) or 0
  reqs = reqs + r
  toks = toks + k
  entries[#entries + 1] = {tonumber(all[i + 1]), r, k}
end
if op == 'reserve' then
  local est = tonumber(ARGV[5])
  local id = ARGV[6]
  local req_excess = math.max(0, reqs + 1 - rpm)
  local tok_excess
  if est > tpm then tok_excess = toks else tok_excess = math.max(0, toks + est - tpm) end
  if req_excess == 0 and tok_excess == 0 then
    redis.call('ZADD', KEYS[1], now + window, id .. '|1|' .. est)
    redis.call('PEXPIRE', KEYS[1], window * 2)
    return {1, 0}
  end
  local function wait(excess, idx)
    if excess == 0 then return 0 end
    local freed = 0
    for _, e in ipairs(entries) do
      freed = freed + e[idx]
      if freed >= excess then return e[1] - now end
    end
    return window
  end
  return {0, math.max(wait(req_excess, 2), wait(tok_excess, 3), 1)}
elseif op == 'correct' then
  local old = ARGV[5]
  local new = ARGV[6]
  local score = redis.call('ZSCORE', KEYS[1], old)
  if score then
    redis.call('ZREM', KEYS[1], old)
    redis.call('ZADD', KEYS[1], score, new)
  end
  return {1, 0}
else
  -- observe: book what the provider says is gone beyond our own count, until its reset
  local rem_req = tonumber(ARGV[5])
  local rem_tok = tonumber(ARGV[6])
  local reset_req = math.min(tonumber(ARGV[7]), window)
  local reset_tok = math.min(tonumber(ARGV[8]), window)
  local id = ARGV[9]
  if rem_req >= 0 and rem_req < rpm - reqs then
    redis.call('ZADD', KEYS[1], now + reset_req, id .. 'r|' .. (rpm - reqs - rem_req) .. '|0')
  end
  if rem_tok >= 0 and rem_tok < tpm - toks then
    redis.call('ZADD', KEYS[1], now + reset_tok, id .. 't|0|' .. (tpm - toks - rem_tok))
  end
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return {1, 0}
end
"#;

/// Shared limiter of distributed mode.
pub struct RedisRateLimit {
    pool: deadpool_redis::Pool,
    script: redis::Script,
    prefix: String,
}

impl RedisRateLimit {
    pub fn new(pool: deadpool_redis::Pool) -> Self {
        Self::with_prefix(pool, "salestrainer:grading:limiter:")
    }

    pub fn with_prefix(pool: deadpool_redis::Pool, prefix: &str) -> Self {
        Self {
            pool,
            script: redis::Script::new(RESERVE_LUA),
            prefix: prefix.to_owned(),
        }
    }

    async fn run(&self, key: &str, budget: Budget, args: &[String]) -> anyhow::Result<(i64, i64)> {
        let cfg = budget.config();
        let mut conn = self.pool.get().await?;
        let mut inv = self.script.key(format!("{}{key}", self.prefix));
        inv.arg(u64::try_from(cfg.window.as_millis()).unwrap_or(60_000))
            .arg(cfg.requests_per_window)
            .arg(cfg.tokens_per_window);
        for a in args {
            inv.arg(a);
        }
        let (a, b): (i64, i64) = inv.invoke_async(&mut *conn).await?;
        Ok((a, b))
    }
}

fn ms_arg(d: Option<Duration>) -> String {
    d.map_or(60_000, |d| u64::try_from(d.as_millis()).unwrap_or(60_000))
        .to_string()
}

impl RateLimit for RedisRateLimit {
    fn try_reserve<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        tokens: u64,
    ) -> BoxFuture<'a, anyhow::Result<Result<Permit, Duration>>> {
        Box::pin(async move {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let tokens = tokens.min(UNLIMITED);
            let (granted, wait) = self
                .run(
                    key,
                    budget,
                    &["reserve".into(), tokens.to_string(), id.clone()],
                )
                .await?;
            if granted == 1 {
                Ok(Ok(Permit::Redis {
                    member: format!("{id}|1|{tokens}"),
                    tokens,
                }))
            } else {
                Ok(Err(Duration::from_millis(
                    u64::try_from(wait).unwrap_or(1).max(1),
                )))
            }
        })
    }

    fn correct<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        permit: &'a Permit,
        actual: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if let Permit::Redis { member, tokens } = permit {
                let base = member
                    .strip_suffix(&format!("|1|{tokens}"))
                    .unwrap_or(member.as_str());
                let new = format!("{base}|1|{}", actual.min(UNLIMITED));
                self.run(key, budget, &["correct".into(), member.clone(), new])
                    .await?;
            }
            Ok(())
        })
    }

    fn observe<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        seen: Observed,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if seen.remaining_requests.is_none() && seen.remaining_tokens.is_none() {
                return Ok(());
            }
            let n =
                |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v.min(UNLIMITED)).unwrap_or(-1));
            self.run(
                key,
                budget,
                &[
                    "observe".into(),
                    n(seen.remaining_requests).to_string(),
                    n(seen.remaining_tokens).to_string(),
                    ms_arg(seen.reset_requests),
                    ms_arg(seen.reset_tokens),
                    uuid::Uuid::new_v4().simple().to_string(),
                ],
            )
            .await?;
            Ok(())
        })
    }
}
