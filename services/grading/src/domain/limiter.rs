//! Rate limiter math for requests-per-minute and tokens-per-minute, as a sliding-window log.
//!
//! Pure: time is passed in (`now` since any fixed origin, monotonic), so it is testable and the
//! same logic can run in-process or as a Redis Lua script (a sorted set of entries). A sliding
//! window never lets any 60 s span exceed the limit, which also keeps a provider's continuously
//! refilling token bucket of the same size from going negative.

use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    pub requests_per_window: u64,
    pub tokens_per_window: u64,
    pub window: Duration,
}

impl LimiterConfig {
    pub fn per_minute(rpm: u64, tpm: u64) -> LimiterConfig {
        LimiterConfig {
            requests_per_window: rpm,
            tokens_per_window: tpm,
            window: Duration::from_secs(60),
        }
    }
}

/// A granted reservation; pass it back to [`Limiter::correct`] with the real usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub at: Duration,
    pub tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// When the entry leaves the window (kept rather than its start so provider resets
    /// shorter than the window can be booked).
    expires: Duration,
    requests: u64,
    tokens: u64,
}

#[derive(Debug, Clone)]
pub struct Limiter {
    cfg: LimiterConfig,
    /// Sorted by `expires`.
    entries: VecDeque<Entry>,
}

impl Limiter {
    pub fn new(cfg: LimiterConfig) -> Limiter {
        Limiter {
            cfg,
            entries: VecDeque::new(),
        }
    }

    pub fn config(&self) -> LimiterConfig {
        self.cfg
    }

    fn prune(&mut self, now: Duration) {
        while self.entries.front().is_some_and(|e| e.expires <= now) {
            self.entries.pop_front();
        }
    }

    /// (requests, tokens) counted in the window ending at `now`.
    pub fn used(&mut self, now: Duration) -> (u64, u64) {
        self.prune(now);
        self.entries.iter().fold((0, 0), |(r, t), e| {
            (r.saturating_add(e.requests), t.saturating_add(e.tokens))
        })
    }

    /// Reserves one request and `estimated_tokens` (prompt estimate + max completion tokens),
    /// or says how long to wait before trying again.
    ///
    /// A request larger than the whole token budget is let through alone, when the window is
    /// empty, rather than blocking forever; the provider decides what to do with it.
    pub fn reserve(
        &mut self,
        now: Duration,
        estimated_tokens: u64,
    ) -> Result<Reservation, Duration> {
        let (reqs, toks) = self.used(now);
        let cfg = self.cfg;
        let req_excess = (reqs + 1).saturating_sub(cfg.requests_per_window);
        let tok_excess = if estimated_tokens > cfg.tokens_per_window {
            // Oversized: wait for the window to be empty of tokens.
            toks
        } else {
            (toks.saturating_add(estimated_tokens)).saturating_sub(cfg.tokens_per_window)
        };
        if req_excess == 0 && tok_excess == 0 {
            let r = Reservation {
                at: now,
                tokens: estimated_tokens,
            };
            self.insert(Entry {
                expires: now + cfg.window,
                requests: 1,
                tokens: estimated_tokens,
            });
            return Ok(r);
        }
        let wait_req = self.wait_until_freed(now, req_excess, |e| e.requests);
        let wait_tok = self.wait_until_freed(now, tok_excess, |e| e.tokens);
        // At least 1 ms so a caller looping on the answer always advances.
        Err(wait_req.max(wait_tok).max(Duration::from_millis(1)))
    }

    /// Time until entries carrying at least `excess` units have left the window.
    fn wait_until_freed(
        &self,
        now: Duration,
        excess: u64,
        units: impl Fn(&Entry) -> u64,
    ) -> Duration {
        if excess == 0 {
            return Duration::ZERO;
        }
        let mut freed = 0u64;
        for e in &self.entries {
            freed = freed.saturating_add(units(e));
            if freed >= excess {
                return e.expires.saturating_sub(now);
            }
        }
        self.cfg.window
    }

    fn insert(&mut self, e: Entry) {
        let pos = self.entries.partition_point(|x| x.expires <= e.expires);
        self.entries.insert(pos, e);
    }

    /// Replaces a reservation's estimate with the usage the response reported. A reservation
    /// that has already left the window needs no correction.
    pub fn correct(&mut self, now: Duration, reserved: Reservation, actual_tokens: u64) {
        self.prune(now);
        if let Some(e) = self.entries.iter_mut().find(|e| {
            e.expires == reserved.at + self.cfg.window
                && e.requests == 1
                && e.tokens == reserved.tokens
        }) {
            e.tokens = actual_tokens;
        }
    }

