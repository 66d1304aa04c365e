//! WebVTT: a `WEBVTT` header, then cues separated by blank lines: an optional identifier, a
//! timing line `start --> end`, and text lines, each `<v Speaker>text` or `Speaker: text`.
//! NOTE, STYLE and REGION blocks are skipped.

use super::{BadLine, MAX_LABEL_CHARS, Utterance, speaker_line, timing_line};

pub fn parse(content: &str) -> Result<Vec<Utterance>, BadLine> {
    let lines: Vec<&str> = content.lines().collect();
    match lines.first() {
        Some(first) if first.trim_end() == "WEBVTT" || first.starts_with("WEBVTT ") => {}
        _ => return Err(BadLine::at(1, "a WebVTT file starts with `WEBVTT`")),
    }
    let mut out = Vec::new();
    let mut i = 1;
    // Header lines run to the first blank line.
    while i < lines.len() && !lines[i].trim().is_empty() {
        i += 1;
    }
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let block_start = i;
        let mut block_end = i;
        while block_end < lines.len() && !lines[block_end].trim().is_empty() {
            block_end += 1;
        }
        let block = &lines[block_start..block_end];
        i = block_end;
        let head = block[0].trim();
        if head.starts_with("NOTE") || head == "STYLE" || head == "REGION" {
            continue;
        }
        // The identifier line is optional.
        let (timing_at, timing) = match block.get(1) {
            _ if head.contains("-->") => (block_start, head),
            Some(t) if t.contains("-->") => (block_start + 1, t.trim()),
            // Neither an identifier before a timing nor a timing: the head is the bad line.
            _ => (block_start, head),
        };
        let (start, end) = timing_line(timing, timing_at + 1)?;
        let text_from = timing_at + 1;
        if text_from >= block_end {
            return Err(BadLine::at(timing_at + 1, "the cue has no text"));
        }
        for (n, line) in lines[text_from..block_end].iter().enumerate() {
            let number = text_from + n + 1;
            let (speaker, text) = cue_text(line.trim(), number)?;
            out.push(Utterance {
                speaker,
                text,
                start_ms: Some(start),
                end_ms: Some(end),
                line: number,
            });
        }
    }
    Ok(out)
}

/// `<v Speaker>text` (closing `</v>` optional) or `Speaker: text`.
fn cue_text(line: &str, number: usize) -> Result<(String, String), BadLine> {
    if let Some(rest) = line.strip_prefix("<v") {
        let Some((label, text)) = rest.split_once('>') else {
            return Err(BadLine::at(number, "unclosed voice tag `<v Speaker>`"));
        };
        // `<v.loud Speaker>`: classes come before the space.
        let label = label.split_once(' ').map(|(_, l)| l).unwrap_or("").trim();
        let text = text.replace("</v>", "");
        let text = text.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(BadLine::at(number, "the voice tag names no speaker"));
        }
        if text.is_empty() {
            return Err(BadLine::at(number, "the text is empty"));
        }
        return Ok((label.to_owned(), text.to_owned()));
    }
    speaker_line(line, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "WEBVTT - call\n\nNOTE exported by the dialer\n\n1\n00:00:01.000 --> 00:00:03.500\n<v Dana>Hi Bob, Dana from Acme.</v>\n\n00:03.600 --> 00:06.000 align:start\n<v.loud Bob>We already have a vendor.\n\n00:06.100 --> 00:08.000\nDana: What made you pick them?\n";

    #[test]
    fn reads_voice_tags_and_speaker_lines() {
        let u = parse(GOOD).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u[0].speaker, "Dana");
        assert_eq!(u[0].text, "Hi Bob, Dana from Acme.");
        assert_eq!((u[0].start_ms, u[0].end_ms), (Some(1000), Some(3500)));
        assert_eq!(u[1].speaker, "Bob");
        assert_eq!(u[1].start_ms, Some(3600));
        assert_eq!(u[2].speaker, "Dana");
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(parse("WEBVTX\n").unwrap_err().line, 1);
        let bad_timing = "WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nDana: hi\n";
        assert_eq!(parse(bad_timing).unwrap_err().line, 3);
        let no_speaker =
            "WEBVTT\n\n00:01.000 --> 00:02.000\nDana: hi\n\n00:02.000 --> 00:03.000\njust words\n";
        let err = parse(no_speaker).unwrap_err();
        assert_eq!(err.line, 7, "{}", err.describe());
        let backwards = "WEBVTT\n\n00:05.000 --> 00:02.000\nDana: hi\n";
        assert_eq!(parse(backwards).unwrap_err().line, 3);
    }
}
