//! The built-in deterministic grader: every criterion scored from explainable signals in the
//! transcript, with the lines it relied on quoted. Used when no LLM credential is configured.
//!
//! It grades what the trainee did with what the customer said, not the words used:
//! - a question earns follow-up credit only when it builds on the customer's last answer
//!   (shares content words or numbers with it);
//! - an objection counts as handled when the trainee clarifies it or answers it with the
//!   customer's own facts, not when a stock phrase ("I understand your concern") is said;
//! - stacked questions, talking past an objection, pressure after a "no", generic claims and
//!   monologues cost points;
//! - the rubric's signal phrases add a little, and only where they answer the customer.
//!
//! Each criterion gets a strength in 0..=1 that maps onto the criterion's scale, so a skill
//! done well lands in the top levels; the rationale quotes the level description it matched.

use super::close::{CloseDecision, agreement, decide};
use super::conversation_metrics::{Metrics, compute};
use super::text::{
    DEFERRALS, contains_any, content_stems, filler_count, find_any, find_phrase,
    find_specific_time, find_time_expr, is_open_question, is_question, keywords, number_tokens,
    proposes, questions, quote_around, sentences, shared, word_count, words,
};
use super::types::{
    Criterion, CriterionScore, Evidence, GoalKind, Rubric, RubricError, Speaker, Turn,
};
use salestrainer_conversation::{
    ACKNOWLEDGEMENTS, EMPATHY, NEXT_STEP_ASKS, NEXT_STEP_TERMS, OBJECTIONS, PITCHES, PLEASANTRIES,
    THANKS, TRIAL_CLOSES,
};

/// What the grader needs besides the transcript.
#[derive(Debug, Clone, Copy)]
pub struct GradeInput<'a> {
    pub rubric: &'a Rubric,
    pub transcript: &'a [Turn],
    pub goal: &'a GoalKind,
    /// Key terms of the product brief, for product-knowledge criteria.
    pub product_terms: &'a [String],
    /// The persona's name, for rapport (using the customer's name).
    pub persona_name: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkillScore {
    pub skill: String,
    /// 0–100.
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub criteria: Vec<CriterionScore>,
    /// 0–100, weighted by the rubric.
    pub overall: f64,
    pub skills: Vec<SkillScore>,
    pub passed: bool,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub summary: String,
    pub close: CloseDecision,
    pub metrics: Metrics,
}

/// The skill families the grader knows signals for, recognised from the free-form label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkillKind {
    Discovery,
    ObjectionHandling,
    Closing,
    Rapport,
    ProductKnowledge,
    Communication,
    Custom,
}

pub fn skill_kind(label: &str) -> SkillKind {
    let l = label.to_ascii_lowercase();
    let has = |keys: &[&str]| keys.iter().any(|k| l.contains(k));
    if has(&["objection", "pushback", "push-back", "concern"]) {
        SkillKind::ObjectionHandling
    } else if has(&["discover", "question", "needs", "qualif"]) {
        SkillKind::Discovery
    } else if has(&["clos", "next step", "next-step", "commitment"]) {
        SkillKind::Closing
    } else if has(&["rapport", "relationship", "empathy", "trust", "listening"]) {
        SkillKind::Rapport
    } else if has(&[
        "product",
        "knowledge",
        "value",
        "solution",
        "pitch",
        "presentation",
    ]) {
        SkillKind::ProductKnowledge
    } else if has(&["communicat", "clarity", "delivery", "conciseness"]) {
        SkillKind::Communication
    } else {
        SkillKind::Custom
    }
}

/// The criterion's family: from its skill label, else from its description and level
/// descriptions (a "Needs analysis" criterion whose levels talk about questions is discovery).
pub fn criterion_kind(c: &Criterion) -> SkillKind {
    let by_label = skill_kind(&c.skill);
    if by_label != SkillKind::Custom {
        return by_label;
    }
    let mut text = c.description.clone();
    for (_, l) in &c.levels {
        text.push(' ');
        text.push_str(l);
    }
    let l = text.to_ascii_lowercase();
    let count = |keys: &[&str]| keys.iter().filter(|k| l.contains(*k)).count();
    let votes = [
        (
            SkillKind::ObjectionHandling,
            count(&["objection", "concern", "pushback"]),
        ),
        (
            SkillKind::Discovery,
            count(&["question", "discover", "uncover", "pain"]),
        ),
        (
            SkillKind::Closing,
            count(&["next step", "close", "commit", "agreement"]),
        ),
        (
            SkillKind::Rapport,
            count(&["listen", "rapport", "empathy", "acknowledg"]),
        ),
        (
            SkillKind::ProductKnowledge,
            count(&["product", "feature", "value", "benefit"]),
        ),
    ];
    match votes.iter().max_by_key(|(_, n)| *n) {
        Some((k, n)) if *n >= 2 => *k,
        _ => SkillKind::Custom,
    }
}

/// Claims any seller can make about anything: no credit, and a cost when they stand in for
/// what the customer said.
const GENERIC_CLAIMS: &[&str] = &[
    "the best",
    "best in class",
    "best-in-class",
    "best on the market",
    "leading",
    "industry-leading",
    "world-class",
    "award-winning",
    "game changer",
    "no-brainer",
    "cutting-edge",
    "state of the art",
    "everyone",
    "everybody",
    "customers love",
    "really good",
    "really great",
    "very modern",
    "transform",
    "revolution",
];

/// The customer closing a door ("no", "not interested", "please stop").
const FIRM_NO: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "don't call",
    "please stop",
    "we're covered",
    "not booking",
    "i said",
    "like i said",
    "we can't",
    "can't buy",
    "can't spend",
    "not at that price",
    "not at this price",
    "not this year",
    "not right now",
    "not now",
    "i'd rather not",
    "rather not",
    "goodbye",
    "i have to go",
    "we're done",
];

/// The trainee accepting a "no" instead of pushing on.
const RESPECT: &[&str] = &[
    "that's fine",
    "no problem",
    "understood",
    "fair enough",
    "i won't push",
    "no pressure",
    "i respect",
    "that's clear",
    "keep it simple",
    "let's keep",
    "i'll call you",
    "good luck",
];

/// Pressure tactics.
const PRESSURE: &[&str] = &[
    "discount",
    "percent off",
    "% off",
    "free month",
    "offer ends",
    "only available",
    "price goes up",
    "this week only",
    "at least",
    "surely",
    "instead",
    "exception",
    "you don't want to miss",
    "making a mistake",
    "everyone else",
    "only take",
    "only thirty",
];

/// Arguing with the customer instead of understanding them.
const ARGUING: &[&str] = &[
    "really isn't",
    "it isn't expensive",
    "isn't expensive",
    "you're wrong",
    "underestimating",
    "it's the price",
    "it's our standard price",
    "these things happen",
    "it is really not hard",
    "every finance team needs",
];

/// A customer getting rid of the call ("just send me an email"): an objection to handle.
const BRUSH_OFFS: &[&str] = &[
    "send me something",
    "send me some",
    "send me an email",
    "send an email",
    "email me",
    "just email",
    "think about it",
    "get back to you",
    "call me next",
    "call me in",
    "call me later",
];

/// Questions about sending material, not about the concern.
const LOGISTICS: &[&str] = &[
    "address",
    "email",
    "e-mail",
    "number",
    "spell",
    "best way to reach",
];

/// Asking for the order in so many words.
const ORDER_ASKS: &[&str] = &[
    "want to buy",
    "buy it",
    "purchase it",
    "go ahead with",
    "sign today",
    "renew for",
    "renew you",
    "add it to",
    "add forecasting",
    "to the renewal",
];

/// The trainee bringing back a concern the customer raised before the call.
const RECAP: &[&str] = &[
    "you mentioned",
    "you said",
    "you told me",
    "you were concerned",
    "you were worried",
];

