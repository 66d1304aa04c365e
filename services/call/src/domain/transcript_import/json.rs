//! JSON segments: an array of `{"speaker", "text", "start"?, "end"?}` (offsets in seconds),
//! or an object holding that array under `"segments"`. A syntax error names the line serde
//! reports; a bad segment names the line its object starts on.

use serde::Deserialize;
use serde_json::Value;

use super::{BadLine, MAX_LABEL_CHARS, Utterance};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    segments: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Segment {
    speaker: String,
    text: String,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    end: Option<f64>,
}

pub fn parse(content: &str) -> Result<Vec<Utterance>, BadLine> {
    let syntax = |e: serde_json::Error| BadLine::at(e.line().max(1), format!("invalid JSON: {e}"));
    let wrapped = content.trim_start().starts_with('{');
    let items: Vec<Value> = if wrapped {
        serde_json::from_str::<Wrapped>(content)
            .map_err(syntax)?
            .segments
    } else {
        serde_json::from_str(content).map_err(syntax)?
    };
    let lines = segment_lines(content, if wrapped { 2 } else { 1 });
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let bad = |why: String| BadLine::at(line, format!("segment {i}: {why}"));
        let seg: Segment = serde_json::from_value(item).map_err(|e| bad(e.to_string()))?;
        let speaker = seg.speaker.trim();
        if speaker.is_empty() || speaker.chars().count() > MAX_LABEL_CHARS {
            return Err(bad(format!(
                "speaker must be 1 to {MAX_LABEL_CHARS} characters"
            )));
        }
        let text = seg.text.trim();
        if text.is_empty() {
            return Err(bad("text is empty".into()));
        }
        let ms = |v: Option<f64>, field: &str| -> Result<Option<u64>, BadLine> {
            match v {
                None => Ok(None),
                Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
                    Ok(Some((s * 1000.0).round() as u64))
                }
                Some(_) => Err(bad(format!("{field} must be seconds between 0 and 86400"))),
            }
        };
        let start = ms(seg.start, "start")?;
        let end = ms(seg.end, "end")?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(bad("end is before start".into()));
        }
        out.push(Utterance {
            speaker: speaker.to_owned(),
            text: text.to_owned(),
            start_ms: start,
            end_ms: end,
            line,
        });
    }
    Ok(out)
}

/// The 1-based line each element of the segments array starts on: the array is the
/// outermost container (`depth` 1) or the wrapper's only value (`depth` 2). Only called on
/// content serde already accepted, so strings and nesting are well formed.
fn segment_lines(content: &str, depth: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut open = 0usize;
    let mut line = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_item = false;
    for c in content.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if expect_item && !c.is_whitespace() && c != ']' {
            out.push(line);
            expect_item = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                open += 1;
                expect_item = c == '[' && open == depth;
            }
            ']' | '}' => {
                open = open.saturating_sub(1);
                expect_item = false;
            }
            ',' if open == depth => expect_item = true,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arrays_and_wrapped_segments() {
        let u = parse(r#"[{"speaker": "Rep", "text": "Hi", "start": 0.5, "end": 1.25}, {"speaker": "Bob", "text": "Hello"}]"#)
            .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].start_ms, u[0].end_ms), (Some(500), Some(1250)));
        assert_eq!(u[1].start_ms, None);
        let w = parse("{\n  \"segments\": [\n    {\"speaker\": \"Rep\", \"text\": \"Hi\"}\n  ]\n}")
            .unwrap();
        assert_eq!(w[0].line, 3);
    }

    #[test]
    fn bad_segments_name_their_line() {
        let missing = "[\n  {\"speaker\": \"Rep\", \"text\": \"Hi\"},\n  {\"speaker\": \"Bob\"}\n]";
        let err = parse(missing).unwrap_err();
        assert_eq!(err.line, 3, "{}", err.describe());
        assert!(err.reason.contains("text"), "{}", err.reason);
        let syntax = "[\n  {\"speaker\": \"Rep\", \"text\": \"Hi\"},\n  {\"speaker\": \"Bob\" \"text\": \"x\"}\n]";
        assert_eq!(parse(syntax).unwrap_err().line, 3);
        let negative = "[{\"speaker\": \"Rep\", \"text\": \"Hi\", \"start\": -1}]";
        assert_eq!(parse(negative).unwrap_err().line, 1);
    }
}
