//! Field validation of every resource. Each function records every bad field in `v` (so a
//! request learns of all its mistakes at once); references to other resources are checked for
//! shape here and for existence by the caller.

use salestrainer_proto::config as pb;
use salestrainer_runtime::Violations;

use salestrainer_runtime::names;

use super::templates;

pub const MAX_NAME: usize = 200;
pub const MAX_SHORT_TEXT: usize = 2_000;
pub const MAX_LONG_TEXT: usize = 20_000;
pub const MAX_OBJECTIONS: usize = 20;
pub const MAX_CRITERIA: usize = 30;
pub const MAX_LEVELS: usize = 11;
pub const MAX_SIGNAL_PHRASES: usize = 50;
pub const MAX_ASSIGNEES: usize = 1_000;
pub const MAX_REQUIRED_ATTEMPTS: i32 = 100;
pub const MAX_SECRET: usize = 4_096;
/// Longest practice call a scenario may allow.
pub const MAX_TIME_LIMIT_SECS: i64 = 4 * 3600;
pub const MIN_TIME_LIMIT_SECS: i64 = 30;

fn len(s: &str) -> usize {
    s.chars().count()
}

/// Checks a text field: optionally required, at most `max` characters.
pub fn text(v: &mut Violations, field: &str, value: &str, max: usize, required: bool) {
    if required && value.trim().is_empty() {
        v.add(field, "is required");
    } else if len(value) > max {
        v.add(field, format!("must be at most {max} characters"));
    }
}

/// Config's create-time policy on top of the suite's id rule: a client-chosen id also starts
/// with a letter, so it never looks like a server-assigned UUID.
pub fn is_client_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase()) && names::is_valid_id(id)
}

/// Checks a client-chosen id (empty = server-assigned).
pub fn client_id(v: &mut Violations, field: &str, id: &str) {
    if !id.is_empty() && !is_client_id(id) {
        v.add(
            field,
            "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'",
        );
    }
}

fn score(v: &mut Violations, field: &str, value: f64) {
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        v.add(field, "must be between 0 and 100");
    }
}

pub fn organization(o: &pb::Organization, v: &mut Violations) {
    text(
        v,
        "organization.display_name",
        &o.display_name,
        MAX_NAME,
        true,
    );
    if let Some(s) = &o.settings {
        for (field, value) in [
            (
                "organization.settings.default_llm_credential",
                &s.default_llm_credential,
            ),
            (
                "organization.settings.default_voice_credential",
                &s.default_voice_credential,
            ),
        ] {
            if !value.is_empty() && names::parse_child(value, "credentials").is_none() {
                v.add(
                    field,
                    "must be a credential name, organizations/{organization}/credentials/{credential}",
                );
            }
        }
    }
}