/// Questions about what the problem costs or whom it affects.
const IMPACT: &[&str] = &[
    "cost",
    "costs",
    "what happens",
    "how often",
    "how much",
    "who else",
    "affect",
    "impact",
    "lose",
    "lost",
    "what would it mean",
    "what does that",
    "worth",
    "hurt",
    "what made",
    "what stopped",
    "why",
];

/// Vague ways of leaving the next step open.
const VAGUE_NEXT: &[&str] = &[
    "let me know",
    "stay in touch",
    "i'll send",
    "i will send",
    "i'll email",
    "follow up",
    "sometime",
    "some point",
    "get back",
    "try you again",
    "whenever",
];

/// Accumulates signals for one criterion.
#[derive(Default)]
struct Signals {
    strength: f64,
    notes: Vec<String>,
    evidence: Vec<Evidence>,
}

impl Signals {
    fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    fn quote(&mut self, t: &Turn, range: (usize, usize)) {
        const MAX_QUOTES: usize = 4;
        let q = quote_around(&t.text, range.0, range.1);
        if q.is_empty() || self.evidence.len() >= MAX_QUOTES {
            return;
        }
        if !self
            .evidence
            .iter()
            .any(|e| e.turn_id == t.id && e.quote == q)
        {
            self.evidence.push(Evidence {
                turn_id: t.id.clone(),
                quote: q.to_string(),
            });
        }
    }

    fn quote_sentence(&mut self, t: &Turn, i: usize) {
        if let Some(&r) = sentences(&t.text).get(i) {
            self.quote(t, r);
        }
    }
}

