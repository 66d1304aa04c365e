//! Scrubbing provider text before it is stored or shown: an error message a provider (or an
//! HTTP client) wrote may quote the key it was sent — whole, masked (`sk-ab****wxyz`) or as a
//! query value — and that text ends up in rows, events and API answers. [`scrub`] removes
//! every key or key fragment it can recognise:
//!
//! - each secret the caller knows (the stored key), and any word sharing
//!   [`FRAGMENT`] or more consecutive characters with one;
//! - words that look like keys: `sk-…`/`sk_…`/`rk_…`/`pk_…`/`key_…`/`ghp_…`, masked words
//!   (`**` next to letters or digits), long random-looking words;
//! - the value after `Bearer`/`Basic`/`Token`, after an `Authorization:`/`x-api-key:`/
//!   `api-key:` header name, and of `key=`, `api_key=`, `token=`, `secret=`, `password=`, `sig=`
//!   … parameters (query strings, JSON-ish `"api_key": "…"` too).
//!
//! What is removed becomes [`REDACTED`]. The result is also bounded to [`MAX_CHARS`].

/// What a removed secret becomes.
pub const REDACTED: &str = "[redacted]";
/// Longest scrubbed text kept, in characters (longer text is cut and ends with `…`).
pub const MAX_CHARS: usize = 1000;
/// A word sharing this many consecutive characters with a known secret is a fragment of it.
pub const FRAGMENT: usize = 6;
/// Words at least this long mixing letters and digits look like keys.
const LONG_WORD: usize = 32;

/// `text` without any key or key fragment; `secrets` are the keys the caller knows (empty
/// strings and very short secrets are ignored for fragment matching but still removed whole).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    // 1. Known secrets, whole, longest first (so one inside another leaves no tail).
    let mut known: Vec<&str> = secrets
        .iter()
        .copied()
        .filter(|s| !s.trim().is_empty())
        .collect();
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in &known {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    // 2. Values after credential markers.
    out = redact_after_markers(&out);
    // 3. Word by word: key-like words and fragments of known secrets.
    out = redact_words(&out, &known);
    bound(out)
}

/// [`scrub`] without known secrets: only what looks like a key.
pub fn scrub_patterns(text: &str) -> String {
    scrub(text, &[])
}

fn bound(s: String) -> String {
    if s.chars().count() <= MAX_CHARS {
        return s;
    }
    let mut cut: String = s.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A character that can be part of a secret value.
fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=' | '*' | '%')
}

/// A character of a word for the word pass (no `/`, `.`, `=`: paths and sentences split).
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '+')
}

/// Scheme words whose following word is a credential.
const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest"];
/// Header names whose value is a credential.
const HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "xi-api-key",
    "x-vapi-secret",
    "cookie",
    "set-cookie",
];
/// Parameter names (suffixes, case-insensitive) whose value is a credential.
const PARAM_SUFFIXES: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "auth",
    "credential",
    "credentials",
];

