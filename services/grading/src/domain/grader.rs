//! The built-in deterministic grader: every criterion scored from explainable signals in the
//! transcript, with the lines it relied on quoted. Used when no LLM credential is configured.
//!
//! Each criterion gets a strength in 0..=1, a weighted mean of saturating signals chosen by
//! the criterion's skill; the score is that strength mapped onto the criterion's scale. Every
//! signal only grows with better behaviour, which is what makes a stronger call rank above a
//! weaker one.

use super::close::{CloseDecision, decide};
use super::metrics::{Metrics, compute};
use super::text::{
    NEXT_STEP_TERMS, contains_any, filler_count, find_any, find_phrase, find_time_expr,
    is_open_question, keywords, proposes, questions, quote_around, sentences, word_count, words,
};
use super::types::{
    Criterion, CriterionScore, Evidence, GoalKind, Rubric, RubricError, Speaker, Turn,
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
    if has(&["objection", "pushback", "push-back"]) {
        SkillKind::ObjectionHandling
    } else if has(&["discover", "question", "needs", "qualif"]) {
        SkillKind::Discovery
    } else if has(&["clos", "next step", "next-step", "commitment"]) {
        SkillKind::Closing
    } else if has(&["rapport", "relationship", "empathy", "trust", "listening"]) {
        SkillKind::Rapport
    } else if has(&["product", "knowledge", "value prop"]) {
        SkillKind::ProductKnowledge
    } else if has(&[
        "communicat",
        "clarity",
        "delivery",
        "presentation",
        "conciseness",
    ]) {
        SkillKind::Communication
    } else {
        SkillKind::Custom
    }
}

const OBJECTION_CUES: &[&str] = &[
    "too expensive",
    "expensive",
    "pricey",
    "too much",
    "budget",
    "concern",
    "concerned",
    "worried",
    "not sure",
    "already have",
    "already use",
    "already using",
    "happy with",
    "don't need",
    "no time",
    "not interested",
    "not convinced",
    "not a priority",
    "risk",
    "risky",
    "hesitant",
    "skeptical",
    "sceptical",
    "doubt",
    "cheaper",
    "but",
];

const ACK_CUES: &[&str] = &[
    "i understand",
    "i hear you",
    "that's fair",
    "fair point",
    "good point",
    "great question",
    "good question",
    "makes sense",
    "i get that",
    "i get it",
    "totally understand",
    "understandable",
    "i appreciate",
    "valid concern",
    "fair concern",
    "that's a fair",
    "that's a valid",
    "i see",
    "you're right",
    "that's a common",
    "a lot of our customers felt",
    "i can see why",
];

const RESPONSE_CUES: &[&str] = &[
    "because",
    "for example",
    "for instance",
    "that's why",
    "what if",
    "compared to",
    "in fact",
    "customers like you",
    "other teams",
    "our customers",
    "roi",
    "return",
    "pays for itself",
    "save",
    "saves",
    "cut",
    "reduce",
    "integrates",
    "works alongside",
    "alongside",
    "guarantee",
    "risk-free",
    "no risk",
    "trial",
    "pilot",
];

const PITCH_CUES: &[&str] = &[
    "our product",
    "our platform",
    "our solution",
    "our software",
    "our tool",
    "our service",
    "we offer",
    "we provide",
    "let me tell you about",
    "let me show you",
    "we help",
    "it lets you",
    "our pricing",
];

const EMPATHY_CUES: &[&str] = &[
    "i understand",
    "that sounds",
    "i hear you",
    "makes sense",
    "i can imagine",
    "sorry to hear",
    "that must be",
    "great to hear",
    "glad to hear",
    "i appreciate",
    "totally understand",
    "i get that",
];

const THANKS_CUES: &[&str] = &[
    "thank you",
    "thanks",
    "appreciate your time",
    "i appreciate",
];

const TRIAL_CLOSE_CUES: &[&str] = &[
    "does that make sense",
    "how does that sound",
    "what do you think",
    "would that help",
    "does that sound",
    "how would that work for you",
    "does that work",
];

/// Accumulates signals for one criterion.
#[derive(Default)]
struct Signals {
    parts: Vec<(f64, f64)>,
    notes: Vec<String>,
    evidence: Vec<Evidence>,
}

impl Signals {
    fn part(&mut self, weight: f64, value: f64) {
        self.parts.push((weight, value.clamp(0.0, 1.0)));
    }

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