fn sat(x: usize, target: usize) -> f64 {
    if target == 0 {
        0.0
    } else {
        (x as f64 / target as f64).min(1.0)
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// One question of the trainee.
#[derive(Debug, Clone)]
struct Question {
    range: (usize, usize),
    open: bool,
    /// Builds on the customer's previous turn.
    builds: bool,
    impact: bool,
}

/// Facts about one turn (both parties).
#[derive(Debug, Clone, Default)]
struct TurnFacts {
    stems: Vec<String>,
    numbers: Vec<String>,
    words: usize,
    /// Trainee only.
    questions: Vec<Question>,
    pitch: bool,
    ask: bool,
    /// Shares content with the customer's previous turn.
    builds: bool,
    /// Content stems shared with everything the customer said before this turn.
    echoes: usize,
    /// Numbers the customer said earlier that this turn uses.
    customer_numbers: usize,
    generic: usize,
    /// Customer only.
    objection: bool,
    firm_no: bool,
}

/// An objection (or refusal) of the customer and what the trainee did with it.
#[derive(Debug, Clone)]
struct Handling {
    at: usize,
    acked: bool,
    clarified: bool,
    used_facts: bool,
    resolved: bool,
    ignored: bool,
    pressured: bool,
    argued: bool,
    caved: bool,
    value: f64,
}

/// Facts computed once per call and shared by every criterion.
struct Analysis<'a> {
    input: GradeInput<'a>,
    metrics: Metrics,
    close: CloseDecision,
    parties: Vec<&'a Turn>,
    facts: Vec<TurnFacts>,
    handlings: Vec<Handling>,
    /// Trainee turns that pushed on after a firm no.
    pressure: Vec<usize>,
    /// Trainee turns with three or more questions.
    stacked: Vec<usize>,
    /// Trainee share of the words.
    talk_share: f64,
    longest_trainee_words: usize,
    /// Turns where stock phrases stand in for an answer.
    stock: usize,
}

impl<'a> Analysis<'a> {
    fn new(input: GradeInput<'a>) -> Analysis<'a> {
        let parties: Vec<&Turn> = input
            .transcript
            .iter()
            .filter(|t| t.speaker != Speaker::System)
            .collect();
        let terms: Vec<String> = input
            .product_terms
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let brief_stems: Vec<String> = terms.iter().flat_map(|t| content_stems(t)).collect();
        let mut facts: Vec<TurnFacts> = Vec::with_capacity(parties.len());
        let mut customer_stems: Vec<String> = Vec::new();
        let mut customer_numbers: Vec<String> = Vec::new();
        for (i, t) in parties.iter().enumerate() {
            let mut f = TurnFacts {
                stems: content_stems(&t.text),
                numbers: number_tokens(&t.text),
                words: word_count(&t.text),
                ..TurnFacts::default()
            };
            if t.speaker == Speaker::Persona {
                // A brush-off ("just send me an email") is an objection to handle too.
                f.objection = contains_any(&t.text, OBJECTIONS)
                    || (contains_any(&t.text, BRUSH_OFFS) && agreement(&t.text).is_none());
                let first = sentences(&t.text)
                    .first()
                    .map_or("", |&(s, e)| &t.text[s..e]);
                f.firm_no = contains_any(&t.text, FIRM_NO)
                    || words(first).first().is_some_and(|w| w == "no");
                customer_stems.extend(f.stems.iter().cloned());
                customer_numbers.extend(f.numbers.iter().cloned());
                facts.push(f);
                continue;
            }
            // The customer's turn just before, if the trainee is answering one.
            let prev: Option<&TurnFacts> = i
                .checked_sub(1)
                .and_then(|j| facts.get(j))
                .filter(|_| i > 0 && parties[i - 1].speaker == Speaker::Persona);
            let prev_stems: Vec<String> = prev.map(|p| p.stems.clone()).unwrap_or_default();
            f.builds = prev.is_some_and(|p| p.words >= 3) && shared(&f.stems, &prev_stems) >= 1;
            f.echoes = shared(&f.stems, &customer_stems);
            f.customer_numbers = f
                .numbers
                .iter()
                .filter(|n| customer_numbers.contains(n))
                .count();
            f.generic = GENERIC_CLAIMS
                .iter()
                .filter(|g| find_phrase(&t.text, g).is_some())
                .count();
            // Presenting: a pitch phrase, or a statement (not a question) about the product.
            let statement = sentences(&t.text).into_iter().any(|(s, e)| {
                let x = &t.text[s..e];
                !x.trim_end().ends_with('?')
                    && word_count(x) >= 6
                    && shared(&content_stems(x), &brief_stems) >= 1
            });
            f.pitch = f.words >= 8 && (contains_any(&t.text, PITCHES) || statement);
            // An ask is one sentence that proposes a step: "Thanks for taking the call. How do
            // you plan routes?" asks for nothing.
            f.ask = sentences(&t.text).into_iter().any(|(s, e)| {
                let x = &t.text[s..e];
                ((is_question(x) || proposes(x))
                    && (find_specific_time(x).is_some() || contains_any(x, NEXT_STEP_TERMS)))
                    || contains_any(x, NEXT_STEP_ASKS)
                    || contains_any(x, ORDER_ASKS)
            });
            // Playing back the customer's words before asking makes the question a follow-up
            // too ("Two hours every morning. What happens to the drivers meanwhile?").
            let qs_ranges = questions(&t.text);
            let statements: String = sentences(&t.text)
                .into_iter()
                .filter(|r| !qs_ranges.contains(r))
                .map(|(s, e)| &t.text[s..e])
                .collect::<Vec<_>>()
                .join(" ");
            let reflects = prev.is_some_and(|p| p.words >= 3)
                && shared(&content_stems(&statements), &prev_stems) >= 2;
            for (s, e) in qs_ranges {
                let q = &t.text[s..e];
                if contains_any(q, PLEASANTRIES) && word_count(q) <= 6 {
                    continue;
                }
                let qs = content_stems(q);
                f.questions.push(Question {
                    range: (s, e),
                    open: is_open_question(q),
                    builds: prev.is_some_and(|p| p.words >= 3)
                        && (shared(&qs, &prev_stems) >= 1 || reflects),
                    impact: contains_any(q, IMPACT),
                });
            }
            facts.push(f);
        }

        let trainee_words: usize = parties
            .iter()
            .zip(&facts)
            .filter(|(t, _)| t.speaker == Speaker::Trainee)
            .map(|(_, f)| f.words)
            .sum();
        let customer_words: usize = parties
            .iter()
            .zip(&facts)
            .filter(|(t, _)| t.speaker == Speaker::Persona)
            .map(|(_, f)| f.words)
            .sum();
        let talk_share = if trainee_words + customer_words == 0 {
            0.0
        } else {
            trainee_words as f64 / (trainee_words + customer_words) as f64
        };
        let longest_trainee_words = parties
            .iter()
            .zip(&facts)
            .filter(|(t, _)| t.speaker == Speaker::Trainee)
            .map(|(_, f)| f.words)
            .max()
            .unwrap_or(0);
        let stacked: Vec<usize> = parties
            .iter()
            .enumerate()
            .filter(|(i, t)| t.speaker == Speaker::Trainee && facts[*i].questions.len() >= 3)
            .map(|(i, _)| i)
            .collect();

        // Pressure: after a firm no, the trainee's next turn asks again or leans on a tactic,
        // without first accepting the no.
        let mut pressure = Vec::new();
        for i in 1..parties.len() {
            if parties[i].speaker != Speaker::Trainee
                || parties[i - 1].speaker != Speaker::Persona
                || !facts[i - 1].firm_no
            {
                continue;
            }
            let text = &parties[i].text;
            let respects = contains_any(text, RESPECT);
            let tactic = contains_any(text, PRESSURE);
            if tactic || (facts[i].ask && !respects) {
                pressure.push(i);
            }
        }

        // Stock phrases that answer nothing: acknowledgements in a turn that shares no content
        // with what the customer just said.
        let stock = parties
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                t.speaker == Speaker::Trainee
                    && !facts[*i].builds
                    && ACKNOWLEDGEMENTS
                        .iter()
                        .filter(|a| find_phrase(&t.text, a).is_some())
                        .count()
                        + EMPATHY
                            .iter()
                            .filter(|a| find_phrase(&t.text, a).is_some())
                            .count()
                        >= 2
            })
            .count();

        let mut a = Analysis {
            metrics: compute(input.transcript),
            close: decide(input.goal, input.transcript),
            parties,
            facts,
            handlings: Vec::new(),
            pressure,
            stacked,
            talk_share,
            longest_trainee_words,
            stock,
            input,
        };
        a.handlings = a.objection_handlings();
        a
    }

    fn trainee(&self) -> impl Iterator<Item = (usize, &'a Turn)> + '_ {
        self.parties
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, t)| t.speaker == Speaker::Trainee)
    }

    fn trainee_turns(&self) -> impl Iterator<Item = &'a Turn> + '_ {
        self.trainee().map(|(_, t)| t)
    }

    fn product_terms(&self) -> Vec<&'a str> {
        self.input
            .product_terms
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Customer stems said before turn `i`.
    fn customer_stems_before(&self, i: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (j, t) in self.parties.iter().enumerate().take(i) {
            if t.speaker == Speaker::Persona {
                out.extend(self.facts[j].stems.iter().cloned());
            }
        }
        out
    }

    fn objection_handlings(&self) -> Vec<Handling> {
        let mut out = Vec::new();
        for (i, t) in self.parties.iter().enumerate() {
            let raised =
                t.speaker == Speaker::Persona && (self.facts[i].objection || self.facts[i].firm_no);
            // A concern raised before this call, brought back by the trainee and asked about.
            let recap = t.speaker == Speaker::Trainee
                && contains_any(&t.text, RECAP)
                && contains_any(&t.text, OBJECTIONS)
                && !self.facts[i].questions.is_empty();
            if !(raised || recap) {
                continue;
            }
            // The trainee's turns that deal with it: up to four, until the customer objects
            // again.
            let mut window: Vec<usize> = Vec::new();
            let mut after = None;
            let start = if recap { i } else { i + 1 };
            for j in start..self.parties.len() {
                if self.parties[j].speaker == Speaker::Trainee {
                    if window.len() == 4 {
                        break;
                    }
                    window.push(j);
                } else {
                    let f = &self.facts[j];
                    if j > i && (f.objection || f.firm_no) {
                        after = Some(j);
                        break;
                    }
                    if j > i {
                        after = Some(j);
                    }
                }
            }
            let Some(&first) = window.first() else {
                // The call ended on it: unanswered, but nothing was talked past.
                out.push(Handling {
                    at: i,
                    acked: false,
                    clarified: false,
                    used_facts: false,
                    resolved: false,
                    ignored: false,
                    pressured: false,
                    argued: false,
                    caved: false,
                    value: 0.1,
                });
                continue;
            };
            let obj = &self.facts[i];
            let reply = self.parties[first];
            let rf = &self.facts[first];
            let overlap = if recap {
                1
            } else {
                shared(&rf.stems, &obj.stems)
            };
            let acked = contains_any(&reply.text, ACKNOWLEDGEMENTS)
                || contains_any(&reply.text, EMPATHY)
                || contains_any(&reply.text, RESPECT)
                || overlap >= 1;
            // A question about the concern: it shares its words, or it is an open question
            // asked straight back without a pitch ("What are they comparing it to?"), not one
            // about where to send the brochure.
            let clarified = window.iter().any(|&j| {
                self.facts[j].questions.iter().any(|q| {
                    let text = &self.parties[j].text[q.range.0..q.range.1];
                    q.builds
                        || (j == first
                            && (recap
                                || shared(&content_stems(text), &obj.stems) >= 1
                                || (q.open && !rf.pitch && !contains_any(text, LOGISTICS))))
                })
            });
            let used_facts = window.iter().any(|&j| {
                let f = &self.facts[j];
                // The customer's own facts: what they said before this turn, beyond the words
                // of the objection itself.
                let before: Vec<String> = self
                    .customer_stems_before(j)
                    .into_iter()
                    .filter(|s| recap || !obj.stems.contains(s))
                    .collect();
                shared(&f.stems, &before) + f.customer_numbers >= 1 && !f.questions.is_empty()
                    || shared(&f.stems, &before) + f.customer_numbers >= 2
            });
            let pressured = window.iter().any(|j| self.pressure.contains(j));
            let argued = window
                .iter()
                .any(|&j| contains_any(&self.parties[j].text, ARGUING));
            let caved =
                contains_any(&reply.text, &["% off", "percent off", "discount"]) && !clarified;
            let next = self
                .parties
                .iter()
                .enumerate()
                .skip(first + 1)
                .find(|(_, p)| p.speaker == Speaker::Persona)
                .map(|(j, _)| j);
            // The customer moved on happily: the concern was met, whatever the words.
            let met = next.is_some_and(|j| {
                let f = &self.facts[j];
                !f.objection && !f.firm_no && agreement(&self.parties[j].text).is_some()
            });
            let resolved = after.is_some_and(|j| {
                let f = &self.facts[j];
                !f.objection && !f.firm_no && !contains_any(&self.parties[j].text, DEFERRALS)
            });
            let accepted_no = obj.firm_no && !rf.ask && !rf.pitch && !pressured;
            let ignored = !acked && !clarified && overlap == 0 && !accepted_no && !met;
            let mut value = 0.15 * f64::from(u8::from(acked || met))
                + 0.35 * f64::from(u8::from(clarified))
                + 0.35 * f64::from(u8::from(used_facts))
                + 0.15 * f64::from(u8::from(resolved));
            if ignored || pressured {
                value = 0.0;
            }
            if argued {
                value = value.min(0.1);
            }
            if caved {
                value = value.min(0.2);
            }
            if accepted_no && !acked && !clarified {
                value = value.max(0.3);
            }
            // Working on a customer who said no and still says no is not handling it.
            if obj.firm_no && !accepted_no && !resolved && !met {
                value = value.min(0.2);
            }
            out.push(Handling {
                at: i,
                acked,
                clarified,
                used_facts,
                resolved,
                ignored,
                pressured,
                argued,
                caved,
                value,
            });
        }
        out
    }
}

