//! Retry policy for LLM calls: which failures to retry and how long to wait.
//!
//! Backoff is exponential with full jitter (`random(0, min(cap, base·2^(attempt-1)))`); the
//! caller passes the random value so tests are deterministic. A server hint (`retry-after-ms`,
//! `retry-after`, `x-ratelimit-reset-*`) is a floor: we never retry sooner than the provider
//! asked.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    Retry { after: Duration },
    Fatal { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

/// Provider error codes that no retry can fix.
const FATAL_CODES: &[&str] = &[
    "insufficient_quota",
    "billing_hard_limit_reached",
    "billing_not_active",
    "invalid_api_key",
    "account_deactivated",
    "access_terminated",
];

/// Why an attempt failed, for the cases that are not an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFailure {
    Timeout,
    /// Connection refused/reset, DNS…
    Transport,
    /// The answer failed validation (schema, range, quotes) or was a refusal.
    InvalidAnswer,
}

impl RetryPolicy {
    /// Classifies an HTTP error answer. `attempt` is the 1-based number of the attempt that
    /// just failed; `random` is any random u64 (the jitter source).
    pub fn classify(
        &self,
        attempt: u32,
        status: u16,
        body_error_code: Option<&str>,
        headers: &[(String, String)],
        random: u64,
    ) -> RetryDecision {
        if let Some(code) = body_error_code.filter(|c| FATAL_CODES.contains(c)) {
            return RetryDecision::Fatal {
                reason: format!("provider error {code} (HTTP {status}): retrying cannot help"),
            };
        }
        if status == 401 || status == 403 {
            return RetryDecision::Fatal {
                reason: format!("authentication failed (HTTP {status}): check the credential"),
            };
        }
        // OpenAI's own SDKs obey this header when present.
        let should_retry =
            header(headers, "x-should-retry").map(|v| v.eq_ignore_ascii_case("true"));
        let retryable = match should_retry {
            Some(explicit) => explicit,
            None => status == 408 || status == 409 || status == 429 || status >= 500,
        };
        if !retryable {
            let code = body_error_code.map_or(String::new(), |c| format!(" ({c})"));
            return RetryDecision::Fatal {
                reason: format!("request rejected with HTTP {status}{code}"),
            };
        }
        self.retry(
            attempt,
            server_hint(headers),
            random,
            &format!("HTTP {status}"),
        )
    }

    /// Classifies a failure without an HTTP answer.
    pub fn classify_local(
        &self,
        attempt: u32,
        failure: LocalFailure,
        random: u64,
    ) -> RetryDecision {
        let what = match failure {
            LocalFailure::Timeout => "timeout",
            LocalFailure::Transport => "transport error",
            LocalFailure::InvalidAnswer => "invalid answer",
        };
        self.retry(attempt, None, random, what)
    }

    fn retry(
        &self,
        attempt: u32,
        hint: Option<Duration>,
        random: u64,
        what: &str,
    ) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::Fatal {
                reason: format!("gave up after {attempt} attempt(s); last failure: {what}"),
            };
        }
        let backoff = self.backoff(attempt, random);
        RetryDecision::Retry {
            after: hint.map_or(backoff, |h| h.max(backoff)),
        }
    }

    /// Full jitter: uniform in [0, min(cap, base·2^(attempt-1))].
    pub fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let ceiling = self.base.saturating_mul(1u32 << exp.min(31)).min(self.cap);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(random % ms.saturating_add(1))
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// How long the provider asked us to wait, if it said.
pub fn server_hint(headers: &[(String, String)]) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    // Seconds only: an HTTP date needs a clock, and providers send seconds.
    if let Some(s) = header(headers, "retry-after").and_then(|v| v.parse::<f64>().ok())
        && s.is_finite()
        && s >= 0.0
    {
        return Some(Duration::from_secs_f64(s));
    }
    // The reset of whichever budget is exhausted; if we cannot tell, the longer one.
    let remaining = |k: &str| header(headers, k).and_then(|v| v.parse::<u64>().ok());
    let reset = |k: &str| header(headers, k).and_then(parse_go_duration);
    let req = reset("x-ratelimit-reset-requests");
    let tok = reset("x-ratelimit-reset-tokens");
    let (req_out, tok_out) = (
        remaining("x-ratelimit-remaining-requests") == Some(0),
        remaining("x-ratelimit-remaining-tokens") == Some(0),
    );
    match (req_out, tok_out) {
        (true, false) => req.or(tok),
        (false, true) => tok.or(req),
        _ => match (req, tok) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    }
}

