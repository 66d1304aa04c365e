//! Reading an uploaded transcript of a real customer call (ImportCall): plain `Speaker: text`
//! lines, WebVTT, SRT or JSON segments, one file per format. Every format yields the same
//! [`Utterance`]s; a line that cannot be read is a [`BadLine`] naming its 1-based line number,
//! which the use case turns into a field violation on `content`. The rep's label then splits
//! the speakers into trainee (the rep) and persona (the customer): [`assign_speakers`].

mod json;
mod plain;
mod srt;
mod webvtt;

use super::transcript::{Speaker, TranscriptSegment};

/// A transcript file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    WebVtt,
    Srt,
    Json,
}

/// One utterance as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// The speaker label as written (trimmed).
    pub speaker: String,
    pub text: String,
    /// Offsets from the call's start, when the format has timings.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    /// Where it starts in the file (1-based), for error messages.
    pub line: usize,
}

/// Why a file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number; 0 when the problem is the file as a whole.
    pub line: usize,
    pub reason: String,
}

impl BadLine {
    fn at(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }

    /// The violation's description: names the line.
    pub fn describe(&self) -> String {
        if self.line == 0 {
            self.reason.clone()
        } else {
            format!("line {}: {}", self.line, self.reason)
        }
    }
}

/// The longest speaker label accepted.
pub const MAX_LABEL_CHARS: usize = 64;

/// Guesses the format of `content`: a WEBVTT header, a JSON array or object, an SRT cue
/// (a number line followed by a `-->` timing line), else plain lines.
pub fn detect(content: &str) -> Format {
    let body = content.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with("WEBVTT") {
        return Format::WebVtt;
    }
    if body.starts_with('[') || body.starts_with('{') {
        return Format::Json;
    }
    let mut lines = body.lines().map(str::trim);
    if let (Some(first), Some(second)) = (lines.next(), lines.next())
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_digit())
        && second.contains("-->")
    {
        return Format::Srt;
    }
    Format::Plain
}

/// Reads `content` as `format`. An empty result is refused: a call has something said.
pub fn parse(content: &str, format: Format) -> Result<Vec<Utterance>, BadLine> {
    let content = content.trim_start_matches('\u{feff}');
    let out = match format {
        Format::Plain => plain::parse(content)?,
        Format::WebVtt => webvtt::parse(content)?,
        Format::Srt => srt::parse(content)?,
        Format::Json => json::parse(content)?,
    };
    if out.is_empty() {
        return Err(BadLine::at(0, "the file holds no utterance"));
    }
    Ok(out)
}

/// `Speaker: text` (shared by plain lines and cue texts). The label must be short and
/// non-empty and the text non-empty.
fn speaker_line(line: &str, number: usize) -> Result<(String, String), BadLine> {
    let Some((label, text)) = line.split_once(':') else {
        return Err(BadLine::at(number, "expected `Speaker: text`"));
    };
    let label = label.trim();
    let text = text.trim();
    if label.is_empty() {
        return Err(BadLine::at(number, "the speaker is empty"));
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(BadLine::at(
            number,
            format!("the speaker label is longer than {MAX_LABEL_CHARS} characters"),
        ));
    }
    if text.is_empty() {
        return Err(BadLine::at(number, "the text is empty"));
    }
    Ok((label.to_owned(), text.to_owned()))
}

