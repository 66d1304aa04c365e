//! SubRip: cues separated by blank lines: a number, a timing `HH:MM:SS,mmm --> HH:MM:SS,mmm`,
//! and text lines `Speaker: text`.

use super::{BadLine, Utterance, speaker_line, timing_line};

pub fn parse(content: &str) -> Result<Vec<Utterance>, BadLine> {
    let lines: Vec<&str> = content.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let number_line = lines[i].trim();
        if number_line.is_empty() || !number_line.chars().all(|c| c.is_ascii_digit()) {
            return Err(BadLine::at(i + 1, "expected the cue number"));
        }
        let timing = lines
            .get(i + 1)
            .ok_or_else(|| BadLine::at(i + 1, "the cue has no timing line"))?;
        let (start, end) = timing_line(timing.trim(), i + 2)?;
        let mut j = i + 2;
        if j >= lines.len() || lines[j].trim().is_empty() {
            return Err(BadLine::at(i + 2, "the cue has no text"));
        }
        while j < lines.len() && !lines[j].trim().is_empty() {
            let (speaker, text) = speaker_line(lines[j].trim(), j + 1)?;
            out.push(Utterance {
                speaker,
                text,
                start_ms: Some(start),
                end_ms: Some(end),
                line: j + 1,
            });
            j += 1;
        }
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbered_cues() {
        let u = parse(
            "1\n00:00:00,500 --> 00:00:02,000\nRep: Hello, Bob.\n\n2\n00:00:02,100 --> 00:00:04,000\nBob: It is too expensive.\nRep: Compared to what?\n",
        )
        .unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!((u[0].start_ms, u[0].end_ms), (Some(500), Some(2000)));
        assert_eq!(u[1].speaker, "Bob");
        assert_eq!(u[2].line, 8);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let no_number = "1\n00:00:00,500 --> 00:00:02,000\nRep: Hello.\n\nx\n00:00:02,100 --> 00:00:04,000\nBob: Hi.\n";
        assert_eq!(parse(no_number).unwrap_err().line, 5);
        let bad_timing = "1\n00:00:00,500 --> soon\nRep: Hello.\n";
        assert_eq!(parse(bad_timing).unwrap_err().line, 2);
        let no_speaker = "1\n00:00:00,500 --> 00:00:02,000\nHello.\n";
        assert_eq!(parse(no_speaker).unwrap_err().line, 3);
    }
}
