//! Resource names of the grading service.

pub fn job_name(organization: &str, id: &str) -> String {
    format!("{organization}/gradingJobs/{id}")
}

pub fn evaluation_name(organization: &str, id: &str) -> String {
    format!("{organization}/evaluations/{id}")
}

/// "organizations/{org}/{collection}/{id}" → ("organizations/{org}", id).
pub fn parse<'a>(name: &'a str, collection: &str) -> Option<(&'a str, &'a str)> {
    let mut parts = name.split('/');
    let (Some("organizations"), Some(org), Some(coll), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if coll != collection || org.is_empty() || id.is_empty() {
        return None;
    }
    let org_len = "organizations/".len() + org.len();
    Some((&name[..org_len], id))
}

/// The organization id of "organizations/{org}" or of any name below it.
pub fn organization_id(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("organizations/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then_some(id)
}

/// "organizations/{org}" of any name below it.
pub fn organization_of(name: &str) -> Option<String> {
    organization_id(name).map(|id| format!("organizations/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(
            parse("organizations/acme/gradingJobs/j1", "gradingJobs"),
            Some(("organizations/acme", "j1"))
        );
        assert_eq!(
            parse("organizations/acme/evaluations/j1", "gradingJobs"),
            None
        );
        assert_eq!(parse("organizations//gradingJobs/j1", "gradingJobs"), None);
        assert_eq!(
            parse("organizations/a/gradingJobs/j1/x", "gradingJobs"),
            None
        );
        assert_eq!(
            organization_id("organizations/acme/sessions/s"),
            Some("acme")
        );
    }
}