/// A cue timing `HH:MM:SS.mmm` / `MM:SS.mmm` (WebVTT) or `HH:MM:SS,mmm` (SRT), in ms.
fn timestamp_ms(s: &str) -> Option<u64> {
    let s = s.trim().replace(',', ".");
    let (clock, frac) = s.split_once('.')?;
    if frac.len() != 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let nums: Option<Vec<u64>> = parts
        .iter()
        .map(|p| {
            (!p.is_empty() && p.len() <= 2 || parts.len() == 3 && p.len() <= 3)
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect();
    let nums = nums?;
    let (h, m, sec) = match nums.as_slice() {
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    if m > 59 || sec > 59 {
        return None;
    }
    let ms: u64 = frac.parse().ok()?;
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// `start --> end` (cue settings after the end are ignored).
fn timing_line(line: &str, number: usize) -> Result<(u64, u64), BadLine> {
    let bad = || BadLine::at(number, "expected a cue timing `start --> end`");
    let (a, b) = line.split_once("-->").ok_or_else(bad)?;
    let b = b.split_whitespace().next().ok_or_else(bad)?;
    let start = timestamp_ms(a).ok_or_else(bad)?;
    let end = timestamp_ms(b).ok_or_else(bad)?;
    if end < start {
        return Err(BadLine::at(number, "the cue ends before it starts"));
    }
    Ok((start, end))
}

/// Turns utterances into transcript segments: `rep` (compared without case) is the trainee,
/// every other speaker the customer (the persona side). `None` when no utterance is the rep's.
pub fn assign_speakers(utterances: &[Utterance], rep: &str) -> Option<Vec<TranscriptSegment>> {
    let rep = rep.trim().to_lowercase();
    if !utterances.iter().any(|u| u.speaker.to_lowercase() == rep) {
        return None;
    }
    // Without timings, utterances keep their order at one-second steps, so durations and
    // talk ratios stay defined.
    let mut last_end = 0u64;
    let segments = utterances
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let start = u.start_ms.unwrap_or(last_end);
            let end = u
                .end_ms
                .unwrap_or_else(|| start.saturating_add(1000))
                .max(start);
            last_end = end;
            TranscriptSegment {
                segment_id: format!("import-{i}"),
                speaker: if u.speaker.to_lowercase() == rep {
                    Speaker::Trainee
                } else {
                    Speaker::Persona
                },
                text: u.text.clone(),
                start_ms: start,
                end_ms: end,
                is_final: true,
            }
        })
        .collect();
    Some(segments)
}

/// The distinct speaker labels, in order of first appearance (for an unknown rep's message).
pub fn speakers(utterances: &[Utterance]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in utterances {
        if !out.iter().any(|s| s.eq_ignore_ascii_case(&u.speaker)) {
            out.push(u.speaker.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect("WEBVTT\n\n00:00.000 --> 00:01.000\nA: hi"),
            Format::WebVtt
        );
        assert_eq!(
            detect("\u{feff}[{\"speaker\":\"A\",\"text\":\"hi\"}]"),
            Format::Json
        );
        assert_eq!(detect("{\"segments\": []}"), Format::Json);
        assert_eq!(
            detect("1\n00:00:00,000 --> 00:00:01,000\nA: hi\n"),
            Format::Srt
        );
        assert_eq!(detect("Rep: hello\nCustomer: hi"), Format::Plain);
    }

    #[test]
    fn timestamps_read_both_styles() {
        assert_eq!(timestamp_ms("00:01.500"), Some(1500));
        assert_eq!(timestamp_ms("01:02:03.004"), Some(3_723_004));
        assert_eq!(timestamp_ms("01:02:03,004"), Some(3_723_004));
        assert_eq!(timestamp_ms("1:2"), None);
        assert_eq!(timestamp_ms("00:61.000"), None);
        assert_eq!(timestamp_ms("aa:bb.ccc"), None);
    }

    #[test]
    fn rep_becomes_the_trainee_and_order_is_kept() {
        let u = parse(
            "Dana: Hi, this is Dana.\nBob: Not interested.\ndana: Fair enough.",
            Format::Plain,
        )
        .unwrap();
        let segs = assign_speakers(&u, "DANA").unwrap();
        let who: Vec<Speaker> = segs.iter().map(|s| s.speaker).collect();
        assert_eq!(who, [Speaker::Trainee, Speaker::Persona, Speaker::Trainee]);
        assert!(segs.windows(2).all(|w| w[0].end_ms <= w[1].start_ms));
        assert!(assign_speakers(&u, "Carol").is_none());
        assert_eq!(speakers(&u), ["Dana", "Bob"]);
    }

    #[test]
    fn a_file_at_the_default_limits_parses_in_every_format() {
        // 5,000 segments of ~200 bytes: the default max_segments_per_session and about the
        // default max_transcript_bytes (1 MiB) of text.
        let text = "x".repeat(190);
        let n = 5_000;
        let mut plain = String::new();
        let mut vtt = String::from("WEBVTT\n");
        let mut srt = String::new();
        let mut json = Vec::new();
        for i in 0..n {
            let who = if i % 2 == 0 { "Rep" } else { "Customer" };
            let (a, b) = (i * 2, i * 2 + 1);
            let t = |s: u64, sep: char| {
                format!("{:02}:{:02}:{:02}{sep}000", s / 3600, s / 60 % 60, s % 60)
            };
            plain.push_str(&format!("{who}: {text}\n"));
            vtt.push_str(&format!(
                "\n{} --> {}\n<v {who}>{text}\n",
                t(a, '.'),
                t(b, '.')
            ));
            srt.push_str(&format!(
                "{}\n{} --> {}\n{who}: {text}\n\n",
                i + 1,
                t(a, ','),
                t(b, ',')
            ));
            json.push(serde_json::json!({"speaker": who, "text": text, "start": a, "end": b}));
        }
        let json = serde_json::to_string(&json).unwrap();
        for (format, content) in [
            (Format::Plain, plain),
            (Format::WebVtt, vtt),
            (Format::Srt, srt),
            (Format::Json, json),
        ] {
            assert_eq!(detect(&content), format);
            let started = std::time::Instant::now();
            let u = parse(&content, format).unwrap();
            let segs = assign_speakers(&u, "rep").unwrap();
            eprintln!(
                "{format:?}: {} bytes, {} segments parsed in {:?}",
                content.len(),
                segs.len(),
                started.elapsed()
            );
            assert_eq!(segs.len(), n as usize);
            assert_eq!(segs[1].speaker, Speaker::Persona);
        }
    }

    #[test]
    fn an_empty_file_is_refused() {
        let err = parse("\n\n  \n", Format::Plain).unwrap_err();
        assert_eq!(err.line, 0);
        assert!(parse("WEBVTT\n", Format::WebVtt).is_err());
        assert!(parse("[]", Format::Json).is_err());
    }
}
