//! LLM grading support: the strict JSON schema built from the rubric (OpenAI structured
//! outputs) and the validation of the model's answer. An invalid answer is a failed attempt.

use std::fmt;

use serde_json::{Value, json};

use super::types::{CriterionScore, Evidence, Rubric, Turn};

/// `json_schema.name` in the request.
pub const SCHEMA_NAME: &str = "sales_call_grade";

/// The JSON schema of the answer. Strict mode: every object closes `additionalProperties` and
/// requires all of its properties.
pub fn grading_schema(rubric: &Rubric) -> Value {
    let n = rubric.criteria.len();
    let same_scale = rubric
        .criteria
        .windows(2)
        .all(|w| (w[0].scale_min, w[0].scale_max) == (w[1].scale_min, w[1].scale_max));
    let items = match rubric.criteria.first() {
        Some(first) if same_scale => {
            let ids: Vec<&str> = rubric.criteria.iter().map(|c| c.id.as_str()).collect();
            criterion_item(
                json!(ids),
                first.scale_min,
                first.scale_max,
                "One of the rubric's criterion ids.",
            )
        }
        // Different scales: one variant per criterion binds each id to its own bounds.
        _ => json!({
            "anyOf": rubric.criteria.iter().map(|c| criterion_item(
                json!([c.id]),
                c.scale_min,
                c.scale_max,
                &format!("{}: {}", c.skill.trim(), c.description.trim()),
            )).collect::<Vec<_>>()
        }),
    };
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "criteria": {
                "type": "array",
                "description": "Exactly one entry per rubric criterion.",
                "items": items,
                "minItems": n,
                "maxItems": n
            },
            "summary": {"type": "string", "description": "A short summary of the call."},
            "strengths": strings.clone(),
            "improvements": strings,
            "closed": {"type": "boolean", "description": "Whether the scenario's goal was reached."}
        },
        "required": ["criteria", "summary", "strengths", "improvements", "closed"],
        "additionalProperties": false
    })
}

fn criterion_item(ids: Value, min: i32, max: i32, id_description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "criterion_id": {"type": "string", "enum": ids, "description": id_description},
            "score": {"type": "integer", "minimum": min, "maximum": max},
            "rationale": {"type": "string"},
            "evidence": {
                "type": "array",
                "description": "Exact quotes copied from the transcript lines.",
                "items": {"type": "string"}
            }
        },
        "required": ["criterion_id", "score", "rationale", "evidence"],
        "additionalProperties": false
    })
}

/// The `response_format` field of a chat completion request.
pub fn response_format(rubric: &Rubric) -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": true, "schema": grading_schema(rubric)}
    })
}

/// The transcript as the prompt shows it: one line per turn, with its id so quotes can be
/// traced back.
pub fn render_transcript(transcript: &[Turn]) -> String {
    transcript
        .iter()
        .map(|t| format!("[{}] {}: {}", t.id, t.speaker, t.text))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The model refused (`refusal`) or a content filter stopped it.
    Refusal(String),
    EmptyContent,
    /// `finish_reason: length`: the JSON is cut.
    Truncated,
    NotJson(String),
    /// A required field is missing or has the wrong type.
    Shape(String),
    UnknownCriterion(String),
    DuplicateCriterion(String),
    MissingCriteria(Vec<String>),
    ScoreOutOfRange {
        criterion_id: String,
        score: String,
        min: i32,
        max: i32,
    },
    QuoteNotFound {
        criterion_id: String,
        quote: String,
    },
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Refusal(r) => write!(f, "the model refused: {r}"),
            AnswerError::EmptyContent => write!(f, "the answer is empty"),
            AnswerError::Truncated => write!(f, "the answer was cut at the token limit"),
            AnswerError::NotJson(e) => write!(f, "the answer is not JSON: {e}"),
            AnswerError::Shape(e) => write!(f, "the answer breaks the schema: {e}"),
            AnswerError::UnknownCriterion(id) => write!(f, "unknown criterion {id:?}"),
            AnswerError::DuplicateCriterion(id) => write!(f, "criterion {id:?} scored twice"),
            AnswerError::MissingCriteria(ids) => write!(f, "criteria not scored: {ids:?}"),
            AnswerError::ScoreOutOfRange {
                criterion_id,
                score,
                min,
                max,
            } => write!(
                f,
                "criterion {criterion_id:?} scored {score}, outside {min}..={max}"
            ),
            AnswerError::QuoteNotFound {
                criterion_id,
                quote,
            } => write!(
                f,
                "criterion {criterion_id:?} quotes {quote:?}, which is not in the transcript"
            ),
        }
    }
}

