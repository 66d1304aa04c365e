//! Step 5 of the pipeline: conversation metrics, from a cleaned transcript.

use super::text::{
    NEXT_STEP_TERMS, accepts, filler_count, find_any, find_time_expr, is_question, proposes,
    questions, quote_around, sentences, word_count,
};
use super::types::{Evidence, Speaker, Turn};

/// What the talk-to-listen ratio was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TalkBasis {
    /// Every trainee and persona turn had timings.
    Time,
    Words,
}

/// The longest stretch of one party: a single (merged) turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub turn_id: String,
    pub words: u32,
    pub ms: Option<u64>,
}

/// A concrete next step: the trainee's proposal and the persona's acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub proposal: Evidence,
    pub acceptance: Evidence,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Trainee's share of the talk, 0–1 (0 when nobody spoke).
    pub talk_ratio: f64,
    pub talk_basis: TalkBasis,
    pub trainee_words: u32,
    pub persona_words: u32,
    pub trainee_talk_ms: Option<u64>,
    pub persona_talk_ms: Option<u64>,
    /// First start to last end, when any turn is timed.
    pub duration_ms: Option<u64>,
    pub longest_monologue: Option<Span>,
    pub longest_customer_story: Option<Span>,
    pub trainee_questions: u32,
    pub persona_questions: u32,
    pub trainee_questions_per_min: Option<f64>,
    pub persona_questions_per_min: Option<f64>,
    pub trainee_fillers: u32,
    /// Fillers per 100 trainee words.
    pub filler_rate: f64,
    pub trainee_wpm: Option<f64>,
    pub persona_wpm: Option<f64>,
    /// Turns by the trainee that started before the persona's previous turn ended.
    pub trainee_interruptions: u32,
    pub persona_interruptions: u32,
    pub next_step: Option<NextStep>,
}

#[derive(Default)]
struct Side {
    words: u32,
    ms: u64,
    all_timed: bool,
    any: bool,
    questions: u32,
    fillers: u32,
    longest: Option<Span>,
}

impl Side {
    fn add(&mut self, t: &Turn) {
        if !self.any {
            self.all_timed = true;
        }
        self.any = true;
        let w = u32::try_from(word_count(&t.text)).unwrap_or(u32::MAX);
        self.words = self.words.saturating_add(w);
        match t.duration_ms() {
            Some(d) => self.ms = self.ms.saturating_add(d),
            None => self.all_timed = false,
        }
        self.questions += u32::try_from(questions(&t.text).len()).unwrap_or(u32::MAX);
        self.fillers += u32::try_from(filler_count(&t.text)).unwrap_or(u32::MAX);
        let span = Span {
            turn_id: t.id.clone(),
            words: w,
            ms: t.duration_ms(),
        };
        // Ties keep the earlier turn so the result is deterministic.
        let longer = match &self.longest {
            None => true,
            Some(l) => (span.ms.unwrap_or(0), span.words) > (l.ms.unwrap_or(0), l.words),
        };
        if longer {
            self.longest = Some(span);
        }
    }

    fn timed_ms(&self) -> Option<u64> {
        (self.any && self.all_timed).then_some(self.ms)
    }
}

fn per_min(count: u32, ms: Option<u64>) -> Option<f64> {
    match ms {
        Some(ms) if ms > 0 => Some(f64::from(count) * 60_000.0 / ms as f64),
        _ => None,
    }
}