/// Grades the transcript against the rubric. Deterministic: same input, same output.
pub fn grade(input: GradeInput<'_>) -> Result<Evaluation, RubricError> {
    input.rubric.validate()?;
    let a = Analysis::new(input);
    let criteria: Vec<CriterionScore> = input
        .rubric
        .criteria
        .iter()
        .map(|c| score_criterion(&a, c))
        .collect();
    let overall = overall_score(input.rubric, &criteria);
    let skills = skill_scores(input.rubric, &criteria);
    let strengths = strengths(input.rubric, &criteria);
    let improvements = improvements(&a, &criteria);
    let summary = summary(&a);
    Ok(Evaluation {
        passed: overall >= input.rubric.passing_score,
        overall,
        skills,
        strengths,
        improvements,
        summary,
        criteria,
        close: a.close,
        metrics: a.metrics,
    })
}

fn score_criterion(a: &Analysis<'_>, c: &Criterion) -> CriterionScore {
    let mut s = Signals::default();
    let kind = criterion_kind(c);
    match kind {
        SkillKind::Discovery => discovery(a, &mut s),
        SkillKind::ObjectionHandling => objections(a, &mut s),
        SkillKind::Closing => closing(a, &mut s),
        SkillKind::Rapport => rapport(a, &mut s),
        SkillKind::ProductKnowledge => product(a, &mut s),
        SkillKind::Communication => communication(a, &mut s),
        SkillKind::Custom => custom(a, c, &mut s),
    }
    if kind != SkillKind::Custom {
        let bonus = responsive_phrases(a, c, &mut s);
        s.strength += 0.04 * bonus as f64;
    }
    let strength = s.strength.clamp(0.0, 1.0);
    let span = f64::from(c.scale_max) - f64::from(c.scale_min);
    let score = f64::from(c.scale_min) + (strength * span).round();
    // Clamped, so the cast cannot leave the scale.
    let score = score.clamp(f64::from(c.scale_min), f64::from(c.scale_max)) as i32;
    let mut rationale = String::new();
    if let Some(level) = level_for(c, score) {
        rationale.push_str(&format!("Level {score}: {}", level.trim_end_matches('.')));
        rationale.push_str(" — ");
    }
    rationale.push_str(&s.notes.join("; "));
    if let Some(first) = rationale.get(..1) {
        rationale = format!("{}{}", first.to_uppercase(), &rationale[1..]);
    }
    if !rationale.ends_with('.') {
        rationale.push('.');
    }
    CriterionScore {
        criterion_id: c.id.clone(),
        score,
        rationale,
        evidence: s.evidence,
    }
}

/// The rubric's description of the level nearest `score`.
fn level_for(c: &Criterion, score: i32) -> Option<&str> {
    c.levels
        .iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .min_by_key(|(l, _)| (l - score).abs())
        .map(|(_, d)| d.trim())
}

/// The rubric's own phrases, credited only in turns that answer the customer. Returns how many
/// distinct phrases were used that way (at most 2).
fn responsive_phrases(a: &Analysis<'_>, c: &Criterion, s: &mut Signals) -> usize {
    let mut found = Vec::new();
    for p in c
        .signal_phrases
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        let hit = a
            .trainee()
            .filter(|(i, _)| a.facts[*i].builds)
            .find_map(|(_, t)| find_phrase(&t.text, p).map(|r| (t, r)));
        if let Some((t, r)) = hit {
            found.push(format!("\"{p}\""));
            s.quote(t, r);
        }
    }
    if !found.is_empty() {
        s.note(format!(
            "used {} in answer to the customer",
            found.join(", ")
        ));
    }
    found.len().min(2)
}

fn discovery(a: &Analysis<'_>, s: &mut Signals) {
    let mut total = 0;
    let mut open = 0;
    let mut followups = 0;
    let mut impact = 0;
    let mut before_pitch = 0;
    let mut pitched = false;
    for (i, t) in a.trainee() {
        let f = &a.facts[i];
        for q in &f.questions {
            total += 1;
            if q.open {
                open += 1;
            }
            if q.builds {
                followups += 1;
                if followups <= 3 {
                    s.quote(t, q.range);
                }
            }
            if q.impact && q.builds {
                impact += 1;
            }
            if !pitched {
                before_pitch += 1;
            }
        }
        pitched |= f.pitch;
    }
    let customer_share = 1.0 - a.talk_share;
    let mut v = 0.45 * sat(followups, 2)
        + 0.2 * sat(open, 2)
        + 0.1 * sat(impact, 1)
        + 0.05 * sat(before_pitch, 2)
        + 0.2 * ((customer_share - 0.15) / 0.25).clamp(0.0, 1.0);
    v -= (0.07 * a.stacked.len() as f64).min(0.2);
    if total == 0 {
        v = v.min(0.1);
    }
    s.strength = v;
    s.note(format!(
        "asked {total} question(s), {followups} building on the customer's answers, {open} open, {impact} about impact; the customer spoke {} of the words",
        pct(customer_share)
    ));
    if !a.stacked.is_empty() {
        s.note(format!(
            "{} turn(s) stacked three or more questions",
            a.stacked.len()
        ));
        if let Some(&i) = a.stacked.first() {
            s.quote_sentence(a.parties[i], 0);
        }
    }
}

fn objections(a: &Analysis<'_>, s: &mut Signals) {
    if a.handlings.is_empty() {
        s.strength = 0.5;
        s.note("the customer raised no objection to handle");
        return;
    }
    let n = a.handlings.len();
    let mean = a.handlings.iter().map(|h| h.value).sum::<f64>() / n as f64;
    // The worst moment matters: one objection talked past is not rescued by the others.
    let worst = a.handlings.iter().map(|h| h.value).fold(1.0, f64::min);
    s.strength = 0.7 * mean + 0.3 * worst;
    let count = |f: fn(&Handling) -> bool| a.handlings.iter().filter(|h| f(h)).count();
    for h in a.handlings.iter().take(2) {
        let t = a.parties[h.at];
        s.quote_sentence(t, 0);
        if let Some(reply) = a.parties.get(h.at + 1) {
            s.quote_sentence(reply, 0);
        }
    }
    s.note(format!(
        "the customer objected or refused {n} time(s): {} clarified, {} answered with the customer's own facts, {} resolved",
        count(|h| h.clarified),
        count(|h| h.used_facts),
        count(|h| h.resolved)
    ));
    let ignored = count(|h| h.ignored);
    let pressured = count(|h| h.pressured);
    let argued = count(|h| h.argued);
    let caved = count(|h| h.caved);
    if ignored > 0 {
        s.note(format!("{ignored} objection(s) went unanswered"));
    }
    if pressured > 0 {
        s.note(format!("pushed on after a no {pressured} time(s)"));
    }
    if argued > 0 {
        s.note("argued with the customer instead of clarifying");
    }
    if caved > 0 {
        s.note("offered a discount before understanding the concern");
    }
    let _ = count(|h| h.acked);
}

