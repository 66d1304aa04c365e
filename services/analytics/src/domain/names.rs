//! Resource names this service reads: organizations, members, scenarios, assignments and
//! sessions, always under one organization.

/// The `{organization}` of `organizations/{organization}`.
pub fn org_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix("organizations/")?;
    valid_id(id).then_some(id)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits `organizations/{org}/{collection}/{id}` into (org, id).
pub fn child<'a>(name: &'a str, collection: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix("organizations/")?;
    let (org, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix(collection)?.strip_prefix('/')?;
    (valid_id(org) && valid_id(id)).then_some((org, id))
}

pub fn member_name(org: &str, member: &str) -> String {
    format!("organizations/{org}/members/{member}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(org_id("organizations/acme"), Some("acme"));
        assert_eq!(org_id("organizations/"), None);
        assert_eq!(org_id("organizations/a/b"), None);
        assert_eq!(
            child("organizations/acme/members/bob", "members"),
            Some(("acme", "bob"))
        );
        assert_eq!(child("organizations/acme/scenarios/x", "members"), None);
        assert_eq!(child("organizations/acme/members/", "members"), None);
    }
}