    /// Adjusts to the provider's `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` headers.
    /// When the provider has less left than we think (other clients on the same key, token
    /// estimates off), the difference is booked as usage until the provider's reset. More left
    /// than we think is ignored: being conservative costs a little throughput, not a 429.
    pub fn observe_headers(
        &mut self,
        now: Duration,
        remaining_requests: Option<u64>,
        remaining_tokens: Option<u64>,
        reset_requests: Option<Duration>,
        reset_tokens: Option<Duration>,
    ) {
        let (reqs, toks) = self.used(now);
        let cfg = self.cfg;
        let expires = |reset: Option<Duration>| now + reset.unwrap_or(cfg.window).min(cfg.window);
        if let Some(r) = remaining_requests {
            let ours = cfg.requests_per_window.saturating_sub(reqs);
            if r < ours {
                self.insert(Entry {
                    expires: expires(reset_requests),
                    requests: ours - r,
                    tokens: 0,
                });
            }
        }
        if let Some(r) = remaining_tokens {
            let ours = cfg.tokens_per_window.saturating_sub(toks);
            if r < ours {
                self.insert(Entry {
                    expires: expires(reset_tokens),
                    requests: 0,
                    tokens: ours - r,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Steady demand for 3 minutes in 100 ms ticks; each call's usage is reported 1 s later.
    /// Returns (time, actual tokens) of every granted call.
    fn simulate(cfg: LimiterConfig, estimate: u64, actual: u64) -> Vec<(Duration, u64)> {
        let mut l = Limiter::new(cfg);
        let mut pending: VecDeque<(Duration, Reservation)> = VecDeque::new();
        let mut granted = Vec::new();
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(180) {
            while pending.front().is_some_and(|(due, _)| *due <= t) {
                if let Some((_, r)) = pending.pop_front() {
                    l.correct(t, r, actual);
                }
            }
            loop {
                match l.reserve(t, estimate) {
                    Ok(r) => {
                        granted.push((t, actual));
                        pending.push_back((t + Duration::from_secs(1), r));
                    }
                    Err(wait) => {
                        assert!(wait > Duration::ZERO && wait <= cfg.window);
                        break;
                    }
                }
            }
            t += MS(100);
        }
        granted
    }

    fn assert_within_limits(cfg: LimiterConfig, granted: &[(Duration, u64)]) {
        for &(t0, _) in granted {
            let in_window = granted
                .iter()
                .filter(|(t, _)| *t <= t0 && *t + cfg.window > t0);
            let (reqs, toks) = in_window.fold((0, 0), |(r, k), (_, a)| (r + 1, k + a));
            assert!(
                reqs <= cfg.requests_per_window,
                "{reqs} requests in the window ending {t0:?}"
            );
            assert!(
                toks <= cfg.tokens_per_window,
                "{toks} tokens in the window ending {t0:?}"
            );
        }
    }

    #[test]
    fn stays_under_tpm_and_uses_the_budget() {
        let cfg = LimiterConfig::per_minute(60, 10_000);
        let granted = simulate(cfg, 500, 450);
        assert_within_limits(cfg, &granted);
        let used: u64 = granted.iter().map(|(_, a)| a).sum();
        let share = used as f64 / 30_000.0;
        assert!(share >= 0.95, "used {share:.3} of the budget");
    }

    #[test]
    fn stays_under_rpm() {
        let cfg = LimiterConfig::per_minute(30, 1_000_000);
        let granted = simulate(cfg, 100, 100);
        assert_within_limits(cfg, &granted);
        assert_eq!(granted.len(), 90);
    }

    #[test]
    fn waits_for_the_oldest_entries_to_expire() {
        let mut l = Limiter::new(LimiterConfig::per_minute(100, 1_000));
        assert!(l.reserve(MS(0), 600).is_ok());
        assert!(l.reserve(MS(10_000), 300).is_ok());
        // 900 used; 300 more needs the first 600 gone: at 60 s.
        assert_eq!(l.reserve(MS(20_000), 300), Err(MS(40_000)));
        assert!(l.reserve(MS(60_000), 300).is_ok());
    }

    #[test]
    fn corrections_free_or_book_tokens() {
        let mut l = Limiter::new(LimiterConfig::per_minute(100, 1_000));
        let r = l.reserve(MS(0), 800);
        assert!(r.is_ok());
        assert!(l.reserve(MS(1), 300).is_err());
        if let Ok(r) = r {
            l.correct(MS(2), r, 500);
        }
        assert_eq!(l.used(MS(2)), (1, 500));
        assert!(l.reserve(MS(3), 300).is_ok());
    }

    #[test]
    fn adjusts_to_provider_headers() {
        let mut l = Limiter::new(LimiterConfig::per_minute(100, 10_000));
        assert!(l.reserve(MS(0), 1_000).is_ok());
        // The provider says only 2,000 tokens are left (another client shares the key), with a
        // full reset in 6 s.
        l.observe_headers(
            MS(100),
            Some(99),
            Some(2_000),
            Some(MS(600)),
            Some(MS(6_000)),
        );
        assert_eq!(l.used(MS(100)), (1, 8_000));
        assert_eq!(l.reserve(MS(200), 3_000), Err(MS(5_900)));
        assert!(l.reserve(MS(6_100), 3_000).is_ok());
        // More left than we think changes nothing.
        let before = l.used(MS(6_200));
        l.observe_headers(MS(6_200), Some(100), Some(10_000), None, None);
        assert_eq!(l.used(MS(6_200)), before);
        // Requests too.
        l.observe_headers(MS(6_300), Some(0), None, Some(MS(1_000)), None);
        assert!(l.reserve(MS(6_400), 1).is_err());
        assert!(l.reserve(MS(7_300), 1).is_ok());
    }

    #[test]
    fn oversized_request_goes_alone() {
        let mut l = Limiter::new(LimiterConfig::per_minute(100, 1_000));
        assert!(l.reserve(MS(0), 10).is_ok());
        assert_eq!(l.reserve(MS(1), 5_000), Err(MS(59_999)));
        assert!(l.reserve(MS(60_000), 5_000).is_ok());
    }
}