fn closing(a: &Analysis<'_>, s: &mut Signals) {
    let asked = a.trainee().find(|(i, _)| a.facts[*i].ask);
    let concrete = a
        .trainee()
        .find(|(i, t)| a.facts[*i].ask && find_specific_time(&t.text).is_some());
    let vague = a
        .trainee()
        .find_map(|(_, t)| find_any(&t.text, VAGUE_NEXT).map(|(_, st, en)| (t, (st, en))));
    // A dated step the customer agreed to that is not the goal (a follow-up in January).
    let dated_other = a.parties.windows(2).any(|w| {
        w[0].speaker == Speaker::Trainee
            && w[1].speaker == Speaker::Persona
            && agreement(&w[1].text).is_some_and(|ag| {
                find_time_expr(&w[1].text[ag.part.0..ag.part.1]).is_some()
                    || (proposes(&w[0].text) && find_time_expr(&w[0].text).is_some())
            })
    });
    let trial = a
        .trainee()
        .find_map(|(_, t)| find_any(&t.text, TRIAL_CLOSES).map(|(_, st, en)| (t, (st, en))));
    let mut v: f64 = if a.close.closed {
        let dated = concrete.is_some()
            || a.close
                .evidence
                .iter()
                .any(|e| find_time_expr(&e.quote).is_some());
        if dated { 1.0 } else { 0.85 }
    } else if dated_other {
        0.55
    } else if asked.is_some() {
        0.4
    } else if vague.is_some() {
        0.2
    } else {
        0.0
    };
    if !a.pressure.is_empty() {
        v = v.min(0.1);
    }
    s.strength = v;
    if let Some((_, t)) = concrete.or(asked) {
        s.quote_sentence(t, sentences(&t.text).len().saturating_sub(1));
    } else if let Some((t, r)) = vague {
        s.quote(t, r);
    }
    if let Some((t, r)) = trial {
        s.quote(t, r);
    }
    for e in &a.close.evidence {
        if s.evidence.len() < 4 && !s.evidence.contains(e) {
            s.evidence.push(e.clone());
        }
    }
    s.note(format!(
        "{}; goal \"{}\" {}",
        match (concrete.is_some(), asked.is_some(), vague.is_some()) {
            (true, _, _) => "asked for a dated next step",
            (false, true, _) => "asked for a next step without a date",
            (false, false, true) => "left the next step vague",
            _ => "never asked for a next step",
        },
        a.input.goal,
        if a.close.closed {
            "reached: the customer agreed"
        } else if dated_other {
            "not reached, but a dated follow-up was agreed"
        } else {
            "not reached"
        }
    ));
    if !a.pressure.is_empty() {
        s.note("pressed on after the customer said no");
    }
}

fn rapport(a: &Analysis<'_>, s: &mut Signals) {
    let customer_share = 1.0 - a.talk_share;
    let balance = ((customer_share - 0.15) / 0.25).clamp(0.0, 1.0);
    let reflections: Vec<usize> = a
        .trainee()
        .filter(|(i, _)| a.facts[*i].echoes >= 2 && a.facts[*i].builds)
        .map(|(i, _)| i)
        .collect();
    for &i in reflections.iter().take(2) {
        s.quote_sentence(a.parties[i], 0);
    }
    let followups: usize = a
        .trainee()
        .map(|(i, _)| a.facts[i].questions.iter().filter(|q| q.builds).count())
        .sum();
    let mono = a.longest_trainee_words;
    let mono_ok = ((160.0 - mono as f64) / 80.0).clamp(0.0, 1.0);
    let talked_past = a.handlings.iter().filter(|h| h.ignored).count();
    let name_or_thanks = a.trainee_turns().any(|t| {
        contains_any(&t.text, THANKS)
            || a.input
                .persona_name
                .and_then(|n| n.split_whitespace().next())
                .is_some_and(|n| find_phrase(&t.text, n).is_some())
    });
    let mut v = 0.3 * balance
        + 0.3 * sat(reflections.len(), 2)
        + 0.2 * sat(followups, 2)
        + 0.1 * mono_ok
        + 0.1 * f64::from(u8::from(name_or_thanks));
    v -= 0.15 * talked_past as f64;
    v -= 0.3 * a.pressure.len().min(2) as f64;
    v -= 0.08 * a.stacked.len() as f64;
    v -= 0.1 * a.stock as f64;
    s.strength = v;
    s.note(format!(
        "the customer spoke {} of the words; {} turn(s) played back the customer's own words; longest trainee turn {mono} words",
        pct(customer_share),
        reflections.len()
    ));
    if talked_past > 0 {
        s.note(format!("talked past {talked_past} objection(s)"));
    }
    if !a.pressure.is_empty() {
        s.note("kept pushing after a no");
    }
    if a.stock > 0 {
        s.note(format!(
            "{} turn(s) of stock phrases that answered nothing",
            a.stock
        ));
    }
}

fn product(a: &Analysis<'_>, s: &mut Signals) {
    let presenting: Vec<usize> = a
        .trainee()
        .filter(|(i, _)| a.facts[*i].pitch)
        .map(|(i, _)| i)
        .collect();
    let generic: usize = a.trainee().map(|(i, _)| a.facts[i].generic).sum();
    if presenting.is_empty() {
        if a.product_terms().is_empty() {
            s.strength = 0.5;
            s.note("no product terms were configured and the trainee did not present");
        } else {
            s.strength = 0.1;
            s.note("the trainee never connected the product to the customer");
        }
        return;
    }
    let tied: Vec<usize> = presenting
        .iter()
        .copied()
        .filter(|&i| a.facts[i].echoes >= 2)
        .collect();
    let quantified = presenting
        .iter()
        .chain(tied.iter())
        .any(|&i| a.facts[i].customer_numbers >= 1)
        || a.handlings
            .iter()
            .any(|h| h.used_facts && h.resolved && h.value >= 0.5);
    for &i in tied.iter().take(2) {
        s.quote_sentence(a.parties[i], 0);
    }
    let mut v = 0.2
        + 0.35 * sat(tied.len(), 1)
        + 0.15 * sat(tied.len(), 2)
        + 0.3 * f64::from(u8::from(quantified));
    if tied.is_empty() {
        v = v.min(0.3);
    }
    v -= (0.12 * generic as f64).min(0.36);
    s.strength = v;
    s.note(format!(
        "presented in {} turn(s), {} tied to what the customer said{}",
        presenting.len(),
        tied.len(),
        if quantified {
            ", with the customer's own numbers"
        } else {
            ""
        }
    ));
    if generic > 0 {
        s.note(format!("{generic} generic claim(s)"));
    }
}

fn communication(a: &Analysis<'_>, s: &mut Signals) {
    let m = &a.metrics;
    let mut parts: Vec<(f64, f64)> = vec![(0.4, 1.0 - m.filler_rate / 6.0)];
    if let Some((t, r)) = a.trainee_turns().find_map(|t| {
        words(&t.text)
            .iter()
            .find(|w| filler_count(w) > 0)
            .and_then(|w| find_phrase(&t.text, w))
            .map(|r| (t, r))
    }) {
        s.quote(t, r);
    }
    let mono = m.longest_monologue.as_ref();
    let mono_value = match mono {
        Some(sp) => match (sp.ms, m.talk_basis) {
            (Some(ms), super::conversation_metrics::TalkBasis::Time) => {
                (150_000.0 - ms as f64) / 105_000.0
            }
            _ => (160.0 - f64::from(sp.words)) / 100.0,
        },
        None => 0.0,
    };
    parts.push((0.4, mono_value));
    if let Some(wpm) = m.trainee_wpm {
        let off = if wpm < 110.0 {
            110.0 - wpm
        } else if wpm > 170.0 {
            wpm - 170.0
        } else {
            0.0
        };
        parts.push((0.2, 1.0 - off / 60.0));
    }
    let total: f64 = parts.iter().map(|(w, _)| w).sum();
    s.strength = parts
        .iter()
        .map(|(w, v)| w * v.clamp(0.0, 1.0))
        .sum::<f64>()
        / total;
    s.note(format!(
        "{:.1} filler words per 100 words; longest monologue {} words",
        m.filler_rate,
        mono.map_or(0, |sp| sp.words)
    ));
}

