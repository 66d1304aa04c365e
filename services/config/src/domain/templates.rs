//! Prompt templates: `{{variable}}` placeholders, the variables each purpose may use, and the
//! built-in default template of each purpose.

use salestrainer_proto::config::PromptPurpose;

/// The purposes templates exist for, with their stored names.
pub const PURPOSES: [PromptPurpose; 4] = [
    PromptPurpose::Persona,
    PromptPurpose::Cleanup,
    PromptPurpose::Summary,
    PromptPurpose::Grading,
];

pub fn purpose_key(p: PromptPurpose) -> &'static str {
    match p {
        PromptPurpose::Persona => "persona",
        PromptPurpose::Cleanup => "cleanup",
        PromptPurpose::Summary => "summary",
        PromptPurpose::Grading => "grading",
        PromptPurpose::Unspecified => "unspecified",
    }
}

pub fn purpose_from_key(s: &str) -> PromptPurpose {
    PURPOSES
        .into_iter()
        .find(|p| purpose_key(*p) == s)
        .unwrap_or(PromptPurpose::Unspecified)
}

/// The id of the built-in template of a purpose, e.g. `builtin-persona`.
pub fn builtin_id(p: PromptPurpose) -> String {
    format!("builtin-{}", purpose_key(p))
}

/// Variables the caller of each purpose fills in.
pub fn allowed_variables(p: PromptPurpose) -> &'static [&'static str] {
    match p {
        // Shared with the call service, which renders them.
        PromptPurpose::Persona => salestrainer_conversation::PERSONA_PROMPT_VARIABLES,
        PromptPurpose::Cleanup => &["transcript"],
        PromptPurpose::Summary => &[
            "transcript",
            "persona_name",
            "scenario_name",
            "product_brief",
            "goal",
        ],
        PromptPurpose::Grading => &[
            "transcript",
            "summary",
            "rubric",
            "criteria",
            "passing_score",
            "goal",
            "product_brief",
            "persona_name",
        ],
        PromptPurpose::Unspecified => &[],
    }
}

/// The variables of `body` in order of first appearance, or a description of the first
/// syntax error (an unclosed `{{`, or a name that is not `[a-z_][a-z0-9_]*`).
pub fn extract_variables(body: &str) -> Result<Vec<String>, String> {
    let mut vars: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed \"{{\"".to_owned());
        };
        let name = after[..end].trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!("\"{{{{{name}}}}}\" is not a valid variable name"));
        }
        if !vars.iter().any(|v| v == name) {
            vars.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    Ok(vars)
}

/// The variables of `body` that `purpose` does not provide.
pub fn unknown_variables(purpose: PromptPurpose, vars: &[String]) -> Vec<String> {
    let allowed = allowed_variables(purpose);
    vars.iter()
        .filter(|v| !allowed.contains(&v.as_str()))
        .cloned()
        .collect()
}

pub fn builtin_display_name(p: PromptPurpose) -> &'static str {
    match p {
        PromptPurpose::Persona => "Built-in persona prompt",
        PromptPurpose::Cleanup => "Built-in transcript clean-up prompt",
        PromptPurpose::Summary => "Built-in call summary prompt",
        PromptPurpose::Grading => "Built-in grading prompt",
        PromptPurpose::Unspecified => "",
    }
}

pub fn builtin_body(p: PromptPurpose) -> &'static str {
    match p {
        PromptPurpose::Persona => {
            "You are {{persona_name}}, {{persona_role}} at {{company}}, taking a sales call.\n\
             Background (reveal it only when asked good questions): {{background}}\n\
             Personality: {{personality}}. Difficulty: {{difficulty}}.\n\
             Raise these objections naturally during the call: {{objections}}\n\
             The caller is selling: {{product_brief}}\n\
             Agree to the goal ({{goal}}) only if the caller has earned it.\n\
             Stay in character, answer briefly as a busy buyer would, and never say you are an AI."
        }
        PromptPurpose::Cleanup => {
            "Clean up this sales call transcript. Fix speech-to-text errors and punctuation, \
             remove false starts and filler, keep the speakers, order and meaning unchanged, and \
             do not add anything that was not said.\n\nTranscript:\n{{transcript}}"
        }
        PromptPurpose::Summary => {
            "Summarise this practice sales call between a trainee and {{persona_name}} \
             (scenario: {{scenario_name}}; product: {{product_brief}}; goal: {{goal}}).\n\
             Give the call's outcome, the buyer's main objections and how they were handled, \
             and the agreed next step, in at most 150 words.\n\nTranscript:\n{{transcript}}"
        }
        PromptPurpose::Grading => {
            "Grade this practice sales call against the rubric. The goal was: {{goal}}.\n\
             Product: {{product_brief}}. Buyer: {{persona_name}}.\n\
             Rubric criteria:\n{{criteria}}\n\
             For each criterion give a score on its scale, a one-sentence rationale and the \
             transcript lines you relied on, quoted exactly. Then say whether the goal was \
             reached. Passing score: {{passing_score}}.\n\nTranscript:\n{{transcript}}"
        }
        PromptPurpose::Unspecified => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction() {
        assert_eq!(
            extract_variables("Hi {{ a }} and {{b_2}} and {{a}}").unwrap(),
            vec!["a", "b_2"]
        );
        assert!(extract_variables("{{ bad-name }}").is_err());
        assert!(extract_variables("{{ open").is_err());
        assert!(extract_variables("no vars").unwrap().is_empty());
    }

    #[test]
    fn builtins_use_only_allowed_variables() {
        for p in PURPOSES {
            let vars = extract_variables(builtin_body(p)).unwrap();
            assert!(!vars.is_empty());
            assert!(unknown_variables(p, &vars).is_empty(), "{p:?}");
        }
    }
}
