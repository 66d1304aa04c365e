//! The grading pipeline of one job: clean → summarise → grade → close decision → metrics.
//! Step outputs live in the job's checkpoint (JSON) so a retry resumes at the failed step and
//! never pays twice for an LLM answer that was already accepted.

use serde::{Deserialize, Serialize};

use crate::app::inputs::ScenarioInputs;
use crate::domain::close::decide;
use crate::domain::conversation_metrics::{Metrics, compute};
use crate::domain::grader::{self, GradeInput, overall_score, skill_scores};
use crate::domain::llm::LlmAnswer;
use crate::domain::text::{questions, word_count};
use crate::domain::types::{CriterionScore, GoalKind, Rubric, Speaker, Turn};
use salestrainer_proto::grading as pb;
use salestrainer_runtime::time::duration;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Step 1: the cleaned transcript.
    #[serde(default)]
    pub turns: Option<Vec<TurnDto>>,
    /// Step 2.
    #[serde(default)]
    pub summary: Option<String>,
    /// Step 3.
    #[serde(default)]
    pub grade: Option<GradeDto>,
    /// Step 4.
    #[serde(default)]
    pub close: Option<CloseDto>,
    /// Step 5.
    #[serde(default)]
    pub metrics: Option<MetricsDto>,
    /// LLM usage of the accepted calls (failed calls are in llm_usage only).
    #[serde(default)]
    pub usage: UsageDto,
    /// Step 1 too: the distinct `TranscriptSource` numbers of the segments graded.
    #[serde(default)]
    pub sources: Vec<i32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TurnDto {
    pub id: String,
    pub speaker: u8,
    pub text: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

impl From<&Turn> for TurnDto {
    fn from(t: &Turn) -> Self {
        TurnDto {
            id: t.id.clone(),
            speaker: match t.speaker {
                Speaker::Trainee => 1,
                Speaker::Persona => 2,
                Speaker::System => 3,
            },
            text: t.text.clone(),
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        }
    }
}

impl From<&TurnDto> for Turn {
    fn from(t: &TurnDto) -> Self {
        Turn {
            id: t.id.clone(),
            speaker: match t.speaker {
                1 => Speaker::Trainee,
                2 => Speaker::Persona,
                _ => Speaker::System,
            },
            text: t.text.clone(),
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvidenceDto {
    pub turn_id: String,
    pub speaker: i32,
    pub quote: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CriterionDto {
    pub id: String,
    pub skill: String,
    pub score: i32,
    pub scale_min: i32,
    pub scale_max: i32,
    pub normalized: f64,
    pub weight: f64,
    pub rationale: String,
    pub evidence: Vec<EvidenceDto>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradeDto {
    /// `GraderKind` value.
    pub grader: i32,
    pub rubric: String,
    pub criteria: Vec<CriterionDto>,
    pub overall: f64,
    pub skills: Vec<(String, f64)>,
    pub passed: bool,
    /// The rubric's passing score `passed` used (absent in checkpoints written before it was
    /// recorded).
    #[serde(default)]
    pub passing_score: Option<f64>,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub summary: String,
    /// The grader's own verdict on the goal (the LLM's, or the deterministic decision).
    pub closed: bool,
    pub model: String,
    pub prompt_template: String,
    pub prompt_template_revision: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloseDto {
    pub closed: bool,
    pub rationale: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetricsDto {
    pub talk_listen_ratio: f64,
    pub longest_monologue_ms: u64,
    pub longest_customer_story_ms: u64,
    pub questions_trainee: u32,
    pub questions_persona: u32,
    pub questions_per_minute: f64,
    pub filler_word_rate: f64,
    pub words_per_minute: f64,
    pub interruptions: u32,
    pub next_step_set: bool,
    pub trainee_talk_ms: u64,
    pub persona_talk_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UsageDto {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: i64,
    pub requests: u32,
    pub provider: String,
    pub model: String,
}

pub fn turns(cp: &Checkpoint) -> Vec<Turn> {
    cp.turns
        .as_ref()
        .map(|t| t.iter().map(Turn::from).collect())
        .unwrap_or_default()
}

/// Step 2: a short extractive summary. The LLM grader returns its own summary, which replaces
/// it on the evaluation; this one also feeds the grading prompt.
pub fn summarise(transcript: &[Turn], inputs: &ScenarioInputs) -> String {
    let trainee: Vec<&Turn> = transcript
        .iter()
        .filter(|t| t.speaker == Speaker::Trainee)
        .collect();
    let persona: Vec<&Turn> = transcript
        .iter()
        .filter(|t| t.speaker == Speaker::Persona)
        .collect();
    let tw: usize = trainee.iter().map(|t| word_count(&t.text)).sum();
    let pw: usize = persona.iter().map(|t| word_count(&t.text)).sum();
    let q: usize = trainee.iter().map(|t| questions(&t.text).len()).sum();
    let who = inputs.persona_name.as_deref().unwrap_or("the customer");
    let mut s = format!(
        "A {}-turn call with {who} (goal: {}). The trainee spoke {tw} words and asked {q} questions; the customer spoke {pw} words.",
        trainee.len() + persona.len(),
        inputs.goal
    );
    if let Some(last) = persona.last() {
        let text: String = last.text.chars().take(160).collect();
        s.push_str(&format!(" The customer's last words: \"{text}\"."));
    }
    s
}

fn speaker_of(transcript: &[Turn], turn_id: &str) -> i32 {
    match transcript
        .iter()
        .find(|t| t.id == turn_id)
        .map(|t| t.speaker)
    {
        Some(Speaker::Trainee) => pb::Speaker::Trainee as i32,
        Some(Speaker::Persona) => pb::Speaker::Persona as i32,
        Some(Speaker::System) => pb::Speaker::System as i32,
        None => pb::Speaker::Unspecified as i32,
    }
}

fn criteria_dto(
    rubric: &Rubric,
    scores: &[CriterionScore],
    transcript: &[Turn],
) -> Vec<CriterionDto> {
    rubric
        .criteria
        .iter()
        .map(|c| {
            let s = scores.iter().find(|s| s.criterion_id == c.id);
            let score = s.map_or(c.scale_min, |s| s.score);
            CriterionDto {
                id: c.id.clone(),
                skill: c.skill.clone(),
                score,
                scale_min: c.scale_min,
                scale_max: c.scale_max,
                normalized: c.normalise(score),
                weight: c.weight,
                rationale: s.map(|s| s.rationale.clone()).unwrap_or_default(),
                evidence: s
                    .map(|s| {
                        s.evidence
                            .iter()
                            .map(|e| EvidenceDto {
                                turn_id: e.turn_id.clone(),
                                speaker: speaker_of(transcript, &e.turn_id),
                                quote: e.quote.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Step 3, offline: the built-in deterministic grader.
pub fn grade_deterministic(
    inputs: &ScenarioInputs,
    transcript: &[Turn],
) -> Result<GradeDto, crate::domain::types::RubricError> {
    let terms = inputs.product_terms();
    let e = grader::grade(GradeInput {
        rubric: &inputs.rubric,
        transcript,
        goal: &inputs.goal,
        product_terms: &terms,
        persona_name: inputs.persona_name.as_deref(),
    })?;
    Ok(GradeDto {
        grader: pb::GraderKind::Deterministic as i32,
        rubric: inputs.rubric_name.clone(),
        criteria: criteria_dto(&inputs.rubric, &e.criteria, transcript),
        overall: e.overall,
        skills: e
            .skills
            .iter()
            .map(|s| (s.skill.clone(), s.score))
            .collect(),
        passed: e.passed,
        passing_score: Some(inputs.rubric.passing_score),
        strengths: e.strengths,
        improvements: e.improvements,
        summary: e.summary,
        closed: e.close.closed,
        model: String::new(),
        prompt_template: String::new(),
        prompt_template_revision: 0,
    })
}

/// Step 3 with an LLM: the validated answer in the same shape.
pub fn grade_from_llm(
    inputs: &ScenarioInputs,
    transcript: &[Turn],
    answer: LlmAnswer,
    model: &str,
) -> GradeDto {
    let overall = overall_score(&inputs.rubric, &answer.criteria);
    let skills = skill_scores(&inputs.rubric, &answer.criteria);
    GradeDto {
        grader: pb::GraderKind::Llm as i32,
        rubric: inputs.rubric_name.clone(),
        criteria: criteria_dto(&inputs.rubric, &answer.criteria, transcript),
        overall,
        skills: skills.iter().map(|s| (s.skill.clone(), s.score)).collect(),
        passed: overall >= inputs.rubric.passing_score,
        passing_score: Some(inputs.rubric.passing_score),
        strengths: answer.strengths,
        improvements: answer.improvements,
        summary: answer.summary,
        closed: answer.closed,
        model: model.to_owned(),
        prompt_template: inputs
            .template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        prompt_template_revision: inputs.template.as_ref().map_or(0, |t| t.revision),
    }
}

/// Step 4: the close decision. The transcript evidence decides; for the LLM grader its verdict
/// is also accepted when the lexicon finds nothing (goals phrased in free text).
pub fn close_decision(goal: &GoalKind, transcript: &[Turn], grade: &GradeDto) -> CloseDto {
    let d = decide(goal, transcript);
    if !d.closed && grade.grader == pb::GraderKind::Llm as i32 && grade.closed {
        return CloseDto {
            closed: true,
            rationale: "the grading model judged the goal reached".into(),
        };
    }
    CloseDto {
        closed: d.closed,
        rationale: d.rationale,
    }
}

/// Untimed spans are estimated at 150 words per minute.
fn span_ms(s: Option<&crate::domain::conversation_metrics::Span>) -> u64 {
    s.map_or(0, |s| s.ms.unwrap_or(u64::from(s.words) * 400))
}

/// Step 5.
pub fn metrics(transcript: &[Turn]) -> MetricsDto {
    let m: Metrics = compute(transcript);
    MetricsDto {
        talk_listen_ratio: m.talk_ratio,
        longest_monologue_ms: span_ms(m.longest_monologue.as_ref()),
        longest_customer_story_ms: span_ms(m.longest_customer_story.as_ref()),
        questions_trainee: m.trainee_questions,
        questions_persona: m.persona_questions,
        questions_per_minute: m.trainee_questions_per_min.unwrap_or(0.0),
        filler_word_rate: m.filler_rate,
        words_per_minute: m.trainee_wpm.unwrap_or(0.0),
        interruptions: m.trainee_interruptions,
        next_step_set: m.next_step.is_some(),
        trainee_talk_ms: m.trainee_talk_ms.unwrap_or(0),
        persona_talk_ms: m.persona_talk_ms.unwrap_or(0),
    }
}

/// A metric's milliseconds as the runtime's duration takes them.
pub fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

pub fn metrics_pb(m: &MetricsDto) -> pb::ConversationMetrics {
    pb::ConversationMetrics {
        talk_listen_ratio: m.talk_listen_ratio,
        longest_monologue: Some(duration(ms_i64(m.longest_monologue_ms))),
        longest_customer_story: Some(duration(ms_i64(m.longest_customer_story_ms))),
        questions_asked_trainee: i32::try_from(m.questions_trainee).unwrap_or(i32::MAX),
        questions_asked_persona: i32::try_from(m.questions_persona).unwrap_or(i32::MAX),
        questions_per_minute: m.questions_per_minute,
        filler_word_rate: m.filler_word_rate,
        words_per_minute: m.words_per_minute,
        interruptions: i32::try_from(m.interruptions).unwrap_or(i32::MAX),
        next_step_set: m.next_step_set,
        trainee_talk_time: Some(duration(ms_i64(m.trainee_talk_ms))),
        persona_talk_time: Some(duration(ms_i64(m.persona_talk_ms))),
    }
}

pub fn usage_pb(u: &UsageDto) -> pb::LlmUsage {
    pb::LlmUsage {
        prompt_tokens: i64::try_from(u.prompt_tokens).unwrap_or(i64::MAX),
        completion_tokens: i64::try_from(u.completion_tokens).unwrap_or(i64::MAX),
        cost_micros: u.cost_micros,
        provider: u.provider.clone(),
        model: u.model.clone(),
        requests: i32::try_from(u.requests).unwrap_or(i32::MAX),
    }
}

/// The evaluation (without its name-dependent fields) from a complete checkpoint.
pub fn evaluation_pb(
    cp: &Checkpoint,
    g: &GradeDto,
    close: &CloseDto,
    m: &MetricsDto,
) -> pb::Evaluation {
    let summary = if g.summary.trim().is_empty() {
        cp.summary.clone().unwrap_or_default()
    } else {
        g.summary.clone()
    };
    pb::Evaluation {
        rubric: g.rubric.clone(),
        overall_score: g.overall,
        passed: g.passed,
        passing_score: g.passing_score,
        closed: close.closed,
        summary,
        strengths: g.strengths.clone(),
        improvements: g.improvements.clone(),
        criterion_scores: g
            .criteria
            .iter()
            .map(|c| pb::CriterionScore {
                criterion_id: c.id.clone(),
                skill: c.skill.clone(),
                score: f64::from(c.score),
                scale_min: c.scale_min,
                scale_max: c.scale_max,
                normalized_score: c.normalized,
                weight: c.weight,
                rationale: c.rationale.clone(),
                evidence: c
                    .evidence
                    .iter()
                    .map(|e| pb::EvidenceQuote {
                        speaker: e.speaker,
                        text: e.quote.clone(),
                        segment_id: e.turn_id.clone(),
                    })
                    .collect(),
                r#override: None,
            })
            .collect(),
        skill_scores: g
            .skills
            .iter()
            .map(|(skill, score)| pb::SkillScore {
                skill: skill.clone(),
                score: *score,
            })
            .collect(),
        metrics: Some(metrics_pb(m)),
        usage: Some(usage_pb(&cp.usage)),
        grader: g.grader,
        prompt_template: g.prompt_template.clone(),
        prompt_template_revision: g.prompt_template_revision,
        model: g.model.clone(),
        transcript_sources: cp.sources.clone(),
        ..Default::default()
    }
}