fn custom(a: &Analysis<'_>, c: &Criterion, s: &mut Signals) {
    let phrases: Vec<&str> = c
        .signal_phrases
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    let mut parts: Vec<(f64, f64)> = Vec::new();
    if !phrases.is_empty() {
        let mut found = Vec::new();
        for p in &phrases {
            if let Some((t, r)) = a
                .trainee_turns()
                .find_map(|t| find_phrase(&t.text, p).map(|r| (t, r)))
            {
                found.push(format!("\"{p}\""));
                s.quote(t, r);
            }
        }
        parts.push((0.6, sat(found.len(), phrases.len().min(3))));
        if found.is_empty() {
            s.note("none of the rubric's signal phrases were used");
        } else {
            s.note(format!("used {}", found.join(", ")));
        }
    }
    let kws = keywords(&c.description);
    if !kws.is_empty() {
        let mut found = Vec::new();
        for k in &kws {
            if let Some((t, r)) = a
                .trainee_turns()
                .find_map(|t| find_phrase(&t.text, k).map(|r| (t, r)))
            {
                found.push(k.as_str());
                s.quote(t, r);
            }
        }
        parts.push((0.4, sat(found.len(), kws.len().min(3))));
        s.note(format!(
            "touched {} of the criterion's key words{}",
            found.len(),
            if found.is_empty() {
                String::new()
            } else {
                format!(" ({})", found.join(", "))
            }
        ));
    }
    let total: f64 = parts.iter().map(|(w, _)| w).sum();
    s.strength = if total <= 0.0 {
        0.5
    } else {
        parts.iter().map(|(w, v)| w * v).sum::<f64>() / total
    };
}

/// Weighted mean of the normalised criterion scores, 0–100, rounded to 2 decimals. A criterion
/// without a score counts as its minimum.
pub fn overall_score(rubric: &Rubric, scores: &[CriterionScore]) -> f64 {
    let total: f64 = rubric.criteria.iter().map(|c| c.weight.max(0.0)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let sum: f64 = rubric
        .criteria
        .iter()
        .map(|c| c.weight.max(0.0) * normalised(c, scores))
        .sum();
    round2(sum / total)
}

fn normalised(c: &Criterion, scores: &[CriterionScore]) -> f64 {
    scores
        .iter()
        .find(|s| s.criterion_id == c.id)
        .map_or(0.0, |s| c.normalise(s.score))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-skill weighted means (0–100), in the rubric's order of first appearance.
pub fn skill_scores(rubric: &Rubric, scores: &[CriterionScore]) -> Vec<SkillScore> {
    let mut skills: Vec<String> = Vec::new();
    for c in &rubric.criteria {
        let k = c.skill.trim().to_string();
        if !skills.contains(&k) {
            skills.push(k);
        }
    }
    skills
        .into_iter()
        .map(|skill| {
            let cs: Vec<&Criterion> = rubric
                .criteria
                .iter()
                .filter(|c| c.skill.trim() == skill)
                .collect();
            let w: f64 = cs.iter().map(|c| c.weight.max(0.0)).sum();
            let score = if w > 0.0 {
                cs.iter()
                    .map(|c| c.weight.max(0.0) * normalised(c, scores))
                    .sum::<f64>()
                    / w
            } else {
                cs.iter().map(|c| normalised(c, scores)).sum::<f64>() / cs.len().max(1) as f64
            };
            SkillScore {
                skill,
                score: round2(score),
            }
        })
        .collect()
}

/// Criteria ordered by normalised score (descending when `best_first`), ties in rubric order.
fn ranked<'r>(
    rubric: &'r Rubric,
    scores: &[CriterionScore],
    best_first: bool,
) -> Vec<(&'r Criterion, f64)> {
    let mut v: Vec<(&Criterion, f64)> = rubric
        .criteria
        .iter()
        .map(|c| (c, normalised(c, scores)))
        .collect();
    v.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        if best_first { o.reverse() } else { o }
    });
    v
}

fn strengths(rubric: &Rubric, scores: &[CriterionScore]) -> Vec<String> {
    ranked(rubric, scores, true)
        .into_iter()
        .filter(|(_, n)| *n >= 60.0)
        .take(2)
        .filter_map(|(c, _)| {
            let s = scores.iter().find(|s| s.criterion_id == c.id)?;
            Some(format!(
                "{} ({}/{}): {}",
                c.id, s.score, c.scale_max, s.rationale
            ))
        })
        .collect()
}

fn improvements(a: &Analysis<'_>, scores: &[CriterionScore]) -> Vec<String> {
    ranked(a.input.rubric, scores, false)
        .into_iter()
        .filter(|(_, n)| *n < 80.0)
        .take(3)
        .filter_map(|(c, _)| {
            let s = scores.iter().find(|s| s.criterion_id == c.id)?;
            Some(format!(
                "{} ({}/{}): {}",
                c.id,
                s.score,
                c.scale_max,
                tip(a, c)
            ))
        })
        .collect()
}

/// A concrete tip for a weak criterion.
fn tip(a: &Analysis<'_>, c: &Criterion) -> String {
    let m = &a.metrics;
    match criterion_kind(c) {
        SkillKind::Discovery => format!(
            "Ask open questions (what, how, why) and build each one on the customer's last answer, one at a time, before presenting; you asked {} question(s) in total.",
            m.trainee_questions
        ),
        SkillKind::ObjectionHandling => "When the customer pushes back, acknowledge it, ask what is behind it, and answer with the facts they gave you; after a clear no, stop pushing.".to_string(),
        SkillKind::Closing => "Finish by proposing a concrete next step with a day and time (\"Does Tuesday at 2pm work for a 30-minute demo?\") and wait for a clear yes.".to_string(),
        SkillKind::Rapport => format!(
            "Let the customer do most of the talking (you had {} of the words), play their words back to them, and never talk past a no.",
            pct(a.talk_share)
        ),
        SkillKind::ProductKnowledge => {
            let terms = a.product_terms();
            let sample: Vec<&str> = terms.iter().take(3).copied().collect();
            if sample.is_empty() {
                "Tie specific product capabilities to the needs and numbers the customer described.".to_string()
            } else {
                format!(
                    "Tie specific capabilities ({}) to the needs and numbers the customer described.",
                    sample.join(", ")
                )
            }
        }
        SkillKind::Communication => format!(
            "Cut filler words ({:.1} per 100 words) and break long explanations into short turns that end with a check-in question.",
            m.filler_rate
        ),
        SkillKind::Custom => {
            let phrase = c.signal_phrases.iter().map(|p| p.trim()).find(|p| !p.is_empty());
            let desc = c.description.trim();
            match phrase {
                Some(p) => format!("Work on: {desc} Try phrasing such as \"{p}\"."),
                None => format!("Work on: {desc}"),
            }
        }
    }
}