/// Computes every metric. Pure and deterministic.
pub fn compute(transcript: &[Turn]) -> Metrics {
    let mut trainee = Side::default();
    let mut persona = Side::default();
    for t in transcript {
        match t.speaker {
            Speaker::Trainee => trainee.add(t),
            Speaker::Persona => persona.add(t),
            Speaker::System => {}
        }
    }
    // Longest spans compare by time only when the whole side is timed.
    if !trainee.all_timed {
        trainee.longest = longest_by_words(transcript, Speaker::Trainee);
    }
    if !persona.all_timed {
        persona.longest = longest_by_words(transcript, Speaker::Persona);
    }

    let (trainee_ms, persona_ms) = (trainee.timed_ms(), persona.timed_ms());
    let (talk_ratio, talk_basis) = match (trainee_ms, persona_ms) {
        (Some(a), Some(b)) if a + b > 0 => (a as f64 / (a + b) as f64, TalkBasis::Time),
        _ => {
            let total = trainee.words + persona.words;
            let r = if total == 0 {
                0.0
            } else {
                f64::from(trainee.words) / f64::from(total)
            };
            (r, TalkBasis::Words)
        }
    };

    let start = transcript.iter().filter_map(|t| t.start_ms).min();
    let end = transcript.iter().filter_map(|t| t.end_ms).max();
    let duration_ms = match (start, end) {
        (Some(s), Some(e)) if e > s => Some(e - s),
        _ => None,
    };

    let (trainee_interruptions, persona_interruptions) = interruptions(transcript);
    let filler_rate = if trainee.words == 0 {
        0.0
    } else {
        f64::from(trainee.fillers) * 100.0 / f64::from(trainee.words)
    };

    Metrics {
        talk_ratio,
        talk_basis,
        trainee_words: trainee.words,
        persona_words: persona.words,
        trainee_talk_ms: trainee_ms,
        persona_talk_ms: persona_ms,
        duration_ms,
        longest_monologue: trainee.longest.take(),
        longest_customer_story: persona.longest.take(),
        trainee_questions: trainee.questions,
        persona_questions: persona.questions,
        trainee_questions_per_min: per_min(trainee.questions, duration_ms),
        persona_questions_per_min: per_min(persona.questions, duration_ms),
        trainee_fillers: trainee.fillers,
        filler_rate,
        trainee_wpm: per_min(trainee.words, trainee_ms),
        persona_wpm: per_min(persona.words, persona_ms),
        trainee_interruptions,
        persona_interruptions,
        next_step: find_next_step(transcript),
    }
}

fn longest_by_words(transcript: &[Turn], who: Speaker) -> Option<Span> {
    let mut best: Option<Span> = None;
    for t in transcript.iter().filter(|t| t.speaker == who) {
        let w = u32::try_from(word_count(&t.text)).unwrap_or(u32::MAX);
        if best.as_ref().is_none_or(|b| w > b.words) {
            best = Some(Span {
                turn_id: t.id.clone(),
                words: w,
                ms: t.duration_ms(),
            });
        }
    }
    best
}

/// (by trainee, by persona): a turn that starts before the other party's latest turn ended.
fn interruptions(transcript: &[Turn]) -> (u32, u32) {
    let (mut by_trainee, mut by_persona) = (0, 0);
    let mut last_end: [Option<u64>; 2] = [None, None]; // [trainee, persona]
    for t in transcript {
        let (me, other) = match t.speaker {
            Speaker::Trainee => (0, 1),
            Speaker::Persona => (1, 0),
            Speaker::System => continue,
        };
        if let (Some(s), Some(e)) = (t.start_ms, last_end[other])
            && s < e
        {
            if me == 0 {
                by_trainee += 1;
            } else {
                by_persona += 1;
            }
        }
        if t.end_ms.is_some() {
            last_end[me] = t.end_ms;
        }
    }
    (by_trainee, by_persona)
}

/// The first concrete next step: a trainee turn proposing a meeting, demo, trial, contract… or
/// a day/time, answered by the persona's next turn with an acceptance. A persona reply that
/// itself names both the step and the time ("Sure, a demo on Thursday works") also counts
/// after any trainee proposal or question.
pub fn find_next_step(transcript: &[Turn]) -> Option<NextStep> {
    let parties: Vec<&Turn> = transcript
        .iter()
        .filter(|t| t.speaker != Speaker::System)
        .collect();
    for pair in parties.windows(2) {
        let (t, p) = (pair[0], pair[1]);
        if t.speaker != Speaker::Trainee || p.speaker != Speaker::Persona || !proposes(&t.text) {
            continue;
        }
        let Some((as_, ae)) = accepts(&p.text) else {
            continue;
        };
        let in_proposal = find_any(&t.text, NEXT_STEP_TERMS)
            .map(|(_, s, e)| (s, e))
            .or_else(|| find_time_expr(&t.text));
        let self_proposed =
            find_any(&p.text, NEXT_STEP_TERMS).is_some() && find_time_expr(&p.text).is_some();
        let proposal_range = match (in_proposal, self_proposed) {
            (Some(r), _) => r,
            (None, true) => first_question(&t.text).unwrap_or((0, t.text.len())),
            (None, false) => continue,
        };
        return Some(NextStep {
            proposal: Evidence {
                turn_id: t.id.clone(),
                quote: quote_around(&t.text, proposal_range.0, proposal_range.1).to_string(),
            },
            acceptance: Evidence {
                turn_id: p.id.clone(),
                quote: quote_around(&p.text, as_, ae).to_string(),
            },
        });
    }
    None
}

