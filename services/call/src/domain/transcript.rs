//! Transcript assembly: partial (interim speech-recognition) and final segments arriving
//! from AppendTranscript or provider webhooks are folded into one ordered transcript.
//!
//! Rules (mirroring `TranscriptSegment` in the call API):
//! - a segment whose id is stored and not final replaces it (a partial is refined, or
//!   finalised);
//! - once a segment is final, anything with its id is a duplicate and ignored, as is an exact
//!   repeat of a stored partial, so retries and repeated webhooks are harmless;
//! - a segment without an id (providers that send none) replaces the latest partial of the
//!   same speaker, else it is added under a generated id;
//! - segments are ordered by start offset, then arrival.

use serde::{Deserialize, Serialize};

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Speaker {
    Trainee,
    Persona,
    /// Provider or system messages; not graded.
    System,
}

/// One utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    /// Unique within the session; empty means "none given" (see the module rules).
    pub segment_id: String,
    pub speaker: Speaker,
    pub text: String,
    /// Offsets from the session's start, in milliseconds.
    pub start_ms: u64,
    pub end_ms: u64,
    /// False for interim results that may still change.
    pub is_final: bool,
}

/// Who recorded a segment: its provenance, set by the server from the path it came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// The server's persona engine (text roleplay).
    PersonaEngine,
    /// The voice provider's signed webhook (live transcript, end-of-call report).
    VoiceProvider,
    /// The trainee's client (Converse turns, AppendTranscript).
    TraineeClient,
    /// An uploaded transcript file of a real call (ImportCall).
    Import,
}

impl Source {
    /// The speakers a source may write. A trainee's client writes only the trainee's side; the
    /// provider and the persona engine speak for the call.
    pub fn may_write(self, speaker: Speaker) -> bool {
        match self {
            Source::TraineeClient => speaker == Speaker::Trainee,
            Source::PersonaEngine | Source::VoiceProvider | Source::Import => true,
        }
    }
}

/// A session's transcript limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_segments: u64,
    pub max_segment_bytes: u64,
    pub max_transcript_bytes: u64,
}

/// Which limit a write would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// The session already holds `limit` segments.
    Segments { limit: u64 },
    /// One segment's text is `bytes` long, over `limit`.
    SegmentBytes { bytes: u64, limit: u64 },
    /// The transcript would grow past `limit` bytes.
    TranscriptBytes { limit: u64 },
}

impl Limits {
    /// A segment of `bytes` bytes alone.
    pub fn check_segment(&self, bytes: u64) -> Result<(), Exceeded> {
        if bytes > self.max_segment_bytes {
            return Err(Exceeded::SegmentBytes {
                bytes,
                limit: self.max_segment_bytes,
            });
        }
        Ok(())
    }

    /// A write onto a transcript of `count` segments and `bytes` bytes that adds `added`
    /// segments and `grow` bytes (negative when a replacement is shorter).
    pub fn check_write(
        &self,
        count: u64,
        bytes: u64,
        added: u64,
        grow: i64,
    ) -> Result<(), Exceeded> {
        if added > 0 && count.saturating_add(added) > self.max_segments {
            return Err(Exceeded::Segments {
                limit: self.max_segments,
            });
        }
        if grow > 0 && bytes.saturating_add(grow.unsigned_abs()) > self.max_transcript_bytes {
            return Err(Exceeded::TranscriptBytes {
                limit: self.max_transcript_bytes,
            });
        }
        Ok(())
    }
}

/// What to do with an incoming segment given the stored one with its id (or, without an id,
/// the latest partial of its speaker and source): the module rules, one segment at a time, so
/// the store never loads the whole transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Insert,
    Replace,
    Duplicate,
    /// The id belongs to a segment another source recorded: refused.
    Foreign,
}

/// See [`Fold`]. `incoming` must carry the stored id when one was matched, and
/// `end_ms >= start_ms` ([`normalize`]).
pub fn fold(
    stored: Option<(&TranscriptSegment, Source)>,
    incoming: &TranscriptSegment,
    source: Source,
) -> Fold {
    match stored {
        None => Fold::Insert,
        Some((_, s)) if s != source => Fold::Foreign,
        Some((st, _)) if st.is_final || st == incoming => Fold::Duplicate,
        Some(_) => Fold::Replace,
    }
}

/// An end before the start is taken as the start.
pub fn normalize(mut segment: TranscriptSegment) -> TranscriptSegment {
    if segment.end_ms < segment.start_ms {
        segment.end_ms = segment.start_ms;
    }
    segment
}

