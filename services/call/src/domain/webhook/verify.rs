//! Webhook authentication: VAPI's shared secret or HMAC, Retell's signature.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::SIGNATURE_TOLERANCE_MS;

type HmacSha256 = Hmac<Sha256>;

pub const VAPI_SECRET_HEADER: &str = "x-vapi-secret";
pub const VAPI_SIGNATURE_HEADER: &str = "x-signature";
pub const VAPI_TIMESTAMP_HEADER: &str = "x-timestamp";
pub const RETELL_SIGNATURE_HEADER: &str = "x-retell-signature";

/// How VAPI webhooks are authenticated (from the organisation's configuration).
#[derive(Clone, PartialEq, Eq)]
pub enum VapiAuth {
    /// `x-vapi-secret` must equal this secret.
    Secret(String),
    /// `x-signature` must be hex HMAC-SHA256 with this key over `{x-timestamp}.{body}`.
    Hmac(String),
}

// Secrets never reach logs.
impl fmt::Debug for VapiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VapiAuth::Secret(_) => f.write_str("VapiAuth::Secret(<redacted>)"),
            VapiAuth::Hmac(_) => f.write_str("VapiAuth::Hmac(<redacted>)"),
        }
    }
}

/// The VAPI headers that matter, as received (None when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct VapiHeaders<'a> {
    pub secret: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
}

/// Why a webhook was not authenticated. All of these map to 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No secret is configured: refuse rather than accept unauthenticated calls.
    NotConfigured,
    /// A required header is absent (its name).
    MissingHeader(&'static str),
    /// A header is present but not of the expected form (its name).
    MalformedHeader(&'static str),
    /// The secret or signature does not match.
    Mismatch,
    /// The signed timestamp is more than [`SIGNATURE_TOLERANCE_MS`] away from now.
    StaleTimestamp,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NotConfigured => f.write_str("webhook secret not configured"),
            VerifyError::MissingHeader(h) => write!(f, "missing header {h}"),
            VerifyError::MalformedHeader(h) => write!(f, "malformed header {h}"),
            VerifyError::Mismatch => f.write_str("webhook secret or signature does not match"),
            VerifyError::StaleTimestamp => f.write_str("webhook timestamp outside tolerance"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a VAPI webhook. `now_ms` is the current Unix time in milliseconds.
pub fn verify_vapi(
    auth: &VapiAuth,
    headers: &VapiHeaders<'_>,
    body: &[u8],
    now_ms: i64,
) -> Result<(), VerifyError> {
    match auth {
        VapiAuth::Secret(secret) => {
            if secret.is_empty() {
                return Err(VerifyError::NotConfigured);
            }
            let given = headers
                .secret
                .ok_or(VerifyError::MissingHeader(VAPI_SECRET_HEADER))?;
            if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::Mismatch)
            }
        }
        VapiAuth::Hmac(key) => {
            if key.is_empty() {
                return Err(VerifyError::NotConfigured);
            }
            let signature = headers
                .signature
                .ok_or(VerifyError::MissingHeader(VAPI_SIGNATURE_HEADER))?;
            let timestamp = headers
                .timestamp
                .ok_or(VerifyError::MissingHeader(VAPI_TIMESTAMP_HEADER))?
                .trim();
            let ts: i64 = timestamp
                .parse()
                .map_err(|_| VerifyError::MalformedHeader(VAPI_TIMESTAMP_HEADER))?;
            // The unit of x-timestamp is not pinned down; values this large are milliseconds,
            // smaller ones seconds (10^11 s is the year 5138, 10^11 ms is 1973).
            let ts_ms = if ts.abs() >= 100_000_000_000 {
                ts
            } else {
                ts.saturating_mul(1000)
            };
            check_fresh(ts_ms, now_ms)?;
            let sig = decode_hex(signature, VAPI_SIGNATURE_HEADER)?;
            let mut mac = new_mac(key.as_bytes());
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
        }
    }
}

/// Verifies a Retell webhook: `x-retell-signature: v=<unix ms>,d=<hex digest>` where the
/// digest is HMAC-SHA256 keyed with the Retell API key (the one with the webhook badge) over
/// the raw body followed by the timestamp digits (`{body}{v}`), as Retell's SDK `verify` does;
/// 5-minute tolerance.
pub fn verify_retell(
    api_key: &str,
    signature_header: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> Result<(), VerifyError> {
    if api_key.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    let header = signature_header.ok_or(VerifyError::MissingHeader(RETELL_SIGNATURE_HEADER))?;
    let malformed = VerifyError::MalformedHeader(RETELL_SIGNATURE_HEADER);
    let mut version = None;
    let mut digest = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("v", v)) => version = Some(v.trim()),
            Some(("d", d)) => digest = Some(d.trim()),
            _ => {}
        }
    }
    let (Some(ts), Some(digest)) = (version, digest) else {
        return Err(malformed);
    };
    let ts_ms: i64 = ts.parse().map_err(|_| malformed.clone())?;
    check_fresh(ts_ms, now_ms)?;
    let sig = decode_hex(digest, RETELL_SIGNATURE_HEADER)?;
    let mut mac = new_mac(api_key.as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
}

