//! Resource names, written once for every service: `organizations/{org}` and
//! `organizations/{org}/{collection}/{id}`. One id rule everywhere, so a name one service
//! produces always parses in another.

/// The one id rule: 1–63 characters of `[a-z0-9-]`, starting with a letter or digit (so the
/// UUIDs some services assign are ids too) and not ending with `-`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    matches!(bytes.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.len() <= 63
        && !id.ends_with('-')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A server-assigned id: `{prefix}-{uuidv7}`, time-ordered so lists read in creation order.
pub fn generate_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// `organizations/{org}`.
pub fn organization_name(org: &str) -> String {
    format!("organizations/{org}")
}

/// `organizations/{org}/{collection}/{id}`.
pub fn child_name(org: &str, collection: &str, id: &str) -> String {
    format!("organizations/{org}/{collection}/{id}")
}

/// The `{org}` of `organizations/{org}` (and nothing below it).
pub fn parse_organization(name: &str) -> Option<&str> {
    let org = name.strip_prefix("organizations/")?;
    is_valid_id(org).then_some(org)
}

/// `(org, id)` of `organizations/{org}/{collection}/{id}`.
pub fn parse_child<'a>(name: &'a str, collection: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix("organizations/")?;
    let (org, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix(collection)?.strip_prefix('/')?;
    (is_valid_id(org) && is_valid_id(id)).then_some((org, id))
}

/// `(parent, id)` of `{parent}/{collection}/{id}`, for a resource nested below another one
/// (a session's comments); the parent comes back as written, for its own parser.
pub fn parse_nested<'a>(name: &'a str, collection: &str) -> Option<(&'a str, &'a str)> {
    let (rest, id) = name.rsplit_once('/')?;
    let parent = rest.strip_suffix(collection)?.strip_suffix('/')?;
    is_valid_id(id).then_some((parent, id))
}

/// The `{org}` of `organizations/{org}` or of any valid name below it.
pub fn organization_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("organizations/")?;
    let org = rest.split('/').next()?;
    is_valid_id(org).then_some(org)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_names() {
        assert_eq!(
            parse_nested("organizations/a/sessions/s1/comments/c-1", "comments"),
            Some(("organizations/a/sessions/s1", "c-1"))
        );
        assert_eq!(
            parse_nested("organizations/a/sessions/s1", "comments"),
            None
        );
        assert_eq!(
            parse_nested("organizations/a/sessions/s1/notes/c-1", "comments"),
            None
        );
        assert_eq!(
            parse_nested("organizations/a/sessions/s1/comments/C!", "comments"),
            None
        );
    }

    #[test]
    fn the_id_rule() {
        for ok in [
            "a",
            "cold-call-2",
            "2abc",
            "0193f2a4-5b6c-7d8e-9f00-112233445566",
            "0193f2a45b6c7d8e9f00112233445566",
        ] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Abc", "a_b", "a.b", "a/b", &"a".repeat(64)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(is_valid_id(&generate_id("persona")));
    }

    #[test]
    fn names_parse_and_build() {
        assert_eq!(parse_organization("organizations/acme"), Some("acme"));
        assert_eq!(parse_organization("organizations/"), None);
        assert_eq!(parse_organization("organizations/acme/x"), None);
        assert_eq!(parse_organization("acme"), None);
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
        assert_eq!(parse_child("organizations//personas/bob", "personas"), None);
        assert_eq!(
            parse_child("organizations/acme/personasx/bob", "personas"),
            None
        );
        assert_eq!(
            organization_of("organizations/acme/sessions/s1"),
            Some("acme")
        );
        assert_eq!(organization_of("organizations/ACME/sessions/s1"), None);
        let name = child_name("acme", "sessions", "s1");
        assert_eq!(parse_child(&name, "sessions"), Some(("acme", "s1")));
        assert_eq!(parse_organization(&organization_name("acme")), Some("acme"));
    }
}