impl std::error::Error for AnswerError {}

/// The whole validated answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmAnswer {
    /// In rubric order; evidence quotes are rewritten to the exact transcript text.
    pub criteria: Vec<CriterionScore>,
    pub summary: String,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub closed: bool,
}

/// Validates the answer and returns the criterion scores in rubric order.
///
/// `answer` may be the whole chat completion response, its `message`, the `content` string, or
/// the parsed content object.
pub fn validate_llm_answer(
    rubric: &Rubric,
    transcript: &[Turn],
    answer: &Value,
) -> Result<Vec<CriterionScore>, AnswerError> {
    parse_llm_answer(rubric, transcript, answer).map(|a| a.criteria)
}

/// Like [`validate_llm_answer`], keeping the summary, strengths, improvements and verdict.
pub fn parse_llm_answer(
    rubric: &Rubric,
    transcript: &[Turn],
    answer: &Value,
) -> Result<LlmAnswer, AnswerError> {
    let content = content_object(answer)?;
    let obj = content
        .as_object()
        .ok_or_else(|| AnswerError::Shape("the answer is not an object".into()))?;
    let items = obj
        .get("criteria")
        .and_then(Value::as_array)
        .ok_or_else(|| AnswerError::Shape("`criteria` must be an array".into()))?;

    let mut scored: Vec<Option<CriterionScore>> = vec![None; rubric.criteria.len()];
    for item in items {
        let id = item
            .get("criterion_id")
            .and_then(Value::as_str)
            .ok_or_else(|| AnswerError::Shape("`criterion_id` must be a string".into()))?;
        let idx = rubric
            .criteria
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| AnswerError::UnknownCriterion(id.to_string()))?;
        let c = &rubric.criteria[idx];
        if scored[idx].is_some() {
            return Err(AnswerError::DuplicateCriterion(id.to_string()));
        }
        let raw = item
            .get("score")
            .ok_or_else(|| AnswerError::Shape(format!("criterion {id:?} has no `score`")))?;
        let out_of_range = || AnswerError::ScoreOutOfRange {
            criterion_id: id.to_string(),
            score: raw.to_string(),
            min: c.scale_min,
            max: c.scale_max,
        };
        let score = integer(raw).ok_or_else(|| {
            AnswerError::Shape(format!("criterion {id:?}: `score` must be an integer"))
        })?;
        let score = i32::try_from(score).map_err(|_| out_of_range())?;
        if !(c.scale_min..=c.scale_max).contains(&score) {
            return Err(out_of_range());
        }
        let rationale = item
            .get("rationale")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AnswerError::Shape(format!("criterion {id:?}: `rationale` must be a string"))
            })?;
        let quotes = item
            .get("evidence")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                AnswerError::Shape(format!("criterion {id:?}: `evidence` must be an array"))
            })?;
        let mut evidence = Vec::new();
        for q in quotes {
            let q = q.as_str().ok_or_else(|| {
                AnswerError::Shape(format!("criterion {id:?}: evidence must be strings"))
            })?;
            // An empty quote claims nothing; skipping it is cheaper than a paid retry.
            if normalise(q).0.trim().is_empty() {
                continue;
            }
            let ev = locate_quote(transcript, q).ok_or_else(|| AnswerError::QuoteNotFound {
                criterion_id: id.to_string(),
                quote: q.to_string(),
            })?;
            evidence.push(ev);
        }
        scored[idx] = Some(CriterionScore {
            criterion_id: id.to_string(),
            score,
            rationale: rationale.trim().to_string(),
            evidence,
        });
    }
    let missing: Vec<String> = rubric
        .criteria
        .iter()
        .zip(&scored)
        .filter(|(_, s)| s.is_none())
        .map(|(c, _)| c.id.clone())
        .collect();
    if !missing.is_empty() {
        return Err(AnswerError::MissingCriteria(missing));
    }
    let string = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AnswerError::Shape(format!("`{k}` must be a string")))
    };
    let strings = |k: &str| {
        obj.get(k)
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| AnswerError::Shape(format!("`{k}` must be an array of strings")))
    };
    Ok(LlmAnswer {
        criteria: scored.into_iter().flatten().collect(),
        summary: string("summary")?,
        strengths: strings("strengths")?,
        improvements: strings("improvements")?,
        closed: obj
            .get("closed")
            .and_then(Value::as_bool)
            .ok_or_else(|| AnswerError::Shape("`closed` must be a boolean".into()))?,
    })
}

fn integer(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    // 4.0 is an integer; 4.5 is not.
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
        .map(|f| f as i64)
}

