//! The LLM rate limiter per credential (requests and tokens per minute), in front of every
//! provider call: in-process on the domain [`Limiter`], or shared by all replicas through one
//! Redis Lua script (the same two refilling buckets, as a hash) when the process runs
//! distributed.

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
            // Refill over 61 s rather than 60: a little slower than the provider, so clock
            // drift between us and it never turns into a 429.
            window: Duration::from_secs(61),
            ..LimiterConfig::per_minute(f(self.rpm), f(self.tpm))
        }
    }
}

/// A granted reservation (the tokens it booked), in-process or in Redis alike.
pub type Permit = Reservation;

/// Provider hints from `x-ratelimit-remaining-*` headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
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
        Box::pin(async move { Ok(r) })
    }

    fn correct<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        permit: &'a Permit,
        actual: u64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.with(key, budget, |l, now| l.correct(now, *permit, actual));
        Box::pin(async { Ok(()) })
    }

    fn observe<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        seen: Observed,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.with(key, budget, |l, now| {
            l.observe_headers(now, seen.remaining_requests, seen.remaining_tokens)
        });
        Box::pin(async { Ok(()) })
    }
}

/// The two buckets in Redis: a hash of both levels and when they were read (ms, Redis clock, so
/// replicas' clocks do not matter). One script call is atomic. Levels are stored with 17
/// significant digits, as Lua's `tostring` would round them to 14.
const RESERVE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local op = ARGV[4]
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local r = tonumber(s[1]) or rpm
local k = tonumber(s[2]) or tpm
local ts = tonumber(s[3]) or now
local dt = math.max(0, now - ts)
r = math.min(rpm, r + dt * rpm / window)
k = math.min(tpm, k + dt * tpm / window)
local result = {1, 0}
if op == 'reserve' then
  local est = tonumber(ARGV[5])
  local need = math.min(est, tpm)
  if r >= 1 and k >= need then
    r = r - 1
    k = k - est
  else
    local wr, wk = 0, 0
    if r < 1 then wr = (1 - r) * window / rpm end
    if k < need then wk = (need - k) * window / tpm end
    result = {0, math.max(1, math.ceil(math.max(wr, wk)))}
  end
elseif op == 'correct' then
  k = math.min(tpm, k + tonumber(ARGV[5]) - tonumber(ARGV[6]))
else
  -- observe: believe the provider when it has less left than we think
  local rem_req = tonumber(ARGV[5])
  local rem_tok = tonumber(ARGV[6])
  if rem_req >= 0 and rem_req < r then r = rem_req end
  if rem_tok >= 0 and rem_tok < k then k = rem_tok end
end
redis.call('HSET', KEYS[1], 'r', string.format('%.17g', r), 't', string.format('%.17g', k), 'ts', now)
redis.call('PEXPIRE', KEYS[1], window * 2)
return result
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

impl RateLimit for RedisRateLimit {
    fn try_reserve<'a>(
        &'a self,
        key: &'a str,
        budget: Budget,
        tokens: u64,
    ) -> BoxFuture<'a, anyhow::Result<Result<Permit, Duration>>> {
        Box::pin(async move {
            let tokens = tokens.min(UNLIMITED);
            let (granted, wait) = self
                .run(key, budget, &["reserve".into(), tokens.to_string()])
                .await?;
            if granted == 1 {
                Ok(Ok(Permit { tokens }))
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
            let actual = actual.min(UNLIMITED);
            self.run(
                key,
                budget,
                &[
                    "correct".into(),
                    permit.tokens.to_string(),
                    actual.to_string(),
                ],
            )
            .await?;
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
                ],
            )
            .await?;
            Ok(())
        })
    }
}