    fn strength(&self) -> f64 {
        let total: f64 = self.parts.iter().map(|(w, _)| w).sum();
        if total <= 0.0 {
            return 0.5;
        }
        self.parts.iter().map(|(w, v)| w * v).sum::<f64>() / total
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

/// Facts computed once per call and shared by every criterion.
struct Analysis<'a> {
    input: GradeInput<'a>,
    metrics: Metrics,
    close: CloseDecision,
    /// Persona turns that object, each with the trainee's reply (if any).
    objections: Vec<(&'a Turn, Option<&'a Turn>)>,
}

impl<'a> Analysis<'a> {
    fn new(input: GradeInput<'a>) -> Analysis<'a> {
        let parties: Vec<&Turn> = input
            .transcript
            .iter()
            .filter(|t| t.speaker != Speaker::System)
            .collect();
        let objections = parties
            .iter()
            .enumerate()
            .filter(|(_, t)| t.speaker == Speaker::Persona && contains_any(&t.text, OBJECTION_CUES))
            .map(|(i, t)| {
                let reply = parties
                    .get(i + 1)
                    .copied()
                    .filter(|r| r.speaker == Speaker::Trainee);
                (*t, reply)
            })
            .collect();
        Analysis {
            metrics: compute(input.transcript),
            close: decide(input.goal, input.transcript),
            objections,
            input,
        }
    }

    fn trainee_turns(&self) -> impl Iterator<Item = &'a Turn> + '_ {
        self.input
            .transcript
            .iter()
            .filter(|t| t.speaker == Speaker::Trainee)
    }

    fn product_terms(&self) -> Vec<&'a str> {
        self.input
            .product_terms
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect()
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
    let kind = skill_kind(&c.skill);
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
        signal_phrases(a, c, &mut s, 0.3);
    }
    let span = f64::from(c.scale_max) - f64::from(c.scale_min);
    let score = f64::from(c.scale_min) + (s.strength() * span).round();
    // Clamped, so the cast cannot leave the scale.
    let score = score.clamp(f64::from(c.scale_min), f64::from(c.scale_max)) as i32;
    let mut rationale = s.notes.join("; ");
    if let Some(first) = rationale.get(..1) {
        rationale = format!("{}{}.", first.to_uppercase(), &rationale[1..]);
    }
    CriterionScore {
        criterion_id: c.id.clone(),
        score,
        rationale,
        evidence: s.evidence,
    }
}

/// The rubric's own phrases, found in trainee turns.
fn signal_phrases(a: &Analysis<'_>, c: &Criterion, s: &mut Signals, weight: f64) {
    let phrases: Vec<&str> = c
        .signal_phrases
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    if phrases.is_empty() {
        return;
    }
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
    s.part(weight, sat(found.len(), phrases.len().min(3)));
    if found.is_empty() {
        s.note("none of the rubric's signal phrases were used");
    } else {
        s.note(format!("used {}", found.join(", ")));
    }
}

fn discovery(a: &Analysis<'_>, s: &mut Signals) {
    let terms = a.product_terms();
    let mut total = 0;
    let mut open = 0;
    let mut before_pitch = 0;
    let mut pitched = false;
    for t in a.trainee_turns() {
        let qs = questions(&t.text);
        total += qs.len();
        for &(qs_, qe) in &qs {
            if is_open_question(&t.text[qs_..qe]) {
                open += 1;
                if open <= 3 {
                    s.quote(t, (qs_, qe));
                }
            }
        }
        let pitch_here = contains_any(&t.text, PITCH_CUES)
            || terms.iter().any(|p| find_phrase(&t.text, p).is_some());
        if !pitched {
            // Questions in the pitching turn itself come after the pitch starts.
            if !pitch_here {
                before_pitch += qs.len();
            }
            pitched = pitch_here;
        }
    }
    let ratio = a.metrics.talk_ratio;
    let listen = ((0.7 - ratio) / 0.3).clamp(0.0, 1.0);
    s.part(0.35, sat(open, 4));
    s.part(0.2, sat(total, 6));
    s.part(0.25, sat(before_pitch, 3));
    s.part(0.2, listen);
    s.note(format!(
        "asked {total} question(s), {open} open, {before_pitch} before pitching; trainee talked {} of the time",
        pct(ratio)
    ));
}

fn objections(a: &Analysis<'_>, s: &mut Signals) {
    if a.objections.is_empty() {
        s.note("the customer raised no objection to handle");
        return;
    }
    let mut acked = 0;
    let mut answered = 0;
    let mut values = Vec::new();
    for (obj, reply) in &a.objections {
        let Some(reply) = reply else {
            values.push(0.0);
            continue;
        };
        let ack = find_any(&reply.text, ACK_CUES);
        let obj_words: Vec<String> = keywords(&obj.text);
        let reply_words = words(&reply.text);
        let overlaps = obj_words.iter().any(|w| reply_words.contains(w));
        let cue = find_any(&reply.text, RESPONSE_CUES);
        // A clarifying question is an open one; "do you want to buy it?" is not an answer.
        let clarifies = questions(&reply.text)
            .iter()
            .any(|&(qs, qe)| is_open_question(&reply.text[qs..qe]));
        let responds = word_count(&reply.text) >= 8 && (cue.is_some() || clarifies || overlaps);
        if let Some((_, st, en)) = ack {
            acked += 1;
            s.quote(reply, (st, en));
        }
        if responds {
            answered += 1;
            match cue {
                Some((_, st, en)) => s.quote(reply, (st, en)),
                None => s.quote(
                    reply,
                    sentences(&reply.text).last().copied().unwrap_or((0, 0)),
                ),
            }
        }
        values.push(0.5 * f64::from(u8::from(ack.is_some())) + 0.5 * f64::from(u8::from(responds)));
    }
    let n = a.objections.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    s.part(1.0, mean);
    s.note(format!(
        "the customer objected {n} time(s); the trainee acknowledged {acked} and answered {answered}"
    ));
}

fn closing(a: &Analysis<'_>, s: &mut Signals) {
    let ask = a.trainee_turns().find_map(|t| {
        if !proposes(&t.text) {
            return None;
        }
        find_any(&t.text, NEXT_STEP_TERMS)
            .map(|(_, st, en)| (st, en))
            .or_else(|| find_time_expr(&t.text))
            .map(|r| (t, r))
    });
    if let Some((t, r)) = ask {
        s.quote(t, r);
    }
    let trial = a
        .trainee_turns()
        .find_map(|t| find_any(&t.text, TRIAL_CLOSE_CUES).map(|(_, st, en)| (t, (st, en))));
    if let Some((t, r)) = trial {
        s.quote(t, r);
    }
    let agreed = a.metrics.next_step.as_ref();
    if let Some(ns) = agreed
        && s.evidence.len() < 4
    {
        s.evidence.push(ns.acceptance.clone());
    }
    s.part(0.35, f64::from(u8::from(ask.is_some())));
    s.part(0.35, f64::from(u8::from(agreed.is_some())));
    s.part(0.2, f64::from(u8::from(a.close.closed)));
    s.part(0.1, f64::from(u8::from(trial.is_some())));
    s.note(format!(
        "{}; {}; goal \"{}\" {}",
        if ask.is_some() {
            "asked for a concrete next step"
        } else {
            "never asked for a concrete next step"
        },
        if agreed.is_some() {
            "the customer agreed to it"
        } else {
            "no next step was agreed"
        },
        a.input.goal,
        if a.close.closed {
            "reached"
        } else {
            "not reached"
        }
    ));
}

fn rapport(a: &Analysis<'_>, s: &mut Signals) {
    let mut notes = Vec::new();
    if let Some(name) = a
        .input
        .persona_name
        .and_then(|n| n.split_whitespace().next())
    {
        let used = a
            .trainee_turns()
            .find_map(|t| find_phrase(&t.text, name).map(|r| (t, r)));
        if let Some((t, r)) = used {
            s.quote(t, r);
        }
        s.part(0.15, f64::from(u8::from(used.is_some())));
        notes.push(
            if used.is_some() {
                "used the customer's name"
            } else {
                "never used the customer's name"
            }
            .to_string(),
        );
    }
    let thanks = a
        .trainee_turns()
        .find_map(|t| find_any(&t.text, THANKS_CUES).map(|(_, st, en)| (t, (st, en))));
    if let Some((t, r)) = thanks {
        s.quote(t, r);
    }
    s.part(0.15, f64::from(u8::from(thanks.is_some())));
    let mut empathy = 0;
    for t in a.trainee_turns() {
        if let Some((_, st, en)) = find_any(&t.text, EMPATHY_CUES) {
            empathy += 1;
            s.quote(t, (st, en));
        }
    }
    s.part(0.35, sat(empathy, 2));
    let r = a.metrics.talk_ratio;
    let balance = if r < 0.3 {
        (r - 0.1) / 0.2
    } else if r > 0.6 {
        (0.85 - r) / 0.25
    } else {
        1.0
    };
    s.part(0.35, balance);
    if a.metrics.duration_ms.is_some() {
        let n = a.metrics.trainee_interruptions;
        s.part(0.1, 1.0 - 0.34 * f64::from(n));
        notes.push(format!("interrupted the customer {n} time(s)"));
    }
    notes.push(format!(
        "{}; {empathy} empathetic turn(s); trainee talked {} of the time",
        if thanks.is_some() {
            "thanked the customer"
        } else {
            "never thanked the customer"
        },
        pct(r)
    ));
    s.note(notes.join("; "));
}

fn product(a: &Analysis<'_>, s: &mut Signals) {
    let terms = a.product_terms();
    if terms.is_empty() {
        s.note("no product terms were configured for this scenario");
        return;
    }
    let mut found = Vec::new();
    for p in &terms {
        if let Some((t, r)) = a
            .trainee_turns()
            .find_map(|t| find_phrase(&t.text, p).map(|r| (t, r)))
        {
            found.push(*p);
            s.quote(t, r);
        }
    }
    s.part(1.0, sat(found.len(), terms.len().min(4)));
    s.note(format!(
        "mentioned {} of {} key product term(s){}",
        found.len(),
        terms.len(),
        if found.is_empty() {
            String::new()
        } else {
            format!(" ({})", found.join(", "))
        }
    ));
}

fn communication(a: &Analysis<'_>, s: &mut Signals) {
    let m = &a.metrics;
    s.part(0.4, 1.0 - m.filler_rate / 6.0);
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
            (Some(ms), super::metrics::TalkBasis::Time) => (150_000.0 - ms as f64) / 105_000.0,
            _ => (200.0 - f64::from(sp.words)) / 140.0,
        },
        None => 0.0,
    };
    s.part(0.4, mono_value);
    if let Some(wpm) = m.trainee_wpm {
        let off = if wpm < 110.0 {
            110.0 - wpm
        } else if wpm > 170.0 {
            wpm - 170.0
        } else {
            0.0
        };
        s.part(0.2, 1.0 - off / 60.0);
    }
    s.note(format!(
        "{:.1} filler words per 100 words; longest monologue {} words",
        m.filler_rate,
        mono.map_or(0, |sp| sp.words)
    ));
}

