//! Domain logic of the config service: plain Rust, no I/O.

pub mod certifications;
pub mod crypto;
pub mod fields;
pub mod stored_values;
pub mod templates;
pub mod validate;

/// A fresh opaque etag; every write gets a new one.
pub fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `etag` (as sent by a client; empty = unconditional) allows a write over `stored`.
pub fn etag_matches(sent: &str, stored: &str) -> bool {
    sent.is_empty() || sent == stored
}

/// The paths an update touches: every updatable one for an empty mask or "*", else the
/// mask's paths, each of which must be updatable (the unknown ones are returned as `Err`).
pub fn mask_paths<'a>(
    mask: &'a [String],
    updatable: &'a [&'a str],
) -> Result<Vec<&'a str>, Vec<String>> {
    if mask.is_empty() || mask.iter().any(|p| p == "*") {
        return Ok(updatable.to_vec());
    }
    let unknown: Vec<String> = mask
        .iter()
        .filter(|p| !updatable.contains(&p.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(mask.iter().map(String::as_str).collect())
    } else {
        Err(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let up = ["display_name", "role"];
        assert_eq!(mask_paths(&[], &up).unwrap(), vec!["display_name", "role"]);
        assert_eq!(mask_paths(&["*".into()], &up).unwrap().len(), 2);
        assert_eq!(mask_paths(&["role".into()], &up).unwrap(), vec!["role"]);
        assert_eq!(mask_paths(&["name".into()], &up).unwrap_err(), vec!["name"]);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("", "a"));
        assert!(etag_matches("a", "a"));
        assert!(!etag_matches("b", "a"));
    }
}
