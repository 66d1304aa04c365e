//! Plain text: one utterance per line, `Speaker: text`; blank lines are skipped.

use super::{BadLine, Utterance, speaker_line};

pub fn parse(content: &str) -> Result<Vec<Utterance>, BadLine> {
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (speaker, text) = speaker_line(line, i + 1)?;
        out.push(Utterance {
            speaker,
            text,
            start_ms: None,
            end_ms: None,
            line: i + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_speaker_lines() {
        let u = parse("Rep: Hello there.\n\nCustomer: Who is this?\r\nRep: Dana, from Acme: quick question.\n")
            .unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(
            (u[1].speaker.as_str(), u[1].text.as_str()),
            ("Customer", "Who is this?")
        );
        // Only the first colon separates the speaker.
        assert_eq!(u[2].text, "Dana, from Acme: quick question.");
        assert_eq!(u[2].line, 4);
    }

    #[test]
    fn a_line_without_speaker_names_its_number() {
        let err = parse("Rep: Hello.\nCustomer: Hi.\nthis line has no speaker\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.describe().starts_with("line 3:"), "{}", err.describe());
        assert_eq!(parse("Rep:   \n").unwrap_err().line, 1);
        assert_eq!(parse(": text\n").unwrap_err().line, 1);
    }
}
