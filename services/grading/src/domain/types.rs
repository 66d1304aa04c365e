//! Domain types shared by the grading steps. Independent of protobuf: the gRPC layer translates.

use std::fmt;

/// Who spoke a turn. In a training call the trainee is the human sales rep and the persona is
/// the AI customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Speaker {
    Trainee,
    Persona,
    System,
}

impl Speaker {
    /// Maps a provider's speaker label to a speaker, or `None` when the label is unknown.
    ///
    /// Voice platforms name the parties from the bot's point of view: in VAPI the `assistant`
    /// (in Retell the `agent`) is the AI, i.e. our persona, and the `user` is the human trainee.
    /// "agent" is therefore the persona, not the sales agent; "rep" / "salesperson" are ours.
    pub fn from_label(label: &str) -> Option<Speaker> {
        let l = label.trim().to_ascii_lowercase();
        let speaker = match l.as_str() {
            "user" | "human" | "trainee" | "rep" | "sales_rep" | "sales rep" | "salesperson"
            | "seller" | "caller" | "learner" => Speaker::Trainee,
            "assistant" | "bot" | "ai" | "agent" | "model" | "persona" | "customer"
            | "prospect" | "buyer" | "client" => Speaker::Persona,
            "system" | "tool" | "function" | "tool_calls" | "tool_call_result" | "narrator" => {
                Speaker::System
            }
            _ => return None,
        };
        Some(speaker)
    }
}

impl fmt::Display for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Speaker::Trainee => "Trainee",
            Speaker::Persona => "Customer",
            Speaker::System => "System",
        })
    }
}

/// One turn of a cleaned transcript. `id` is stable so evidence quotes can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub id: String,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

impl Turn {
    /// Convenience constructor (untimed).
    pub fn new(id: impl Into<String>, speaker: Speaker, text: impl Into<String>) -> Turn {
        Turn {
            id: id.into(),
            speaker,
            text: text.into(),
            start_ms: None,
            end_ms: None,
        }
    }

    /// Same as [`Turn::new`] with timings.
    pub fn timed(
        id: impl Into<String>,
        speaker: Speaker,
        text: impl Into<String>,
        start_ms: u64,
        end_ms: u64,
    ) -> Turn {
        Turn {
            start_ms: Some(start_ms),
            end_ms: Some(end_ms),
            ..Turn::new(id, speaker, text)
        }
    }

    /// Duration when both timings are present and ordered.
    pub fn duration_ms(&self) -> Option<u64> {
        match (self.start_ms, self.end_ms) {
            (Some(s), Some(e)) if e >= s => Some(e - s),
            _ => None,
        }
    }
}

pub type Transcript = Vec<Turn>;

/// A turn as it arrives from a voice provider or the chat call, before cleaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTurn {
    pub id: String,
    pub speaker_label: String,
    pub text: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

/// A quoted line the grader relied on: `quote` is an exact substring of the turn `turn_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub turn_id: String,
    pub quote: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub id: String,
    /// Free-form skill label ("discovery", "objection handling", or a custom one).
    pub skill: String,
    pub description: String,
    pub weight: f64,
    pub scale_min: i32,
    pub scale_max: i32,
    /// Anchors of the scale: (score, what that score looks like).
    pub levels: Vec<(i32, String)>,
    pub signal_phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    pub criteria: Vec<Criterion>,
    /// 0–100, compared with the overall score.
    pub passing_score: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RubricError {
    NoCriteria,
    EmptyCriterionId,
    DuplicateCriterion(String),
    BadScale {
        criterion_id: String,
        min: i32,
        max: i32,
    },
    BadWeight {
        criterion_id: String,
    },
    ZeroTotalWeight,
    BadPassingScore,
}

impl fmt::Display for RubricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RubricError::NoCriteria => write!(f, "the rubric has no criteria"),
            RubricError::EmptyCriterionId => write!(f, "a criterion has an empty id"),
            RubricError::DuplicateCriterion(id) => write!(f, "criterion {id:?} appears twice"),
            RubricError::BadScale {
                criterion_id,
                min,
                max,
            } => write!(
                f,
                "criterion {criterion_id:?} has scale {min}..{max}; min must be below max"
            ),
            RubricError::BadWeight { criterion_id } => write!(
                f,
                "criterion {criterion_id:?} has a negative or non-finite weight"
            ),
            RubricError::ZeroTotalWeight => write!(f, "the criteria weights sum to zero"),
            RubricError::BadPassingScore => write!(f, "the passing score must be within 0..=100"),
        }
    }
}