/// The `x-retell-signature` value Retell would send; for tests and local tooling.
pub fn sign_retell(api_key: &str, body: &[u8], timestamp_ms: i64) -> String {
    let ts = timestamp_ms.to_string();
    let mut mac = new_mac(api_key.as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    format!("v={ts},d={}", hex::encode(mac.finalize().into_bytes()))
}

/// The VAPI `x-signature` for `timestamp` and `body`; for tests and local tooling.
pub fn sign_vapi(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = new_mac(key.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails; the fallback keeps us panic-free.
    HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
}

fn check_fresh(ts_ms: i64, now_ms: i64) -> Result<(), VerifyError> {
    if now_ms.abs_diff(ts_ms) > SIGNATURE_TOLERANCE_MS.unsigned_abs() {
        Err(VerifyError::StaleTimestamp)
    } else {
        Ok(())
    }
}

fn decode_hex(s: &str, header: &'static str) -> Result<Vec<u8>, VerifyError> {
    let s = s.trim();
    let s = s.strip_prefix("sha256=").unwrap_or(s);
    hex::decode(s).map_err(|_| VerifyError::MalformedHeader(header))
}

/// Equality that takes the same time wherever the inputs differ, and does not reveal the
/// secret's length: both sides are hashed first, then compared without early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{WebhookError, retell_webhook};
    use super::*;

    fn secret_headers(secret: &str) -> VapiHeaders<'_> {
        VapiHeaders {
            secret: Some(secret),
            ..Default::default()
        }
    }

    #[test]
    fn vapi_secret_good_bad_missing_unconfigured() {
        let auth = VapiAuth::Secret(SECRET.into());
        let body = VAPI_STATUS.as_bytes();
        assert_eq!(
            verify_vapi(&auth, &secret_headers(SECRET), body, NOW_MS),
            Ok(())
        );
        assert_eq!(
            verify_vapi(&auth, &secret_headers("s3cret-webhooK"), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&auth, &secret_headers(""), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&auth, &VapiHeaders::default(), body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_SECRET_HEADER))
        );
        assert_eq!(
            verify_vapi(
                &VapiAuth::Secret(String::new()),
                &secret_headers(""),
                body,
                NOW_MS
            ),
            Err(VerifyError::NotConfigured)
        );
        assert!(!format!("{auth:?}").contains(SECRET));
    }

    #[test]
    fn vapi_hmac_good_bad_missing_stale() {
        let auth = VapiAuth::Hmac(SECRET.into());
        let body = VAPI_STATUS.as_bytes();
        let ts_s = (NOW_MS / 1000).to_string();
        let sig = sign_vapi(SECRET, &ts_s, body);
        let h = VapiHeaders {
            signature: Some(&sig),
            timestamp: Some(&ts_s),
            secret: None,
        };
        assert_eq!(verify_vapi(&auth, &h, body, NOW_MS), Ok(()));
        // Milliseconds work too, and so does upper-case hex.
        let ts_ms = NOW_MS.to_string();
        let sig_ms = sign_vapi(SECRET, &ts_ms, body).to_uppercase();
        let h_ms = VapiHeaders {
            signature: Some(&sig_ms),
            timestamp: Some(&ts_ms),
            secret: None,
        };
        assert_eq!(verify_vapi(&auth, &h_ms, body, NOW_MS), Ok(()));
        // Tampered body, wrong key.
        assert_eq!(
            verify_vapi(&auth, &h, b"{}", NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_vapi(&VapiAuth::Hmac("other".into()), &h, body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        // Missing or malformed headers.
        let no_sig = VapiHeaders {
            signature: None,
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &no_sig, body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_SIGNATURE_HEADER))
        );
        let no_ts = VapiHeaders {
            timestamp: None,
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &no_ts, body, NOW_MS),
            Err(VerifyError::MissingHeader(VAPI_TIMESTAMP_HEADER))
        );
        let bad_hex = VapiHeaders {
            signature: Some("zz"),
            ..h
        };
        assert_eq!(
            verify_vapi(&auth, &bad_hex, body, NOW_MS),
            Err(VerifyError::MalformedHeader(VAPI_SIGNATURE_HEADER))
        );
        // Stale: 5 minutes and one second away, either direction.
        assert_eq!(
            verify_vapi(&auth, &h, body, NOW_MS + 301_000),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify_vapi(&auth, &h, body, NOW_MS - 301_000),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(verify_vapi(&auth, &h, body, NOW_MS + 299_000), Ok(()));
    }

    #[test]
    fn retell_signature_good_bad_missing_stale() {
        let body = RETELL_ENDED.as_bytes();
        let sig = sign_retell(SECRET, body, NOW_MS);
        assert!(sig.starts_with(&format!("v={NOW_MS},d=")));
        assert_eq!(
            verify_retell(SECRET, Some(&sig), body, NOW_MS + 1000),
            Ok(())
        );
        assert_eq!(
            verify_retell("wrong", Some(&sig), body, NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_retell(SECRET, Some(&sig), b"{\"event\":\"x\"}", NOW_MS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_retell(SECRET, None, body, NOW_MS),
            Err(VerifyError::MissingHeader(RETELL_SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_retell(SECRET, Some("d=abcd"), body, NOW_MS),
            Err(VerifyError::MalformedHeader(RETELL_SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_retell(SECRET, Some(&sig), body, NOW_MS + 300_001),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify_retell("", Some(&sig), body, NOW_MS),
            Err(VerifyError::NotConfigured)
        );
        // The combined entry point refuses before parsing.
        assert!(matches!(
            retell_webhook(SECRET, Some("v=1,d=00"), body, NOW_MS),
            Err(WebhookError::Unauthenticated(VerifyError::StaleTimestamp))
        ));
    }

    /// Vectors computed independently with Python's hmac module pin the exact signed strings:
    /// Retell `{body}{timestamp}`, VAPI `{timestamp}.{body}`.
    #[test]
    fn known_vectors() {
        let body = br#"{"a":1}"#;
        assert_eq!(
            sign_retell("key", body, 1_700_000_000_000),
            "v=1700000000000,d=46f0d18373b429dbd5e12aa60fa869be1f92b0c6678e187ac782827e7126ca0c"
        );
        assert_eq!(
            sign_vapi("key", "1700000000", body),
            "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}