/// What [`Transcript::apply`] did with a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Added as a new segment under this id.
    Inserted(String),
    /// Replaced the stored non-final segment with this id.
    Replaced(String),
    /// Ignored: the id is already final, or the same partial was already stored.
    Duplicate(String),
}

impl ApplyOutcome {
    pub fn segment_id(&self) -> &str {
        match self {
            ApplyOutcome::Inserted(id)
            | ApplyOutcome::Replaced(id)
            | ApplyOutcome::Duplicate(id) => id,
        }
    }

    /// Whether the transcript changed.
    pub fn changed(&self) -> bool {
        !matches!(self, ApplyOutcome::Duplicate(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    segment: TranscriptSegment,
}

/// A session's transcript being assembled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// Kept sorted by (start_ms, seq).
    entries: Vec<Entry>,
    next_seq: u64,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a transcript from stored segments (in their stored order).
    pub fn from_segments(segments: impl IntoIterator<Item = TranscriptSegment>) -> Self {
        let mut t = Transcript::new();
        for s in segments {
            t.push(s);
        }
        t
    }

    /// Folds one segment in; see the module rules.
    pub fn apply(&mut self, mut segment: TranscriptSegment) -> ApplyOutcome {
        if segment.end_ms < segment.start_ms {
            segment.end_ms = segment.start_ms;
        }
        let existing = if segment.segment_id.is_empty() {
            // No id: the latest (by arrival) partial of the same speaker is the one it refines.
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.segment.speaker == segment.speaker && !e.segment.is_final)
                .max_by_key(|(_, e)| e.seq)
                .map(|(i, _)| i)
        } else {
            self.entries
                .iter()
                .position(|e| e.segment.segment_id == segment.segment_id)
        };
        match existing {
            Some(i) => {
                let stored = &self.entries[i].segment;
                let id = stored.segment_id.clone();
                segment.segment_id = id.clone();
                if stored.is_final || *stored == segment {
                    return ApplyOutcome::Duplicate(id);
                }
                let old = self.entries.remove(i);
                // A replacement keeps its original arrival rank so ties stay stable.
                self.insert_sorted(Entry {
                    seq: old.seq,
                    segment,
                });
                ApplyOutcome::Replaced(id)
            }
            None => {
                if segment.segment_id.is_empty() {
                    segment.segment_id = format!("auto-{}", self.next_seq);
                }
                let id = segment.segment_id.clone();
                self.push(segment);
                ApplyOutcome::Inserted(id)
            }
        }
    }

    /// All segments, partial and final, ordered by start offset then arrival.
    pub fn segments(&self) -> impl Iterator<Item = &TranscriptSegment> {
        self.entries.iter().map(|e| &e.segment)
    }

    /// The final segments only, in order.
    pub fn final_segments(&self) -> impl Iterator<Item = &TranscriptSegment> {
        self.segments().filter(|s| s.is_final)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Marks the remaining partials final, for when the call has ended and no refinement will
    /// come: the last words heard are better kept than dropped.
    pub fn finalize(&mut self) {
        for e in &mut self.entries {
            e.segment.is_final = true;
        }
    }

    fn push(&mut self, segment: TranscriptSegment) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert_sorted(Entry { seq, segment });
    }

    fn insert_sorted(&mut self, entry: Entry) {
        let key = (entry.segment.start_ms, entry.seq);
        let at = self
            .entries
            .partition_point(|e| (e.segment.start_ms, e.seq) < key);
        self.entries.insert(at, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(
        id: &str,
        speaker: Speaker,
        text: &str,
        start: u64,
        is_final: bool,
    ) -> TranscriptSegment {
        TranscriptSegment {
            segment_id: id.into(),
            speaker,
            text: text.into(),
            start_ms: start,
            end_ms: start + 500,
            is_final,
        }
    }

    fn texts(t: &Transcript) -> Vec<&str> {
        t.segments().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn final_replaces_partials_with_same_id() {
        let mut t = Transcript::new();
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "hel", 0, false)),
            ApplyOutcome::Inserted("a".into())
        );
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "hello th", 0, false)),
            ApplyOutcome::Replaced("a".into())
        );
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "hello th", 0, false)),
            ApplyOutcome::Duplicate("a".into())
        );
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "Hello there.", 0, true)),
            ApplyOutcome::Replaced("a".into())
        );
        // Late partials and repeated finals change nothing.
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "hello", 0, false)),
            ApplyOutcome::Duplicate("a".into())
        );
        assert_eq!(
            t.apply(seg("a", Speaker::Trainee, "Hello there!", 0, true)),
            ApplyOutcome::Duplicate("a".into())
        );
        assert_eq!(texts(&t), ["Hello there."]);
        assert_eq!(t.final_segments().count(), 1);
    }

    #[test]
    fn without_ids_final_replaces_latest_partial_of_same_speaker() {
        let mut t = Transcript::new();
        t.apply(seg("", Speaker::Persona, "Hi, this", 0, false));
        t.apply(seg("", Speaker::Trainee, "Hey", 800, false));
        let out = t.apply(seg("", Speaker::Persona, "Hi, this is Dana.", 0, true));
        assert_eq!(out, ApplyOutcome::Replaced("auto-0".into()));
        assert_eq!(texts(&t), ["Hi, this is Dana.", "Hey"]);
        // A new persona final with no partial pending is a new segment.
        let out = t.apply(seg("", Speaker::Persona, "How can I help?", 2000, true));
        assert_eq!(out, ApplyOutcome::Inserted("auto-2".into()));
        assert_eq!(t.final_segments().count(), 2);
    }

    #[test]
    fn ordered_by_start_then_arrival() {
        let mut t = Transcript::new();
        t.apply(seg("b", Speaker::Persona, "second", 1000, true));
        t.apply(seg("a", Speaker::Trainee, "first", 0, true));
        t.apply(seg("c", Speaker::Trainee, "tie-1", 1000, true));
        // A replacement keeps its place among equal starts.
        t.apply(seg("x", Speaker::Trainee, "late partial", 3000, false));
        t.apply(seg("x", Speaker::Trainee, "late final", 500, true));
        assert_eq!(texts(&t), ["first", "late final", "second", "tie-1"]);
        let rebuilt = Transcript::from_segments(t.segments().cloned());
        assert_eq!(texts(&rebuilt), texts(&t));
    }

    #[test]
    fn a_trainee_client_writes_only_the_trainee_side() {
        assert!(Source::TraineeClient.may_write(Speaker::Trainee));
        assert!(!Source::TraineeClient.may_write(Speaker::Persona));
        assert!(!Source::TraineeClient.may_write(Speaker::System));
        assert!(Source::VoiceProvider.may_write(Speaker::Persona));
    }

    #[test]
    fn fold_one_segment_at_a_time() {
        let a = seg("a", Speaker::Trainee, "hel", 0, false);
        let b = seg("a", Speaker::Trainee, "hello", 0, true);
        assert_eq!(fold(None, &a, Source::TraineeClient), Fold::Insert);
        assert_eq!(
            fold(Some((&a, Source::TraineeClient)), &b, Source::TraineeClient),
            Fold::Replace
        );
        assert_eq!(
            fold(Some((&a, Source::TraineeClient)), &a, Source::TraineeClient),
            Fold::Duplicate
        );
        assert_eq!(
            fold(Some((&b, Source::TraineeClient)), &a, Source::TraineeClient),
            Fold::Duplicate
        );
        assert_eq!(
            fold(Some((&a, Source::VoiceProvider)), &b, Source::TraineeClient),
            Fold::Foreign
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_segments: 2,
            max_segment_bytes: 10,
            max_transcript_bytes: 15,
        };
        assert!(l.check_segment(10).is_ok());
        assert_eq!(
            l.check_segment(11),
            Err(Exceeded::SegmentBytes {
                bytes: 11,
                limit: 10
            })
        );
        assert!(l.check_write(1, 5, 1, 10).is_ok());
        assert_eq!(
            l.check_write(2, 5, 1, 1),
            Err(Exceeded::Segments { limit: 2 })
        );
        assert_eq!(
            l.check_write(1, 10, 1, 6),
            Err(Exceeded::TranscriptBytes { limit: 15 })
        );
        // A replacement adds no segment and a shorter one frees bytes.
        assert!(l.check_write(2, 15, 0, -3).is_ok());
    }

    #[test]
    fn finalize_keeps_dangling_partials() {
        let mut t = Transcript::new();
        t.apply(seg("a", Speaker::Trainee, "so what I", 0, false));
        assert_eq!(t.final_segments().count(), 0);
        t.finalize();
        assert_eq!(t.final_segments().count(), 1);
    }
}