fn redact_after_markers(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        // Only look at word starts.
        let at_word_start = i == 0 || !is_ident_byte(bytes[i - 1]);
        if at_word_start && is_ident_byte(bytes[i]) {
            let end = i + lower[i..].bytes().take_while(|b| is_ident_byte(*b)).count();
            let word = &lower[i..end];
            // `Bearer xyz`
            if SCHEMES.contains(&word) {
                let (gap, value) = span_after(text, end, |c| c == ' ' || c == '\t');
                if value > 0 && !is_plain_word(&text[end + gap..end + gap + value]) {
                    out.push_str(&text[i..end + gap]);
                    out.push_str(REDACTED);
                    i = end + gap + value;
                    continue;
                }
            }
            // `Authorization: Bearer xyz`, `x-api-key: xyz`: the rest of the header line.
            if HEADERS.contains(&word) {
                let (gap, _) = span_after(text, end, |c| matches!(c, ' ' | '\t' | '"' | '\''));
                if text[end + gap..].starts_with(':') || text[end + gap..].starts_with('=') {
                    let sep = end + gap + 1;
                    let line_end = text[sep..]
                        .find(['\n', '\r', '"', '\'', ',', ';', '}'])
                        .map_or(text.len(), |p| sep + p);
                    if text[sep..line_end].trim().is_empty() {
                        out.push_str(&text[i..line_end]);
                        i = line_end;
                        continue;
                    }
                    out.push_str(&text[i..sep]);
                    out.push(' ');
                    out.push_str(REDACTED);
                    i = line_end;
                    continue;
                }
            }
            // `api_key=xyz`, `"token": "xyz"`
            if PARAM_SUFFIXES.iter().any(|s| word.ends_with(s)) {
                let (gap, _) = span_after(text, end, |c| matches!(c, ' ' | '"' | '\''));
                let rest = &text[end + gap..];
                if rest.starts_with('=') || rest.starts_with(':') {
                    let sep = end + gap + 1;
                    let (q, value_len) =
                        span_after(text, sep, |c| matches!(c, ' ' | '"' | '\'' | '\t'));
                    let value_start = sep + q;
                    // `key=…` always; `key: …` only when quoted or not an ordinary word
                    // ("the key: Incorrect …" is prose).
                    let quoted = text[sep..value_start].contains(['"', '\'']);
                    let is_assignment = rest.starts_with('=');
                    let value = &text[value_start..value_start + value_len];
                    if value_len > 0 && (is_assignment || quoted || !is_plain_word(value)) {
                        out.push_str(&text[i..value_start]);
                        out.push_str(REDACTED);
                        i = value_start + value_len;
                        continue;
                    }
                }
            }
            out.push_str(&text[i..end]);
            i = end;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// From byte `at`: the length of the run of `skip` characters, then of value characters.
fn span_after(text: &str, at: usize, skip: impl Fn(char) -> bool) -> (usize, usize) {
    let gap: usize = text[at..]
        .chars()
        .take_while(|c| skip(*c))
        .map(char::len_utf8)
        .sum();
    let value: usize = text[at + gap..]
        .chars()
        .take_while(|c| is_value_char(*c))
        .map(char::len_utf8)
        .sum();
    (gap, value)
}

/// A short, letters-only word (e.g. "token expired"), not a credential.
fn is_plain_word(s: &str) -> bool {
    s == REDACTED || (s.len() < 12 && s.chars().all(|c| c.is_ascii_alphabetic()))
}

const KEY_PREFIXES: &[&str] = &[
    "sk-", "sk_", "rk_", "pk_", "rk-", "pk-", "key_", "key-", "ghp_", "gho_", "xoxb-", "xoxp-",
    "AIza",
];

fn looks_like_key(word: &str) -> bool {
    if word == REDACTED {
        return false;
    }
    let letters = word.chars().any(|c| c.is_ascii_alphabetic());
    let digits = word.chars().any(|c| c.is_ascii_digit());
    // A prefix alone ("sk-") or a prefix word of a sentence is not a key: require a body.
    if KEY_PREFIXES
        .iter()
        .any(|p| word.starts_with(p) && word.len() >= p.len() + 4)
    {
        return true;
    }
    // Masked by the provider: `sk-ab****wxyz`, `****1234`.
    if word.contains("**") && word.chars().any(|c| c.is_ascii_alphanumeric()) {
        return true;
    }
    word.len() >= LONG_WORD && letters && digits
}

fn shares_fragment(word: &str, secrets: &[&str]) -> bool {
    if word.len() < FRAGMENT {
        return false;
    }
    secrets.iter().any(|s| {
        s.len() >= FRAGMENT
            && word
                .as_bytes()
                .windows(FRAGMENT)
                .any(|w| std::str::from_utf8(w).is_ok_and(|w| s.contains(w)))
    })
}

fn redact_words(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if looks_like_key(word) || shares_fragment(word, secrets) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let mut rest = text;
    while !rest.is_empty() {
        // Never split the marker itself.
        if rest.starts_with(REDACTED) {
            flush(&mut word, &mut out);
            out.push_str(REDACTED);
            rest = &rest[REDACTED.len()..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if is_word_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Built from parts so the source holds nothing that looks like a real key.
    const KEY: &str = concat!("sk-", "proj-Abc123DEF456ghi789JKL");

    #[test]
    fn removes_the_known_key_whole_and_its_fragments() {
        let s = scrub(&format!("Incorrect API key provided: {KEY}."), &[KEY]);
        assert_eq!(s, "Incorrect API key provided: [redacted].");
        // A fragment (the provider masks the middle) is gone too.
        let s = scrub("Incorrect API key provided: sk-proj-****hi789JKL", &[KEY]);
        assert!(!s.contains("789JKL") && !s.contains("sk-proj"), "{s}");
        // A key with no recognisable shape is found through the known secret.
        let plain = "d3b07384-d9a0-4c9f-8e2a-6f1b2c3d4e5f";
        let s = scrub(&format!("voice provider refused {plain}"), &[plain]);
        assert_eq!(s, "voice provider refused [redacted]");
        let s = scrub("key ends with 6f1b2c3d4e5f", &[plain]);
        assert!(!s.contains("6f1b2c3d4e5f"), "{s}");
    }

    #[test]
    fn removes_key_shaped_words() {
        for text in [
            concat!("bad key sk-", "live-0123456789abcdef"),
            "bad key sk_test_0123456789abcdef",
            "masked ****************wxyz",
            "token eyJhbGciOiJIUzI1NiJ9eyJzdWIiOiIxMjM0NTY3ODkwIn0abc123",
        ] {
            let s = scrub_patterns(text);
            assert!(s.contains(REDACTED), "{text} -> {s}");
            assert!(
                !s.contains("0123456789abcdef") && !s.contains("wxyz"),
                "{s}"
            );
        }
    }

    #[test]
    fn removes_bearer_header_and_query_values() {
        let s = scrub_patterns("request with Authorization: Bearer abc.def-ghi failed");
        assert!(!s.contains("abc.def-ghi"), "{s}");
        let s = scrub_patterns("sent Bearer Zm9vYmFyMTIz to upstream");
        assert_eq!(s, "sent Bearer [redacted] to upstream");
        let s = scrub_patterns("GET https://x.test/v1/models?key=AbC123xyz&limit=1: 403");
        assert_eq!(
            s,
            "GET https://x.test/v1/models?key=[redacted]&limit=1: 403"
        );
        let s = scrub_patterns("GET /v1?api_key=q1w2e3 and ?access_token=zzz9");
        assert!(!s.contains("q1w2e3") && !s.contains("zzz9"), "{s}");
        let s = scrub_patterns(r#"{"error": {"api_key": "abc123secret", "code": 401}}"#);
        assert!(!s.contains("abc123secret"), "{s}");
        let s = scrub_patterns("the provider rejected the key: Incorrect API key");
        assert_eq!(s, "the provider rejected the key: Incorrect API key");
        let s = scrub_patterns("password: hunter2 token: 'abc'");
        assert!(!s.contains("hunter2") && !s.contains("abc"), "{s}");
        let s = scrub_patterns("x-api-key: hunter2hunter2\nnext line");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("next line"), "{s}");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "the provider answered HTTP 429",
            "rate_limit_exceeded: Rate limit reached for gpt-4o-mini, please retry",
            "token expired",
            "no answer within 10 s",
            "organizations/acme/sessions/s1 could not be graded (max attempts)",
            "",
        ] {
            assert_eq!(scrub_patterns(text), text);
        }
    }

    #[test]
    fn is_bounded_and_unicode_safe() {
        let long = "é".repeat(5000);
        let s = scrub_patterns(&long);
        assert_eq!(s.chars().count(), MAX_CHARS);
        assert!(s.ends_with('…'));
        let s = scrub("ключ sk-ключ-ключ-ключ Bearer ключ", &["ключ-ключ"]);
        assert!(!s.contains("ключ-ключ"), "{s}");
    }

    #[test]
    fn scrubbing_twice_changes_nothing_more() {
        let once = scrub(&format!("Bearer {KEY} key={KEY} {KEY}"), &[KEY]);
        assert_eq!(scrub(&once, &[KEY]), once);
        assert!(!once.contains("Abc123"), "{once}");
    }
}
