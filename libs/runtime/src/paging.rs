//! Page sizes and opaque page tokens, one scheme for every List RPC. A token carries the sort
//! key of the last row returned (keyset pagination: rows inserted meanwhile neither repeat nor
//! shift the next page) and a fingerprint of the query, so it cannot be replayed against other
//! filters.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// `page_size`: 0 means the default, larger than the maximum is capped, negative is refused.
pub fn page_size(requested: i32) -> ApiResult<u64> {
    match requested {
        n if n < 0 => Err(ApiError::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Sort key of the last row of the previous page.
    k: String,
    /// Fingerprint of the query the token belongs to.
    q: u64,
}

/// The query a token belongs to: its parent and every filter, in a fixed order.
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

/// The token of the page after the one ending at `last_key`.
pub fn encode(last_key: &str, query: u64) -> String {
    // Serializing a struct of a string and an integer cannot fail.
    let json = serde_json::to_vec(&Token {
        k: last_key.to_owned(),
        q: query,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The last key of the previous page; `None` for the first page. A malformed token, or one
/// made for another query, is INVALID_ARGUMENT on `page_token`.
pub fn decode(token: &str, query: u64) -> ApiResult<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let malformed = || ApiError::invalid("page_token", "malformed page token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| malformed())?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if t.q != query {
        return Err(ApiError::invalid(
            "page_token",
            "page token does not match this query; other fields must be unchanged",
        ));
    }
    Ok(Some(t.k))
}

/// One page of `rows` fetched with `limit + 1` rows: the page and the next token.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    query: u64,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, String::new());
    }
    rows.truncate(limit);
    let next = rows
        .last()
        .map(|r| encode(&key(r), query))
        .unwrap_or_default();
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7).ok(), Some(7));
        assert_eq!(page_size(5000).ok(), Some(MAX_PAGE_SIZE));
        assert!(
            matches!(page_size(-1), Err(ApiError::InvalidArgument(v)) if v[0].field == "page_size")
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_other_queries() {
        let q = fingerprint(&["organizations/a", "personas", ""]);
        let t = encode("persona-1", q);
        assert_eq!(decode(&t, q).ok().flatten().as_deref(), Some("persona-1"));
        assert!(decode(&t, q + 1).is_err());
        assert!(decode("!!", q).is_err());
        assert_eq!(decode("", q).ok(), Some(None));
        assert_ne!(fingerprint(&["a", "bc"]), fingerprint(&["ab", "c"]));
    }

    #[test]
    fn pages_split_on_limit() {
        let (page, next) = split_page(vec![1, 2, 3], 2, 9, |n| n.to_string());
        assert_eq!(page, vec![1, 2]);
        assert_eq!(decode(&next, 9).ok().flatten().as_deref(), Some("2"));
        let (page, next) = split_page(vec![1, 2], 2, 9, |n| n.to_string());
        assert_eq!((page.len(), next.as_str()), (2, ""));
    }
}