impl std::error::Error for RubricError {}

impl Rubric {
    /// Checks what the grader and the schema builder rely on.
    pub fn validate(&self) -> Result<(), RubricError> {
        if self.criteria.is_empty() {
            return Err(RubricError::NoCriteria);
        }
        let mut total = 0.0;
        for (i, c) in self.criteria.iter().enumerate() {
            if c.id.trim().is_empty() {
                return Err(RubricError::EmptyCriterionId);
            }
            if self.criteria[..i].iter().any(|o| o.id == c.id) {
                return Err(RubricError::DuplicateCriterion(c.id.clone()));
            }
            if c.scale_min >= c.scale_max {
                return Err(RubricError::BadScale {
                    criterion_id: c.id.clone(),
                    min: c.scale_min,
                    max: c.scale_max,
                });
            }
            if !c.weight.is_finite() || c.weight < 0.0 {
                return Err(RubricError::BadWeight {
                    criterion_id: c.id.clone(),
                });
            }
            total += c.weight;
        }
        if total <= 0.0 {
            return Err(RubricError::ZeroTotalWeight);
        }
        if !self.passing_score.is_finite() || !(0.0..=100.0).contains(&self.passing_score) {
            return Err(RubricError::BadPassingScore);
        }
        Ok(())
    }

    pub fn criterion(&self, id: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.id == id)
    }
}

impl Criterion {
    /// Maps a score on this criterion's scale to 0–100.
    pub fn normalise(&self, score: i32) -> f64 {
        let span = f64::from(self.scale_max) - f64::from(self.scale_min);
        if span <= 0.0 {
            return 0.0;
        }
        let s = score.clamp(self.scale_min, self.scale_max);
        (f64::from(s) - f64::from(self.scale_min)) / span * 100.0
    }
}

/// The goal of the scenario: what "closing the deal" means for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalKind {
    BookMeeting,
    AgreePurchase,
    /// A free-text goal, e.g. "agree to a two-week pilot".
    Custom(String),
}

impl fmt::Display for GoalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoalKind::BookMeeting => f.write_str("book a meeting"),
            GoalKind::AgreePurchase => f.write_str("agree a purchase"),
            GoalKind::Custom(s) => f.write_str(s.trim()),
        }
    }
}

/// A score for one criterion, from either grader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionScore {
    pub criterion_id: String,
    pub score: i32,
    pub rationale: String,
    pub evidence: Vec<Evidence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(id: &str, min: i32, max: i32, w: f64) -> Criterion {
        Criterion {
            id: id.into(),
            skill: "discovery".into(),
            description: String::new(),
            weight: w,
            scale_min: min,
            scale_max: max,
            levels: vec![],
            signal_phrases: vec![],
        }
    }

    #[test]
    fn speaker_labels_follow_voice_platform_conventions() {
        assert_eq!(Speaker::from_label("assistant"), Some(Speaker::Persona));
        assert_eq!(Speaker::from_label(" User "), Some(Speaker::Trainee));
        assert_eq!(Speaker::from_label("agent"), Some(Speaker::Persona));
        assert_eq!(Speaker::from_label("rep"), Some(Speaker::Trainee));
        assert_eq!(Speaker::from_label("customer"), Some(Speaker::Persona));
        assert_eq!(Speaker::from_label("bot"), Some(Speaker::Persona));
        assert_eq!(Speaker::from_label("system"), Some(Speaker::System));
        assert_eq!(Speaker::from_label("martian"), None);
    }

    #[test]
    fn rubric_validation() {
        let ok = Rubric {
            criteria: vec![crit("a", 1, 5, 1.0)],
            passing_score: 70.0,
        };
        assert_eq!(ok.validate(), Ok(()));
        let dup = Rubric {
            criteria: vec![crit("a", 1, 5, 1.0), crit("a", 1, 5, 1.0)],
            passing_score: 70.0,
        };
        assert_eq!(
            dup.validate(),
            Err(RubricError::DuplicateCriterion("a".into()))
        );
        let scale = Rubric {
            criteria: vec![crit("a", 5, 5, 1.0)],
            passing_score: 70.0,
        };
        assert!(matches!(
            scale.validate(),
            Err(RubricError::BadScale { .. })
        ));
        let zero = Rubric {
            criteria: vec![crit("a", 1, 5, 0.0)],
            passing_score: 70.0,
        };
        assert_eq!(zero.validate(), Err(RubricError::ZeroTotalWeight));
        assert_eq!(crit("a", 1, 5, 1.0).normalise(3), 50.0);
    }
}
