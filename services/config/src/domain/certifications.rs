//! What a certification definition must satisfy. Plain Rust.

use salestrainer_proto::config as pb;
use salestrainer_runtime::{Violations, names};

use super::validate::{MAX_NAME, MAX_REQUIRED_ATTEMPTS, MAX_SHORT_TEXT, text};

pub const MAX_REQUIREMENTS: usize = 20;
/// Windows and validity: at most ten years (3,660 days).
pub const MAX_SPAN_SECS: i64 = 3_660 * 86_400;
/// An award valid for less than an hour is a mistake, not a policy.
pub const MIN_VALIDITY_SECS: i64 = 3_600;

fn span(v: &mut Violations, field: &str, d: Option<&prost_types::Duration>, min_secs: i64) {
    let Some(d) = d else { return };
    if d.nanos < 0 || d.nanos >= 1_000_000_000 || d.seconds < min_secs || d.seconds > MAX_SPAN_SECS
    {
        v.add(
            field,
            format!("must be between {min_secs} s and {MAX_SPAN_SECS} s"),
        );
    }
}

pub fn certification(c: &pb::Certification, v: &mut Violations) {
    text(
        v,
        "certification.display_name",
        &c.display_name,
        MAX_NAME,
        true,
    );
    text(
        v,
        "certification.description",
        &c.description,
        MAX_SHORT_TEXT,
        false,
    );
    if c.requirements.is_empty() {
        v.add(
            "certification.requirements",
            "at least one requirement is required",
        );
    } else if c.requirements.len() > MAX_REQUIREMENTS {
        v.add(
            "certification.requirements",
            format!("at most {MAX_REQUIREMENTS} requirements"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in c.requirements.iter().enumerate() {
        let f = |name: &str| format!("certification.requirements[{i}].{name}");
        if r.scenario.is_empty() {
            v.add(f("scenario"), "is required");
        } else if names::parse_child(&r.scenario, "scenarios").is_none() {
            v.add(
                f("scenario"),
                "must be organizations/{organization}/scenarios/{scenario}",
            );
        } else if !seen.insert(r.scenario.as_str()) {
            v.add(f("scenario"), "is required twice");
        }
        if !r.passing_score.is_finite() || !(0.0..=100.0).contains(&r.passing_score) {
            v.add(f("passing_score"), "must be between 0 and 100");
        }
    }
    if !(0..=MAX_REQUIRED_ATTEMPTS).contains(&c.max_attempts) {
        v.add(
            "certification.max_attempts",
            format!("must be between 0 and {MAX_REQUIRED_ATTEMPTS}"),
        );
    }
    span(
        v,
        "certification.attempt_window",
        c.attempt_window.as_ref(),
        0,
    );
    span(
        v,
        "certification.validity",
        c.validity.as_ref(),
        MIN_VALIDITY_SECS,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(c: &pb::Certification) -> Vec<String> {
        let mut v = Violations::new();
        certification(c, &mut v);
        match v.into_result() {
            Ok(()) => Vec::new(),
            Err(salestrainer_runtime::ApiError::InvalidArgument(fv)) => {
                fv.into_iter().map(|f| f.field).collect()
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_what_cannot_be_earned() {
        let req = |s: &str, p: f64| pb::CertificationRequirement {
            scenario: s.into(),
            passing_score: p,
        };
        let mut c = pb::Certification {
            display_name: "Demo booker".into(),
            requirements: vec![req("organizations/o/scenarios/demo", 70.0)],
            ..Default::default()
        };
        assert!(fields(&c).is_empty());
        c.requirements
            .push(req("organizations/o/scenarios/demo", 101.0));
        c.max_attempts = -1;
        c.validity = Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        });
        assert_eq!(
            fields(&c),
            [
                "certification.requirements[1].scenario",
                "certification.requirements[1].passing_score",
                "certification.max_attempts",
                "certification.validity"
            ]
        );
    }
}
