//! Opaque page tokens. A token carries the sort key of the last row returned (keyset
//! pagination, so rows inserted meanwhile neither repeat nor shift the next page) and a
//! fingerprint of the query, so a token cannot be replayed against different filters.

use base64::Engine;
use serde::{Deserialize, Serialize};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// 0 (or negative) means the default; larger than the maximum is capped.
pub fn page_size(requested: i32) -> u64 {
    if requested <= 0 {
        DEFAULT_PAGE_SIZE
    } else {
        (requested as u64).min(MAX_PAGE_SIZE)
    }
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Sort key of the last row of the previous page.
    k: String,
    /// Fingerprint of the query the token belongs to.
    q: u64,
}

/// FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

pub fn encode(last_key: &str, query: u64) -> String {
    let json = serde_json::to_vec(&Token {
        k: last_key.to_owned(),
        q: query,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The last key of the previous page; `Ok(None)` for the first page.
pub fn decode(token: &str, query: u64) -> Result<Option<String>, &'static str> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "malformed page token")?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| "malformed page token")?;
    if t.q != query {
        return Err("page token does not match this query; other fields must be unchanged");
    }
    Ok(Some(t.k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let q = fingerprint(&["organizations/a", "personas", ""]);
        let t = encode("persona-1", q);
        assert_eq!(decode(&t, q).unwrap().as_deref(), Some("persona-1"));
        assert!(decode(&t, q + 1).is_err());
        assert!(decode("!!", q).is_err());
        assert_eq!(decode("", q).unwrap(), None);
        assert_eq!(page_size(0), 50);
        assert_eq!(page_size(5000), 1000);
    }
}