/// Parses a Go-style duration as OpenAI sends in `x-ratelimit-reset-*`: "1s", "6m0s", "20ms",
/// "1h2m3.5s", "0.5s". A bare number is seconds.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_go_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn rate_limited_with_retry_after_waits_at_least_that_long() {
        let p = RetryPolicy::default();
        let hdr = h(&[("Retry-After", "2")]);
        assert_eq!(
            p.classify(1, 429, Some("rate_limit_exceeded"), &hdr, 0),
            RetryDecision::Retry {
                after: Duration::from_secs(2)
            }
        );
        let ms = h(&[("retry-after-ms", "1500"), ("retry-after", "9")]);
        assert_eq!(
            p.classify(1, 429, None, &ms, 0),
            RetryDecision::Retry {
                after: Duration::from_millis(1500)
            }
        );
        // Tokens exhausted: their reset wins.
        let reset = h(&[
            ("x-ratelimit-remaining-requests", "10"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "20ms"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(server_hint(&reset), Some(Duration::from_secs(360)));
        let unknown = h(&[
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ]);
        assert_eq!(server_hint(&unknown), Some(Duration::from_secs(1)));
    }

    #[test]
    fn server_errors_back_off_exponentially_with_full_jitter() {
        let p = RetryPolicy::default();
        let max = |attempt| match p.classify(attempt, 500, None, &[], u64::MAX - 1) {
            RetryDecision::Retry { after } => after,
            RetryDecision::Fatal { .. } => Duration::ZERO,
        };
        // Ceilings 500 ms, 1 s, 2 s, 4 s; u64::MAX - 1 lands within them.
        for (attempt, ceiling) in [(1, 500), (2, 1000), (3, 2000), (4, 4000)] {
            assert!(max(attempt) <= Duration::from_millis(ceiling));
        }
        assert_eq!(
            p.classify(1, 503, None, &[], 0),
            RetryDecision::Retry {
                after: Duration::ZERO
            }
        );
        assert_eq!(p.backoff(3, 1234), Duration::from_millis(1234));
        assert_eq!(p.backoff(40, 7), Duration::from_millis(7));
        assert!(p.backoff(40, u64::MAX) <= p.cap);
        // Attempt 5 of 5: dead.
        assert!(matches!(
            p.classify(5, 500, None, &[], 0),
            RetryDecision::Fatal { .. }
        ));
    }

    #[test]
    fn never_retries_quota_or_auth() {
        let p = RetryPolicy::default();
        let hdr = h(&[("retry-after", "1")]);
        let RetryDecision::Fatal { reason } =
            p.classify(1, 429, Some("insufficient_quota"), &hdr, 0)
        else {
            unreachable!("insufficient_quota must be fatal")
        };
        assert!(reason.contains("insufficient_quota"));
        for status in [401, 403] {
            let RetryDecision::Fatal { reason } = p.classify(1, status, None, &[], 0) else {
                unreachable!("{status} must be fatal")
            };
            assert!(reason.contains("authentication"));
        }
        assert!(matches!(
            p.classify(1, 400, Some("context_length_exceeded"), &[], 0),
            RetryDecision::Fatal { .. }
        ));
        assert!(matches!(
            p.classify(1, 408, None, &[], 0),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            p.classify(1, 500, None, &h(&[("x-should-retry", "false")]), 0),
            RetryDecision::Fatal { .. }
        ));
    }

    #[test]
    fn timeouts_and_invalid_answers_are_retried() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            p.classify_local(1, LocalFailure::Timeout, 3),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            p.classify_local(2, LocalFailure::InvalidAnswer, 3),
            RetryDecision::Retry { .. }
        ));
        assert!(matches!(
            p.classify_local(3, LocalFailure::Transport, 3),
            RetryDecision::Fatal { .. }
        ));
    }
}