/// Digs the content object out of whatever shape the caller passed.
fn content_object(answer: &Value) -> Result<Value, AnswerError> {
    let mut v = answer;
    if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some("length") => return Err(AnswerError::Truncated),
            Some("content_filter") => {
                return Err(AnswerError::Refusal("stopped by the content filter".into()));
            }
            _ => {}
        }
        v = choice.get("message").unwrap_or(&Value::Null);
    } else if answer.get("choices").is_some() {
        return Err(AnswerError::EmptyContent);
    }
    if let Some(r) = v.get("refusal").filter(|r| !r.is_null()) {
        let reason = r.as_str().unwrap_or("refused").trim();
        return Err(AnswerError::Refusal(if reason.is_empty() {
            "refused".into()
        } else {
            reason.into()
        }));
    }
    let is_message = v.get("role").is_some() || v.get("content").is_some();
    if is_message {
        v = v.get("content").unwrap_or(&Value::Null);
    }
    match v {
        Value::Null => Err(AnswerError::EmptyContent),
        Value::String(s) => parse_json_text(s),
        // Content parts: [{"type": "text", "text": "..."}]
        Value::Array(parts) if is_message => {
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            parse_json_text(&text)
        }
        other => Ok(other.clone()),
    }
}

fn parse_json_text(s: &str) -> Result<Value, AnswerError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AnswerError::EmptyContent);
    }
    // Servers without structured outputs sometimes wrap the JSON in a code fence.
    let s = s
        .strip_prefix("```json")
        .or_else(|| s.strip_prefix("```"))
        .and_then(|r| r.trim_end().strip_suffix("```"))
        .unwrap_or(s);
    serde_json::from_str(s).map_err(|e| AnswerError::NotJson(e.to_string()))
}

/// Lowercased words separated by single spaces; apostrophes kept (straightened), all other
/// punctuation and whitespace treated as a separator. Returns the text and, for each of its
/// bytes' chars, the original byte range: (normalised byte offset, original start, original end).
fn normalise(s: &str) -> (String, Vec<(usize, usize, usize)>) {
    let mut out = String::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len());
    let mut pending_sep: Option<(usize, usize)> = None;
    for (i, c) in s.char_indices() {
        let end = i + c.len_utf8();
        let keep = if c.is_alphanumeric() {
            Some(c)
        } else if matches!(c, '\'' | '\u{2019}' | '\u{2018}') {
            Some('\'')
        } else {
            None
        };
        match keep {
            Some(k) => {
                if let Some((ss, se)) = pending_sep.take()
                    && !out.is_empty()
                {
                    map.push((out.len(), ss, se));
                    out.push(' ');
                }
                for l in k.to_lowercase() {
                    map.push((out.len(), i, end));
                    out.push(l);
                }
            }
            None => {
                if pending_sep.is_none() {
                    pending_sep = Some((i, end));
                }
            }
        }
    }
    (out, map)
}

/// Finds a quote in the transcript, ignoring case, whitespace and punctuation, and returns it as
/// the exact text of the turn. "…" or "..." in a quote may skip text within one turn. Leading
/// "[id]" and "Speaker:" labels, which models copy from the prompt, are ignored.
pub fn locate_quote(transcript: &[Turn], quote: &str) -> Option<Evidence> {
    let q = strip_labels(quote.trim());
    let segments: Vec<String> = q
        .split(['…'])
        .flat_map(|p| p.split("..."))
        .map(|p| normalise(p).0)
        .filter(|p| !p.is_empty())
        .collect();
    if segments.is_empty() {
        return None;
    }
    transcript.iter().find_map(|t| {
        let (norm, map) = normalise(&t.text);
        let padded = format!(" {norm} ");
        let mut from = 0;
        let mut first: Option<usize> = None;
        let mut last_end = 0;
        for seg in &segments {
            let needle = format!(" {seg} ");
            // `padded` is `norm` shifted by one byte.
            let at = padded.get(from..)?.find(&needle)? + from;
            first.get_or_insert(at);
            last_end = at + seg.len();
            from = last_end;
        }
        let start = first?;
        let s = map.iter().find(|m| m.0 == start)?.1;
        let e = map.iter().rev().find(|m| m.0 < last_end)?.2;
        Some(Evidence {
            turn_id: t.id.clone(),
            quote: t.text.get(s..e)?.to_string(),
        })
    })
}

