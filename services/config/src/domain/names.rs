//! Resource names (`organizations/{org}/{collection}/{id}`) and ids.

/// Whether `id` is a valid client-chosen id: 1-63 chars of `[a-z0-9-]`, starting with a letter.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A server-assigned id: valid by [`is_valid_id`], time-ordered (UUIDv7) so lists read in
/// creation order.
pub fn generate_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Parses `organizations/{org}`.
pub fn parse_organization(name: &str) -> Option<&str> {
    let org = name.strip_prefix("organizations/")?;
    is_valid_id(org).then_some(org)
}

/// Parses `organizations/{org}/{collection}/{id}` into `(org, id)`.
pub fn parse_child<'a>(name: &'a str, collection: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix("organizations/")?;
    let (org, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix(collection)?.strip_prefix('/')?;
    (is_valid_id(org) && is_valid_id(id)).then_some((org, id))
}

pub fn organization_name(org: &str) -> String {
    format!("organizations/{org}")
}

pub fn child_name(org: &str, collection: &str, id: &str) -> String {
    format!("organizations/{org}/{collection}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("a"));
        assert!(is_valid_id("cold-call-2"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("2abc"));
        assert!(!is_valid_id("Abc"));
        assert!(!is_valid_id("a_b"));
        assert!(!is_valid_id(&"a".repeat(64)));
        assert!(is_valid_id(&generate_id("persona")));
    }

    #[test]
    fn names() {
        assert_eq!(parse_organization("organizations/acme"), Some("acme"));
        assert_eq!(parse_organization("organizations/"), None);
        assert_eq!(
            parse_child("organizations/acme/personas/bob", "personas"),
            Some(("acme", "bob"))
        );
        assert_eq!(
            parse_child("organizations/acme/rubrics/bob", "personas"),
            None
        );
        assert_eq!(
            parse_child("organizations/acme/personas/bob/x", "personas"),
            None
        );
    }
}