/// An extractive summary for offline mode: who, goal, outcome, key objections.
fn summary(a: &Analysis<'_>) -> String {
    let who = a.input.persona_name.unwrap_or("the customer");
    let turns = a.parties.len();
    let mut out = format!("The trainee spoke with {who} over {turns} turns");
    if let Some(ms) = a.metrics.duration_ms {
        out.push_str(&format!(" ({}s)", ms / 1000));
    }
    out.push_str(&format!(". Goal: {}. ", a.input.goal));
    match (a.close.closed, a.close.evidence.last()) {
        (true, Some(e)) => out.push_str(&format!("Outcome: reached (\"{}\").", e.quote)),
        (true, None) => out.push_str("Outcome: reached."),
        (false, _) => out.push_str("Outcome: not reached."),
    }
    let objections: Vec<String> = a
        .handlings
        .iter()
        .take(2)
        .filter_map(|h| {
            let t = a.parties[h.at];
            let (st, en) = find_any(&t.text, OBJECTIONS)
                .map(|(_, s, e)| (s, e))
                .or_else(|| sentences(&t.text).first().copied())?;
            Some(format!("\"{}\"", quote_around(&t.text, st, en)))
        })
        .collect();
    if !objections.is_empty() {
        out.push_str(&format!(" Key objections: {}.", objections.join("; ")));
    }
    out.push_str(&format!(
        " The trainee asked {} question(s) and talked {} of the time.",
        a.metrics.trainee_questions,
        pct(a.metrics.talk_ratio)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::types::Speaker::{Persona as P, Trainee as T};

    fn crit(id: &str, skill: &str, min: i32, max: i32, weight: f64) -> Criterion {
        Criterion {
            id: id.into(),
            skill: skill.into(),
            description: String::new(),
            weight,
            scale_min: min,
            scale_max: max,
            levels: vec![],
            signal_phrases: vec![],
        }
    }

    fn rubric() -> Rubric {
        let mut compliance = crit("compliance", "Compliance", 1, 5, 1.0);
        compliance.description = "Tells the customer the call is recorded.".into();
        compliance.signal_phrases = vec![
            "this call is recorded".into(),
            "recorded for quality".into(),
        ];
        Rubric {
            criteria: vec![
                crit("discovery", "Discovery", 1, 5, 2.0),
                crit("objections", "Objection handling", 1, 5, 2.0),
                crit("closing", "Closing", 0, 10, 2.0),
                crit("rapport", "Rapport", 1, 5, 1.0),
                crit("product", "Product knowledge", 1, 5, 1.0),
                crit("communication", "Communication", 1, 5, 1.0),
                compliance,
            ],
            passing_score: 70.0,
        }
    }

    fn turns(lines: &[(Speaker, &str)]) -> Vec<Turn> {
        lines
            .iter()
            .enumerate()
            .map(|(i, (s, t))| Turn::new(format!("t{i}"), *s, *t))
            .collect()
    }

    /// Timings at 150 words a minute with 300 ms gaps.
    fn timed(mut ts: Vec<Turn>) -> Vec<Turn> {
        let mut at = 0;
        for t in &mut ts {
            let d = word_count(&t.text) as u64 * 400;
            t.start_ms = Some(at);
            t.end_ms = Some(at + d);
            at += d + 300;
        }
        ts
    }

    fn strong_a() -> Vec<Turn> {
        turns(&[
            (
                T,
                "Hi Dana, thanks for taking the time today. Just so you know, this call is recorded for quality. How is onboarding going for your new reps at the moment?",
            ),
            (
                P,
                "Honestly it is slow. New reps take about four months to ramp, and our managers spend hours every week shadowing calls instead of coaching the people who need it most.",
            ),
            (
                T,
                "That sounds painful. What does a typical first month look like for a new rep? And how do you measure ramp today?",
            ),
            (
                P,
                "Mostly shadowing and reading scripts. We track quota attainment after ninety days, and by then it is usually too late to fix bad habits on live calls.",
            ),
            (T, "Why do you think shadowing is not enough on its own?"),
            (
                P,
                "Reps never get to practise before they face real customers, so their first twenty calls are the practice, and we lose deals that way.",
            ),
            (
                T,
                "Makes sense. Our platform lets reps rehearse with an AI role-play customer, and the analytics dashboard shows managers exactly where each rep struggles. It syncs with your CRM so scores sit next to pipeline data.",
            ),
            (
                P,
                "Interesting, but we already have a training vendor and budget is tight this year.",
            ),
            (
                T,
                "I understand, and that's a fair concern. Many teams keep their existing vendor and add us for practice, because reps ramp about a month faster, which pays for itself within one quarter. What does your current vendor cover?",
            ),
            (
                P,
                "Mainly product training videos and a yearly workshop for the whole team.",
            ),
            (
                T,
                "Then we would complement it nicely. Would a 30 minute demo on Thursday at 10am work for you, Dana?",
            ),
            (P, "Yes, Thursday at 10 works. Send me the invite."),
            (T, "Great, I will send it today. Thank you, Dana."),
        ])
    }

    fn weak_a() -> Vec<Turn> {
        turns(&[
            (
                T,
                "Hi, um, this is Sam from Acme. So, uh, our platform is an AI role-play tool. It has an analytics dashboard and, you know, lots of features, and we have many customers and the product is really, um, great and it is the best on the market and I think you will love it because everyone does and it is easy to use.",
            ),
            (
                P,
                "Okay. But we already have a training vendor and budget is tight.",
            ),
            (
                T,
                "Our platform also has a leaderboard and gamification. It is very modern.",
            ),
            (P, "I am not sure it is for us."),
            (T, "Well, I will email you some brochures. Bye."),
            (P, "Bye."),
        ])
    }

    fn strong_b() -> Vec<Turn> {
        timed(turns(&[
            (
                T,
                "Hi Raj, thanks for joining. This call is recorded for quality. What made you look at forecasting tools this quarter?",
            ),
            (
                P,
                "Our forecasts are off by twenty percent and the board is unhappy about it. The team builds them in spreadsheets every Friday, and every manager has a different method.",
            ),
            (
                T,
                "I'm sorry to hear that. How much time does the team spend on those spreadsheets each week?",
            ),
            (
                P,
                "About a day per manager, so roughly eight days a week across the team, and the numbers still change on Monday.",
            ),
            (
                T,
                "That makes sense. Our forecasting module pulls pipeline data from Salesforce automatically and flags deals at risk, so managers get that day back.",
            ),
            (
                P,
                "It sounds good but honestly it's too expensive for us right now.",
            ),
            (
                T,
                "I understand the concern. For example, eight manager days a week is about forty thousand dollars a month, and the license is a fraction of that, so it pays for itself in the first month. What budget did you have in mind?",
            ),
            (
                P,
                "Put that way, it is reasonable. Send me the contract and we'll sign this week.",
            ),
            (
                T,
                "Thank you, Raj. I will send the contract today. Does Friday at 3pm work for a short onboarding call?",
            ),
            (P, "Yes, Friday at 3pm works."),
        ]))
    }

    fn weak_b() -> Vec<Turn> {
        timed(turns(&[
            (
                T,
                "Hello. I want to tell you about our forecasting module. It connects to Salesforce and it is the best forecasting tool, um, on the market, and, uh, you should buy it today because the price goes up next month.",
            ),
            (
                P,
                "It sounds good but honestly it's too expensive for us right now.",
            ),
            (T, "It's our standard price. Lots of companies use it."),
            (P, "I'm not convinced. We will think about it."),
            (T, "Okay. Let me know."),
        ]))
    }

    fn strong_c() -> Vec<Turn> {
        turns(&[
            (
                T,
                "Good morning Lena, thank you for making time. This call is recorded for quality purposes. Tell me about how your team handles phishing training today?",
            ),
            (
                P,
                "We run a yearly compliance video. Click rates on our phishing tests are still around fifteen percent, which keeps our CISO up at night.",
            ),
            (
                T,
                "That must be frustrating after all that effort. Why do you think the video isn't changing behaviour? And what happens when someone clicks?",
            ),
            (
                P,
                "People forget it within weeks. When someone clicks, IT resets their password and that's it, nobody follows up with them.",
            ),
            (
                T,
                "I see. Our simulation platform sends realistic phishing simulations every month and gives instant micro-training right after a click, so lessons stick.",
            ),
            (
                P,
                "We already have a vendor for the yearly video, and I'm worried about the rollout effort.",
            ),
            (
                T,
                "That's a fair concern. The rollout takes one afternoon because it integrates with your Microsoft 365 directory, and it works alongside your current vendor. How many employees would we include?",
            ),
            (P, "About eight hundred across four departments."),
            (
                T,
                "Would you agree to a two-week pilot with one department, starting Monday?",
            ),
            (P, "Sure, a two-week pilot with finance sounds good."),
            (
                T,
                "Perfect. Thanks, Lena, I'll send the pilot plan this afternoon.",
            ),
        ])
    }

    fn weak_c() -> Vec<Turn> {
        turns(&[
            (
                T,
                "Hi, this is Alex from Shieldly. Do you do phishing training?",
            ),
            (P, "Yes, a yearly compliance video."),
            (
                T,
                "Okay. Our simulation platform is great, um, it sends phishing simulations every month and, uh, gives micro-training. It is really, you know, really good and basically the best thing you can buy for security awareness and I think everybody should have it in their company.",
            ),
            (
                P,
                "We already have a vendor for the yearly video, and I'm worried about the rollout effort.",
            ),
            (T, "It is really not hard. Anyway do you want to buy it?"),
            (P, "No, not right now."),
            (T, "Okay, I'll follow up by email sometime."),
        ])
    }

    fn terms(ts: &[&str]) -> Vec<String> {
        ts.iter().map(|s| s.to_string()).collect()
    }

    fn run(t: &[Turn], goal: &GoalKind, terms: &[String], name: Option<&str>) -> Evaluation {
        let r = rubric();
        let e = grade(GradeInput {
            rubric: &r,
            transcript: t,
            goal,
            product_terms: terms,
            persona_name: name,
        });
        assert!(e.is_ok(), "{e:?}");
        e.unwrap_or_else(|_| unreachable!())
    }

    fn assert_quotes_exact(t: &[Turn], e: &Evaluation) {
        for c in &e.criteria {
            for ev in &c.evidence {
                let turn = t.iter().find(|x| x.id == ev.turn_id);
                assert!(
                    turn.is_some_and(|x| x.text.contains(&ev.quote)) && !ev.quote.is_empty(),
                    "{}: {ev:?} is not an exact substring",
                    c.criterion_id
                );
            }
        }
        for ev in &e.close.evidence {
            assert!(
                t.iter()
                    .any(|x| x.id == ev.turn_id && x.text.contains(&ev.quote))
            );
        }
    }

    fn assert_stronger(strong: &Evaluation, weak: &Evaluation) {
        for (s, w) in strong.criteria.iter().zip(&weak.criteria) {
            assert!(
                s.score > w.score,
                "{}: strong {} ({}) <= weak {} ({})",
                s.criterion_id,
                s.score,
                s.rationale,
                w.score,
                w.rationale
            );
        }
        assert!(strong.overall > weak.overall);
        assert!(
            strong.passed && !weak.passed,
            "{} / {}",
            strong.overall,
            weak.overall
        );
    }

    #[test]
    fn discovery_call_beats_pitch_only_call() {
        let g = GoalKind::BookMeeting;
        let pt = terms(&["analytics dashboard", "CRM", "role-play"]);
        let (s, w) = (strong_a(), weak_a());
        let es = run(&s, &g, &pt, Some("Dana Lee"));
        let ew = run(&w, &g, &pt, Some("Dana Lee"));
        assert_quotes_exact(&s, &es);
        assert_quotes_exact(&w, &ew);
        assert_stronger(&es, &ew);
        assert!(es.close.closed && !ew.close.closed);
    }

    #[test]
    fn answered_objection_beats_ignored_objection() {
        let g = GoalKind::AgreePurchase;
        let pt = terms(&["forecasting", "Salesforce", "deals at risk"]);
        let (s, w) = (strong_b(), weak_b());
        let es = run(&s, &g, &pt, Some("Raj Patel"));
        let ew = run(&w, &g, &pt, Some("Raj Patel"));
        assert_quotes_exact(&s, &es);
        assert_quotes_exact(&w, &ew);
        assert_stronger(&es, &ew);
        assert!(es.close.closed && !ew.close.closed);
        let obj = |e: &Evaluation| {
            e.criteria[1]
                .evidence
                .iter()
                .any(|q| q.quote.contains("I understand"))
        };
        assert!(obj(&es));
        assert_eq!(ew.criteria[1].score, 1);
    }

    #[test]
    fn agreed_pilot_beats_no_next_step() {
        let g = GoalKind::Custom("Agree to a two-week pilot".into());
        let pt = terms(&["phishing simulations", "micro-training", "Microsoft 365"]);
        let (s, w) = (strong_c(), weak_c());
        let es = run(&s, &g, &pt, Some("Lena"));
        let ew = run(&w, &g, &pt, Some("Lena"));
        assert_quotes_exact(&s, &es);
        assert_quotes_exact(&w, &ew);
        assert_stronger(&es, &ew);
        assert!(es.close.closed && !ew.close.closed);
        // "Do you want to buy it?" turned down is an ask without agreement: below the middle of
        // the 0–10 scale, no longer the bottom.
        assert!(ew.criteria[2].score <= 4, "{:?}", ew.criteria[2]);
    }

    #[test]
    fn deterministic_and_well_formed() {
        let g = GoalKind::BookMeeting;
        let pt = terms(&["analytics dashboard", "CRM", "role-play"]);
        let a = run(&weak_a(), &g, &pt, None);
        let b = run(&weak_a(), &g, &pt, None);
        assert_eq!(a, b);
        assert_eq!(a.criteria.len(), 7);
        for c in &a.criteria {
            assert!(!c.rationale.is_empty());
            assert!(c.rationale.ends_with('.'));
        }
        assert!(!a.improvements.is_empty());
        assert!(a.improvements.iter().any(|i| i.starts_with("closing")));
        assert!(a.summary.contains("Goal: book a meeting"));
        assert!(a.summary.contains("Key objections"));
        assert_eq!(a.skills.len(), 7);
        let s = run(&strong_a(), &g, &pt, Some("Dana"));
        assert!(!s.strengths.is_empty());
        assert!(s.summary.contains("Outcome: reached"));
    }

    #[test]
    fn overall_is_weighted_and_normalised() {
        let r = Rubric {
            criteria: vec![crit("a", "x", 1, 5, 3.0), crit("b", "x", 0, 10, 1.0)],
            passing_score: 50.0,
        };
        let sc = |id: &str, s: i32| CriterionScore {
            criterion_id: id.into(),
            score: s,
            rationale: String::new(),
            evidence: vec![],
        };
        // a: (5-1)/4 = 100, b: 0/10 = 0 → (3*100 + 0) / 4 = 75.
        assert_eq!(overall_score(&r, &[sc("a", 5), sc("b", 0)]), 75.0);
        assert_eq!(skill_scores(&r, &[sc("a", 5), sc("b", 0)])[0].score, 75.0);
        // Missing criterion counts as the minimum.
        assert_eq!(overall_score(&r, &[sc("a", 5)]), 75.0);
    }

    #[test]
    fn invalid_rubric_is_an_error() {
        let r = Rubric {
            criteria: vec![],
            passing_score: 50.0,
        };
        let e = grade(GradeInput {
            rubric: &r,
            transcript: &[],
            goal: &GoalKind::BookMeeting,
            product_terms: &[],
            persona_name: None,
        });
        assert_eq!(e.err(), Some(RubricError::NoCriteria));
    }

    #[test]
    fn neutral_when_no_signal_applies() {
        let r = Rubric {
            criteria: vec![
                crit("o", "objection handling", 1, 5, 1.0),
                crit("p", "product knowledge", 1, 5, 1.0),
            ],
            passing_score: 50.0,
        };
        let t = turns(&[(T, "Hello."), (P, "Hi.")]);
        let e = grade(GradeInput {
            rubric: &r,
            transcript: &t,
            goal: &GoalKind::BookMeeting,
            product_terms: &[],
            persona_name: None,
        })
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.criteria[0].score, 3);
        assert_eq!(e.criteria[1].score, 3);
    }
}