pub fn member(m: &pb::Member, v: &mut Violations) {
    text(v, "member.subject", &m.subject, MAX_NAME, true);
    text(v, "member.display_name", &m.display_name, MAX_NAME, false);
    text(v, "member.email", &m.email, 320, false);
    if !m.email.is_empty() && !looks_like_email(&m.email) {
        v.add("member.email", "must be an email address");
    }
    match pb::Role::try_from(m.role) {
        Ok(pb::Role::Unspecified) | Err(_) => v.add(
            "member.role",
            "must be ROLE_ADMIN, ROLE_MANAGER or ROLE_TRAINEE",
        ),
        Ok(_) => {}
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub fn persona(p: &pb::Persona, v: &mut Violations) {
    text(v, "persona.display_name", &p.display_name, MAX_NAME, true);
    text(v, "persona.role", &p.role, MAX_NAME, false);
    text(v, "persona.company", &p.company, MAX_NAME, false);
    text(v, "persona.background", &p.background, MAX_LONG_TEXT, false);
    text(
        v,
        "persona.personality",
        &p.personality,
        MAX_SHORT_TEXT,
        false,
    );
    text(v, "persona.voice_id", &p.voice_id, MAX_NAME, false);
    text(
        v,
        "persona.first_message",
        &p.first_message,
        MAX_SHORT_TEXT,
        false,
    );
    if p.objections.len() > MAX_OBJECTIONS {
        v.add(
            "persona.objections",
            format!("at most {MAX_OBJECTIONS} objections"),
        );
    }
    for (i, o) in p.objections.iter().enumerate() {
        text(
            v,
            &format!("persona.objections[{i}]"),
            o,
            MAX_SHORT_TEXT,
            true,
        );
    }
    if pb::Difficulty::try_from(p.difficulty).is_err() {
        v.add("persona.difficulty", "unknown difficulty");
    }
}

pub fn scenario(s: &pb::Scenario, v: &mut Violations) {
    text(v, "scenario.display_name", &s.display_name, MAX_NAME, true);
    text(
        v,
        "scenario.product_brief",
        &s.product_brief,
        MAX_LONG_TEXT,
        false,
    );
    if s.persona.is_empty() {
        v.add("scenario.persona", "is required");
    } else if names::parse_child(&s.persona, "personas").is_none() {
        v.add(
            "scenario.persona",
            "must be organizations/{organization}/personas/{persona}",
        );
    }
    if s.rubric.is_empty() {
        v.add("scenario.rubric", "is required");
    } else if names::parse_child(&s.rubric, "rubrics").is_none() {
        v.add(
            "scenario.rubric",
            "must be organizations/{organization}/rubrics/{rubric}",
        );
    }
    if let Some(goal) = &s.goal {
        match pb::GoalKind::try_from(goal.kind) {
            Err(_) => v.add("scenario.goal.kind", "unknown goal kind"),
            Ok(pb::GoalKind::Custom) if goal.description.trim().is_empty() => v.add(
                "scenario.goal.description",
                "is required for GOAL_KIND_CUSTOM",
            ),
            Ok(_) => {}
        }
        text(
            v,
            "scenario.goal.description",
            &goal.description,
            MAX_SHORT_TEXT,
            false,
        );
    }
    if let Some(limit) = &s.time_limit {
        let secs = limit.seconds;
        if limit.nanos < 0
            || limit.nanos >= 1_000_000_000
            || !(MIN_TIME_LIMIT_SECS..=MAX_TIME_LIMIT_SECS).contains(&secs)
        {
            v.add(
                "scenario.time_limit",
                format!("must be between {MIN_TIME_LIMIT_SECS} s and {MAX_TIME_LIMIT_SECS} s"),
            );
        }
    }
}

/// Validates a rubric, then (only if valid) normalises its criteria weights to sum to 1.
pub fn rubric(r: &mut pb::Rubric, v: &mut Violations) {
    let before = v.is_empty();
    text(v, "rubric.display_name", &r.display_name, MAX_NAME, true);
    score(v, "rubric.passing_score", r.passing_score);
    if r.criteria.is_empty() {
        v.add("rubric.criteria", "at least one criterion is required");
    } else if r.criteria.len() > MAX_CRITERIA {
        v.add(
            "rubric.criteria",
            format!("at most {MAX_CRITERIA} criteria"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in r.criteria.iter().enumerate() {
        let f = |name: &str| format!("rubric.criteria[{i}].{name}");
        if c.id.is_empty() {
            v.add(f("id"), "is required");
        } else if !is_client_id(&c.id.replace('_', "-")) {
            v.add(
                f("id"),
                "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter and not ending with '-' or '_'",
            );
        } else if !seen.insert(c.id.as_str()) {
            v.add(f("id"), "must be unique within the rubric");
        }
        text(v, &f("skill"), &c.skill, 100, true);
        text(v, &f("description"), &c.description, MAX_SHORT_TEXT, false);
        if !c.weight.is_finite() || c.weight <= 0.0 {
            v.add(f("weight"), "must be greater than 0");
        }
        let (min, max) = scale(c);
        if min >= max || min < 0 || max > 100 {
            v.add(
                f("scale_max"),
                "scale must satisfy 0 <= scale_min < scale_max <= 100",
            );
        }
        if c.levels.len() > MAX_LEVELS {
            v.add(f("levels"), format!("at most {MAX_LEVELS} levels"));
        }
        let mut scores = std::collections::HashSet::new();
        for (j, level) in c.levels.iter().enumerate() {
            if level.score < min || level.score > max {
                v.add(
                    format!("{}[{j}].score", f("levels")),
                    "must be within the scale",
                );
            } else if !scores.insert(level.score) {
                v.add(
                    format!("{}[{j}].score", f("levels")),
                    "each score at most once",
                );
            }
            text(
                v,
                &format!("{}[{j}].description", f("levels")),
                &level.description,
                MAX_SHORT_TEXT,
                true,
            );
        }
        if c.signal_phrases.len() > MAX_SIGNAL_PHRASES {
            v.add(
                f("signal_phrases"),
                format!("at most {MAX_SIGNAL_PHRASES} phrases"),
            );
        }
        for (j, phrase) in c.signal_phrases.iter().enumerate() {
            text(
                v,
                &format!("{}[{j}]", f("signal_phrases")),
                phrase,
                MAX_NAME,
                true,
            );
        }
    }
    if before && v.is_empty() {
        normalise(r);
    }
}

/// A criterion's scale; an unset scale (0..0) means the usual 1..5.
pub fn scale(c: &pb::Criterion) -> (i32, i32) {
    if c.scale_min == 0 && c.scale_max == 0 {
        (1, 5)
    } else {
        (c.scale_min, c.scale_max)
    }
}

/// Scales weights to sum to 1 and fills in the default scale. Call on a valid rubric only.
pub fn normalise(r: &mut pb::Rubric) {
    let total: f64 = r.criteria.iter().map(|c| c.weight).sum();
    for c in &mut r.criteria {
        c.weight /= total;
        let (min, max) = scale(c);
        c.scale_min = min;
        c.scale_max = max;
    }
}

pub fn assignment(a: &pb::Assignment, now_us: i64, check_due_in_future: bool, v: &mut Violations) {
    if a.scenario.is_empty() {
        v.add("assignment.scenario", "is required");
    } else if names::parse_child(&a.scenario, "scenarios").is_none() {
        v.add(
            "assignment.scenario",
            "must be organizations/{organization}/scenarios/{scenario}",
        );
    }
    if a.assignees.is_empty() {
        v.add("assignment.assignees", "at least one assignee is required");
    } else if a.assignees.len() > MAX_ASSIGNEES {
        v.add(
            "assignment.assignees",
            format!("at most {MAX_ASSIGNEES} assignees"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, m) in a.assignees.iter().enumerate() {
        let field = format!("assignment.assignees[{i}]");
        if names::parse_child(m, "members").is_none() {
            v.add(
                field,
                "must be organizations/{organization}/members/{member}",
            );
        } else if !seen.insert(m.as_str()) {
            v.add(field, "is listed twice");
        }
    }
    if let Some(due) = &a.due_time {
        // The protobuf contract's range (years 1 to 9999), never an overflow.
        match salestrainer_runtime::time::micros(due) {
            None => v.add("assignment.due_time", "is not a valid timestamp"),
            Some(us) if check_due_in_future && us <= now_us => {
                v.add("assignment.due_time", "must be in the future")
            }
            Some(_) => {}
        }
    }
    if !(0..=MAX_REQUIRED_ATTEMPTS).contains(&a.required_attempts) {
        v.add(
            "assignment.required_attempts",
            format!("must be between 1 and {MAX_REQUIRED_ATTEMPTS} (0 means 1)"),
        );
    }
    score(v, "assignment.passing_score", a.passing_score);
    if pb::AssignmentState::try_from(a.state).is_err() {
        v.add("assignment.state", "unknown state");
    }
}

/// Validates a template and returns its variables (in order of first appearance).
pub fn prompt_template(t: &pb::PromptTemplate, v: &mut Violations) -> Vec<String> {
    text(
        v,
        "prompt_template.display_name",
        &t.display_name,
        MAX_NAME,
        false,
    );
    let purpose = pb::PromptPurpose::try_from(t.purpose).unwrap_or(pb::PromptPurpose::Unspecified);
    if purpose == pb::PromptPurpose::Unspecified {
        v.add(
            "prompt_template.purpose",
            "must be persona, cleanup, summary or grading",
        );
    }
    text(v, "prompt_template.body", &t.body, MAX_LONG_TEXT, true);
    match templates::extract_variables(&t.body) {
        Err(e) => {
            v.add("prompt_template.body", e);
            Vec::new()
        }
        Ok(vars) => {
            if purpose != pb::PromptPurpose::Unspecified {
                let unknown = templates::unknown_variables(purpose, &vars);
                if !unknown.is_empty() {
                    v.add(
                        "prompt_template.body",
                        format!(
                            "unknown variables {}; {} templates may use {}",
                            unknown.join(", "),
                            templates::purpose_key(purpose),
                            templates::allowed_variables(purpose).join(", ")
                        ),
                    );
                }
            }
            vars
        }
    }
}

/// Default API base URL of each provider kind.
pub fn default_base_url(kind: pb::ProviderKind) -> &'static str {
    match kind {
        pb::ProviderKind::OpenaiCompatible => "https://api.openai.com/v1",
        pb::ProviderKind::Vapi => "https://api.vapi.ai",
        pb::ProviderKind::Retell => "https://api.retellai.com",
        pb::ProviderKind::Unspecified => "",
    }
}

pub fn base_url_ok(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
        }
        Err(_) => false,
    }
}

/// `creating`: the api_key is required (on update it is optional, set only to rotate).
pub fn credential(c: &pb::ProviderCredential, creating: bool, v: &mut Violations) {
    let kind = pb::ProviderKind::try_from(c.kind).unwrap_or(pb::ProviderKind::Unspecified);
    if kind == pb::ProviderKind::Unspecified {
        v.add(
            "provider_credential.kind",
            "must be PROVIDER_KIND_OPENAI_COMPATIBLE, PROVIDER_KIND_VAPI or PROVIDER_KIND_RETELL",
        );
    }
    text(
        v,
        "provider_credential.display_name",
        &c.display_name,
        MAX_NAME,
        false,
    );
    text(v, "provider_credential.model", &c.model, MAX_NAME, false);
    if !c.base_url.is_empty() && (c.base_url.len() > 2_000 || !base_url_ok(&c.base_url)) {
        v.add(
            "provider_credential.base_url",
            "must be an http(s) URL without credentials, query or fragment",
        );
    }
    // Never echo a secret back in a violation: descriptions name the rule only.
    if creating && c.api_key.trim().is_empty() {
        v.add("provider_credential.api_key", "is required");
    } else if c.api_key.len() > MAX_SECRET || c.api_key.chars().any(char::is_control) {
        v.add(
            "provider_credential.api_key",
            "must be at most 4096 characters with no control characters",
        );
    }
    if c.webhook_secret.len() > MAX_SECRET || c.webhook_secret.chars().any(char::is_control) {
        v.add(
            "provider_credential.webhook_secret",
            "must be at most 4096 characters with no control characters",
        );
    }
    if !c.webhook_secret.is_empty() && kind == pb::ProviderKind::OpenaiCompatible {
        v.add(
            "provider_credential.webhook_secret",
            "only voice providers have a webhook secret",
        );
    }
    public_key(c, kind, v);
    if let Some(l) = &c.limits {
        if l.requests_per_minute < 0 {
            v.add(
                "provider_credential.limits.requests_per_minute",
                "must not be negative",
            );
        }
        if l.tokens_per_minute < 0 {
            v.add(
                "provider_credential.limits.tokens_per_minute",
                "must not be negative",
            );
        }
    }
}

/// The longest public web key accepted (VAPI's are UUIDs).
const MAX_PUBLIC_KEY: usize = 256;

/// A public web key: voice providers only, printable, no spaces (it travels in a header).
fn public_key(c: &pb::ProviderCredential, kind: pb::ProviderKind, v: &mut Violations) {
    let key = c.public_key.trim();
    if key.is_empty() {
        return;
    }
    if kind == pb::ProviderKind::OpenaiCompatible {
        v.add(
            "provider_credential.public_key",
            "only voice providers have a public web key",
        );
    } else if key.len() > MAX_PUBLIC_KEY || !key.chars().all(|ch| ch.is_ascii_graphic()) {
        v.add(
            "provider_credential.public_key",
            "must be at most 256 printable ASCII characters without spaces",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_for_voice_providers_and_printable() {
        let check = |kind: pb::ProviderKind, key: &str| {
            let mut v = Violations::new();
            let c = pb::ProviderCredential {
                kind: kind as i32,
                public_key: key.into(),
                ..Default::default()
            };
            public_key(&c, kind, &mut v);
            v.into_result().is_ok()
        };
        assert!(check(
            pb::ProviderKind::Vapi,
            "0b7c2a4e-1111-4222-8333-444455556666"
        ));
        assert!(check(pb::ProviderKind::Vapi, ""));
        assert!(check(pb::ProviderKind::OpenaiCompatible, ""));
        assert!(!check(pb::ProviderKind::OpenaiCompatible, "pk"));
        assert!(!check(pb::ProviderKind::Vapi, "has space"));
        assert!(!check(pb::ProviderKind::Vapi, "line\nbreak"));
        assert!(!check(pb::ProviderKind::Vapi, &"k".repeat(257)));
    }

    fn criterion(id: &str, weight: f64) -> pb::Criterion {
        pb::Criterion {
            id: id.into(),
            skill: "discovery".into(),
            weight,
            ..Default::default()
        }
    }

    #[test]
    fn rubric_weights_are_normalised_and_bad_fields_all_reported() {
        let mut r = pb::Rubric {
            display_name: "R".into(),
            criteria: vec![criterion("a", 1.0), criterion("b", 3.0)],
            passing_score: 70.0,
            ..Default::default()
        };
        let mut v = Violations::new();
        rubric(&mut r, &mut v);
        assert!(v.is_empty());
        assert_eq!(r.criteria[0].weight, 0.25);
        assert_eq!((r.criteria[1].scale_min, r.criteria[1].scale_max), (1, 5));

        let mut bad = pb::Rubric {
            display_name: String::new(),
            criteria: vec![criterion("a", 0.0), criterion("a", -1.0)],
            passing_score: 101.0,
            ..Default::default()
        };
        let mut v = Violations::new();
        rubric(&mut bad, &mut v);
        let err = v.into_result().unwrap_err();
        let salestrainer_runtime::ApiError::InvalidArgument(fields) = err else {
            panic!()
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert!(names.contains(&"rubric.display_name"));
        assert!(names.contains(&"rubric.passing_score"));
        assert!(names.contains(&"rubric.criteria[0].weight"));
        assert!(names.contains(&"rubric.criteria[1].id"));
    }

    #[test]
    fn urls() {
        assert!(base_url_ok("https://api.openai.com/v1"));
        assert!(base_url_ok("http://127.0.0.1:8000/v1"));
        assert!(!base_url_ok("ftp://x"));
        assert!(!base_url_ok("https://user:pw@x.com"));
        assert!(!base_url_ok("not a url"));
    }
}