fn first_question(text: &str) -> Option<(usize, usize)> {
    sentences(text)
        .into_iter()
        .find(|&(s, e)| is_question(&text[s..e]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hand_example() -> Vec<Turn> {
        vec![
            // 2 words, 2 s
            Turn::timed("p1", Speaker::Persona, "Hello there.", 0, 2_000),
            // 12 words, 6 s, 1 filler, 1 question (open)
            Turn::timed(
                "t1",
                Speaker::Trainee,
                "Hi, um, I'm Sam from Acme. What does your onboarding look like?",
                2_500,
                8_500,
            ),
            // 9 words, 10 s; starts before t1 ended: persona interrupts
            Turn::timed(
                "p2",
                Speaker::Persona,
                "We onboard forty reps a year, mostly by shadowing.",
                8_000,
                18_000,
            ),
            // 11 words, 6 s, 1 question (proposal)
            Turn::timed(
                "t2",
                Speaker::Trainee,
                "Got it. Could we book a demo on Tuesday at 2pm?",
                18_500,
                24_500,
            ),
            // 3 words, 2 s
            Turn::timed(
                "p3",
                Speaker::Persona,
                "Sure, Tuesday works.",
                25_000,
                27_000,
            ),
        ]
    }

    #[test]
    fn hand_computed_metrics() {
        let m = compute(&hand_example());
        assert_eq!(m.talk_basis, TalkBasis::Time);
        assert_eq!(m.trainee_talk_ms, Some(12_000));
        assert_eq!(m.persona_talk_ms, Some(14_000));
        assert_eq!(m.talk_ratio, 12_000.0 / 26_000.0);
        assert_eq!(m.trainee_words, 23);
        assert_eq!(m.persona_words, 14);
        assert_eq!(m.duration_ms, Some(27_000));
        assert_eq!(
            m.longest_monologue,
            Some(Span {
                turn_id: "t1".into(),
                words: 12,
                ms: Some(6_000)
            })
        );
        assert_eq!(
            m.longest_customer_story,
            Some(Span {
                turn_id: "p2".into(),
                words: 9,
                ms: Some(10_000)
            })
        );
        assert_eq!(m.trainee_questions, 2);
        assert_eq!(m.persona_questions, 0);
        assert_eq!(m.trainee_questions_per_min, Some(2.0 * 60.0 / 27.0));
        assert_eq!(m.trainee_fillers, 1);
        assert_eq!(m.filler_rate, 100.0 / 23.0);
        assert_eq!(m.trainee_wpm, Some(23.0 * 60.0 / 12.0));
        assert_eq!(m.persona_wpm, Some(14.0 * 60.0 / 14.0));
        assert_eq!(m.trainee_interruptions, 0);
        assert_eq!(m.persona_interruptions, 1);
        let ns = m
            .next_step
            .as_ref()
            .map(|n| (n.proposal.clone(), n.acceptance.clone()));
        assert_eq!(
            ns,
            Some((
                Evidence {
                    turn_id: "t2".into(),
                    quote: "Could we book a demo on Tuesday at 2pm?".into()
                },
                Evidence {
                    turn_id: "p3".into(),
                    quote: "Sure, Tuesday works.".into()
                }
            ))
        );
    }

    #[test]
    fn word_basis_without_timings() {
        let t = vec![
            Turn::new("a", Speaker::Trainee, "one two three"),
            Turn::new("b", Speaker::Persona, "one"),
            Turn::new("c", Speaker::System, "ignored words here"),
        ];
        let m = compute(&t);
        assert_eq!(m.talk_basis, TalkBasis::Words);
        assert_eq!(m.talk_ratio, 0.75);
        assert_eq!(m.trainee_wpm, None);
        assert_eq!(m.trainee_questions_per_min, None);
        assert_eq!(m.longest_monologue.map(|s| s.words), Some(3));
        assert!(m.next_step.is_none());
        let empty = compute(&[]);
        assert_eq!(empty.talk_ratio, 0.0);
        assert!(empty.longest_monologue.is_none());
    }

    #[test]
    fn next_step_needs_acceptance() {
        let t = vec![
            Turn::new("a", Speaker::Trainee, "Can we set up a demo next week?"),
            Turn::new("b", Speaker::Persona, "No, I'm not interested."),
        ];
        assert!(find_next_step(&t).is_none());
        let t = vec![
            Turn::new(
                "a",
                Speaker::Trainee,
                "What would a good next move look like?",
            ),
            Turn::new("b", Speaker::Persona, "Sure, a demo on Thursday works."),
        ];
        assert!(find_next_step(&t).is_some());
    }
}
