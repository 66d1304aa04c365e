//! Step 1 of the pipeline: turn a provider's raw transcript into clean turns.

use super::text::{BACKCHANNELS, collapse_ws, is_filler, words};
use super::types::{RawTurn, Speaker, Transcript, Turn};

/// Cleans a raw transcript:
/// - maps speaker labels (see [`Speaker::from_label`]); unknown labels become `System` so they
///   never count as either party;
/// - trims and collapses whitespace, straightens typographic apostrophes (so "can’t" matches
///   "can't" in the lexicons);
/// - drops empty turns and turns that are only fillers ("um", "mm-hmm", "okay"…), except a bare
///   acknowledgement that answers the other party's question, which is an answer;
/// - merges consecutive fragments of the same speaker (also across a dropped filler), keeping
///   the first fragment's id, the first start and the last end.
///
/// Turns without an id get `turn-<index>` so quotes can still point at them.
pub fn clean(raw: &[RawTurn]) -> Transcript {
    let mut out: Transcript = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let speaker = Speaker::from_label(&r.speaker_label).unwrap_or(Speaker::System);
        let text = collapse_ws(&r.text.replace(['\u{2019}', '\u{2018}'], "'"));
        if text.is_empty() {
            continue;
        }
        if is_only_fillers(&text) {
            let answers_question = !words(&text).iter().all(|w| is_filler(w))
                && out
                    .last()
                    .is_some_and(|p| p.speaker != speaker && p.text.trim_end().ends_with('?'));
            if !answers_question {
                continue;
            }
        }
        let id = if r.id.trim().is_empty() {
            format!("turn-{i}")
        } else {
            r.id.trim().to_string()
        };
        match out.last_mut() {
            Some(prev) if prev.speaker == speaker => {
                prev.text.push(' ');
                prev.text.push_str(&text);
                prev.end_ms = match (prev.end_ms, r.end_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => b.or(a),
                };
                if prev.start_ms.is_none() {
                    prev.start_ms = r.start_ms;
                }
            }
            _ => out.push(Turn {
                id,
                speaker,
                text,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
            }),
        }
    }
    out
}

/// Every word is a filler or a bare acknowledgement.
pub fn is_only_fillers(text: &str) -> bool {
    let w = words(text);
    !w.is_empty()
        && w.iter()
            .all(|w| is_filler(w) || BACKCHANNELS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, who: &str, text: &str, s: Option<u64>, e: Option<u64>) -> RawTurn {
        RawTurn {
            id: id.into(),
            speaker_label: who.into(),
            text: text.into(),
            start_ms: s,
            end_ms: e,
        }
    }

    #[test]
    fn maps_labels_merges_fragments_and_drops_fillers() {
        let input = vec![
            raw(
                "1",
                "assistant",
                "  Hello,   this is Dana. ",
                Some(0),
                Some(1500),
            ),
            raw("2", "user", "Hi Dana!", Some(1600), Some(2200)),
            raw(
                "3",
                "user",
                "  I'm calling   about  your onboarding.",
                Some(2300),
                Some(4000),
            ),
            raw("4", "assistant", "Mm-hmm.", Some(4100), Some(4300)),
            raw(
                "5",
                "user",
                "Um, how many reps do you hire a year?",
                Some(4400),
                Some(6000),
            ),
            raw("6", "assistant", "uh", None, None),
            raw("7", "bot", "About forty.", Some(6500), Some(7000)),
            raw("8", "user", "   ", None, None),
            raw("9", "customer", "Okay", None, None),
        ];
        let t = clean(&input);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].id, "1");
        assert_eq!(t[0].speaker, Speaker::Persona);
        assert_eq!(t[0].text, "Hello, this is Dana.");
        // 2, 3 and 5 merge: the persona's "Mm-hmm." between them is dropped.
        assert_eq!(t[1].id, "2");
        assert_eq!(t[1].speaker, Speaker::Trainee);
        assert_eq!(
            t[1].text,
            "Hi Dana! I'm calling about your onboarding. Um, how many reps do you hire a year?"
        );
        assert_eq!((t[1].start_ms, t[1].end_ms), (Some(1600), Some(6000)));
        // "uh" and the trailing "Okay" (answering nothing) are dropped.
        assert_eq!(t[2].id, "7");
        assert_eq!(t[2].text, "About forty.");
    }

    #[test]
    fn keeps_an_acknowledgement_that_answers_a_question() {
        let input = vec![
            raw(
                "a",
                "user",
                "Does Tuesday at 2 work for a demo?",
                None,
                None,
            ),
            raw("b", "assistant", "Okay.", None, None),
            raw("c", "user", "Great, I'll send the invite.", None, None),
        ];
        let t = clean(&input);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].text, "Okay.");
        // A pure filler never answers anything.
        let t2 = clean(&[
            raw("a", "user", "Does Tuesday work?", None, None),
            raw("b", "assistant", "Hmm.", None, None),
        ]);
        assert_eq!(t2.len(), 1);
    }

    #[test]
    fn unknown_labels_and_missing_ids() {
        let t = clean(&[raw("", "narrator", "Call connected", None, None)]);
        assert_eq!(t[0].speaker, Speaker::System);
        assert_eq!(t[0].id, "turn-0");
    }
}