fn custom(a: &Analysis<'_>, c: &Criterion, s: &mut Signals) {
    signal_phrases(a, c, s, 0.6);
    let kws = keywords(&c.description);
    if kws.is_empty() {
        return;
    }
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
    s.part(0.4, sat(found.len(), kws.len().min(3)));
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
    match skill_kind(&c.skill) {
        SkillKind::Discovery => format!(
            "Ask two or three open questions (what, how, why) about their current process and pain before presenting; you asked {} question(s) in total.",
            m.trainee_questions
        ),
        SkillKind::ObjectionHandling => "When the customer pushes back, acknowledge it first (\"I understand the concern about…\"), then answer it with a specific example or a clarifying question before moving on.".to_string(),
        SkillKind::Closing => "Finish by proposing a concrete next step with a day and time (\"Does Tuesday at 2pm work for a 30-minute demo?\") and wait for a clear yes.".to_string(),
        SkillKind::Rapport => format!(
            "Use the customer's name, thank them for their time, reflect what they say, and keep your share of the talk between 30% and 60% (it was {}).",
            pct(m.talk_ratio)
        ),
        SkillKind::ProductKnowledge => {
            let terms = a.product_terms();
            let sample: Vec<&str> = terms.iter().take(3).copied().collect();
            if sample.is_empty() {
                "Tie specific product capabilities to the needs the customer described.".to_string()
            } else {
                format!(
                    "Tie specific capabilities ({}) to the needs the customer described.",
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
    let turns = a
        .input
        .transcript
        .iter()
        .filter(|t| t.speaker != Speaker::System)
        .count();
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
        .objections
        .iter()
        .take(2)
        .filter_map(|(t, _)| {
            let (_, st, en) = find_any(&t.text, OBJECTION_CUES)?;
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
        assert_eq!(ew.criteria[2].score, 0);
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