fn strip_labels(q: &str) -> &str {
    let mut q = q.trim_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '“' | '”'));
    if let Some(rest) = q.strip_prefix('[')
        && let Some(close) = rest.find(']')
    {
        q = rest[close + 1..].trim_start();
    }
    for label in [
        "Trainee:",
        "Customer:",
        "Persona:",
        "System:",
        "User:",
        "Assistant:",
    ] {
        if q.len() >= label.len()
            && q.is_char_boundary(label.len())
            && q[..label.len()].eq_ignore_ascii_case(label)
        {
            q = q[label.len()..].trim_start();
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::types::{Criterion, Speaker};
    use serde_json::Map;

    fn crit(id: &str, min: i32, max: i32) -> Criterion {
        Criterion {
            id: id.into(),
            skill: "discovery".into(),
            description: "Asks open questions.".into(),
            weight: 1.0,
            scale_min: min,
            scale_max: max,
            levels: vec![],
            signal_phrases: vec![],
        }
    }

    fn rubric() -> Rubric {
        Rubric {
            criteria: vec![crit("discovery", 1, 5), crit("closing", 0, 10)],
            passing_score: 60.0,
        }
    }

    fn transcript() -> Vec<Turn> {
        vec![
            Turn::new(
                "t1",
                Speaker::Trainee,
                "Hi Dana!  What does your onboarding   look like today?",
            ),
            Turn::new(
                "t2",
                Speaker::Persona,
                "Slow, honestly. It takes four months.",
            ),
            Turn::new(
                "t3",
                Speaker::Trainee,
                "Could we book a demo on Tuesday at 2pm?",
            ),
            Turn::new("t4", Speaker::Persona, "Sure, Tuesday works."),
        ]
    }

    fn good() -> Value {
        json!({
            "criteria": [
                {"criterion_id": "closing", "score": 9, "rationale": "Asked and got a demo.",
                 "evidence": ["could we book a demo on tuesday at 2pm", "[t4] Customer: \"Sure, Tuesday works.\""]},
                {"criterion_id": "discovery", "score": 3, "rationale": "One open question.",
                 "evidence": ["what does your onboarding look like today?"]}
            ],
            "summary": "Booked a demo.",
            "strengths": ["Closing"],
            "improvements": ["Ask more questions"],
            "closed": true
        })
    }

    fn walk(v: &Value, f: &mut dyn FnMut(&Map<String, Value>)) {
        match v {
            Value::Object(o) => {
                f(o);
                o.values().for_each(|x| walk(x, f));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
            _ => {}
        }
    }

    #[test]
    fn schema_is_strict_and_names_every_criterion_and_bound() {
        let rf = response_format(&rubric());
        assert_eq!(rf["type"], "json_schema");
        assert_eq!(rf["json_schema"]["strict"], true);
        assert_eq!(rf["json_schema"]["name"], SCHEMA_NAME);
        let schema = &rf["json_schema"]["schema"];
        let text = schema.to_string();
        for id in ["\"discovery\"", "\"closing\""] {
            assert!(text.contains(id));
        }
        // Different scales: one variant per criterion with its own bounds.
        let variants = schema["properties"]["criteria"]["items"]["anyOf"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(variants.len(), 2);
        assert_eq!(
            variants[0]["properties"]["criterion_id"]["enum"],
            json!(["discovery"])
        );
        assert_eq!(variants[0]["properties"]["score"]["minimum"], 1);
        assert_eq!(variants[0]["properties"]["score"]["maximum"], 5);
        assert_eq!(variants[1]["properties"]["score"]["maximum"], 10);
        assert_eq!(schema["properties"]["criteria"]["minItems"], 2);
        let mut objects = 0;
        walk(schema, &mut |o| {
            if o.get("type") == Some(&json!("object")) {
                objects += 1;
                assert_eq!(o.get("additionalProperties"), Some(&json!(false)));
                let props: Vec<&String> = o
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().collect())
                    .unwrap_or_default();
                let req: Vec<&str> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                assert_eq!(props.len(), req.len());
                assert!(props.iter().all(|p| req.contains(&p.as_str())));
            }
        });
        assert_eq!(objects, 3);
    }

    #[test]
    fn same_scale_uses_one_enum() {
        let r = Rubric {
            criteria: vec![crit("a", 1, 5), crit("b", 1, 5)],
            passing_score: 50.0,
        };
        let s = grading_schema(&r);
        let item = &s["properties"]["criteria"]["items"];
        assert_eq!(
            item["properties"]["criterion_id"]["enum"],
            json!(["a", "b"])
        );
        assert_eq!(item["properties"]["score"]["minimum"], 1);
    }

    #[test]
    fn valid_answer_in_any_wrapper() {
        let r = rubric();
        let t = transcript();
        let direct = validate_llm_answer(&r, &t, &good());
        let Ok(scores) = direct else {
            unreachable!("{direct:?}")
        };
        // Rubric order, and quotes rewritten to the exact transcript text.
        assert_eq!(scores[0].criterion_id, "discovery");
        assert_eq!(
            scores[0].evidence[0].quote,
            "What does your onboarding   look like today"
        );
        assert_eq!(
            scores[1].evidence[0].quote,
            "Could we book a demo on Tuesday at 2pm"
        );
        assert_eq!(scores[1].evidence[1].turn_id, "t4");
        assert_eq!(scores[1].evidence[1].quote, "Sure, Tuesday works");
        for s in &scores {
            for e in &s.evidence {
                assert!(
                    t.iter()
                        .any(|x| x.id == e.turn_id && x.text.contains(&e.quote))
                );
            }
        }
        let content = Value::String(good().to_string());
        let message = json!({"role": "assistant", "content": good().to_string(), "refusal": null});
        let response = json!({"choices": [{"message": message.clone(), "finish_reason": "stop"}]});
        for v in [content, message, response] {
            assert_eq!(validate_llm_answer(&r, &t, &v).as_ref(), Ok(&scores));
        }
        let full = parse_llm_answer(&r, &t, &good());
        assert!(full.is_ok_and(|a| a.closed && a.summary == "Booked a demo."));
    }

    #[test]
    fn rejects_bad_answers() {
        let r = rubric();
        let t = transcript();
        let check = |v: Value| validate_llm_answer(&r, &t, &v).err();

        let mut missing = good();
        if let Some(a) = missing["criteria"].as_array_mut() {
            a.remove(1);
        }
        assert_eq!(
            check(missing),
            Some(AnswerError::MissingCriteria(vec!["discovery".into()]))
        );

        let mut range = good();
        range["criteria"][1]["score"] = json!(6);
        assert!(matches!(
            check(range),
            Some(AnswerError::ScoreOutOfRange { min: 1, max: 5, .. })
        ));

        let mut fractional = good();
        fractional["criteria"][1]["score"] = json!(3.5);
        assert!(matches!(check(fractional), Some(AnswerError::Shape(_))));

        let mut invented = good();
        invented["criteria"][0]["evidence"] = json!(["We would love a demo next week"]);
        assert!(matches!(
            check(invented),
            Some(AnswerError::QuoteNotFound { .. })
        ));

        let mut partial_word = good();
        partial_word["criteria"][0]["evidence"] = json!(["ould we book"]);
        assert!(matches!(
            check(partial_word),
            Some(AnswerError::QuoteNotFound { .. })
        ));

        let mut unknown = good();
        unknown["criteria"][0]["criterion_id"] = json!("charisma");
        assert_eq!(
            check(unknown),
            Some(AnswerError::UnknownCriterion("charisma".into()))
        );

        let mut dup = good();
        dup["criteria"][0]["criterion_id"] = json!("discovery");
        dup["criteria"][0]["score"] = json!(3);
        assert_eq!(
            check(dup),
            Some(AnswerError::DuplicateCriterion("discovery".into()))
        );

        let mut no_closed = good();
        if let Some(o) = no_closed.as_object_mut() {
            o.remove("closed");
        }
        assert!(matches!(check(no_closed), Some(AnswerError::Shape(_))));

        let refusal =
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
        assert_eq!(
            check(refusal),
            Some(AnswerError::Refusal("I can't help with that.".into()))
        );
        assert_eq!(
            check(json!({"role": "assistant", "content": ""})),
            Some(AnswerError::EmptyContent)
        );
        assert_eq!(check(Value::Null), Some(AnswerError::EmptyContent));
        assert!(matches!(
            check(json!("{not json")),
            Some(AnswerError::NotJson(_))
        ));
        assert_eq!(
            check(
                json!({"choices": [{"message": {"content": "{\"crit"}, "finish_reason": "length"}]})
            ),
            Some(AnswerError::Truncated)
        );
    }

    #[test]
    fn quotes_with_ellipsis_and_fences() {
        let t = transcript();
        let e = locate_quote(&t, "Hi Dana… look like today");
        assert_eq!(
            e.map(|e| e.quote),
            Some("Hi Dana!  What does your onboarding   look like today".to_string())
        );
        assert!(locate_quote(&t, "look like today ... Hi Dana").is_none());
        let fenced = Value::String(format!("```json\n{}\n```", good()));
        assert!(validate_llm_answer(&rubric(), &t, &fenced).is_ok());
        assert!(render_transcript(&t).starts_with("[t1] Trainee: Hi Dana!"));
    }
}
