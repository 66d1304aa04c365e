//! The persona engines behind Converse and the conversation thread they carry between turns.
//!
//! A thread is a cache, never the truth: the transcript in the database is. A thread whose
//! count of answered turns disagrees with the transcript (another replica went on, or the
//! cache lost it) is rebuilt from the transcript: the scripted persona replays the answered
//! trainee turns (it is deterministic), the LLM thread is the answered turns as messages.

use salestrainer_proto::config as cfg;
use serde::{Deserialize, Serialize};

use super::llm_persona::ChatMessage;
use crate::domain::{
    Speaker,
    persona::{Difficulty, GoalKind, PersonaProfile, ScenarioGoal, ScriptedPersona},
    prompt::{DEFAULT_PERSONA_TEMPLATE, PromptVars, render},
};
use crate::store::{segment, speaker_from_i32};

/// Everything a persona engine needs from config.
#[derive(Debug, Clone)]
pub struct PersonaSetup {
    pub profile: PersonaProfile,
    pub goal: ScenarioGoal,
    pub product_brief: String,
    pub voice_id: String,
    pub time_limit: Option<prost_types::Duration>,
    /// The system prompt, rendered from the organisation's persona template.
    pub system_prompt: String,
    /// A drill's opening: the objection the persona raises again at once.
    pub drill_opening: Option<String>,
}

impl PersonaSetup {
    pub fn new(scenario: &cfg::Scenario, persona: &cfg::Persona, template: Option<&str>) -> Self {
        let difficulty = match cfg::Difficulty::try_from(persona.difficulty) {
            Ok(cfg::Difficulty::Easy) => Difficulty::Easy,
            Ok(cfg::Difficulty::Hard) => Difficulty::Hard,
            _ => Difficulty::Medium,
        };
        let profile = PersonaProfile {
            name: persona.display_name.clone(),
            role: persona.role.clone(),
            company: persona.company.clone(),
            background: persona.background.clone(),
            personality: persona.personality.clone(),
            objections: persona.objections.clone(),
            difficulty,
            first_message: persona.first_message.clone(),
        };
        let goal = scenario.goal.clone().unwrap_or_default();
        let goal = ScenarioGoal {
            kind: match cfg::GoalKind::try_from(goal.kind) {
                Ok(cfg::GoalKind::AgreePurchase) => GoalKind::AgreePurchase,
                Ok(cfg::GoalKind::Custom) => GoalKind::Custom,
                _ => GoalKind::BookMeeting,
            },
            description: goal.description,
        };
        let mut vars = PromptVars::new(&profile, &goal, &scenario.product_brief);
        vars.scenario_name = scenario.display_name.clone();
        // An organisation template that no longer renders must not take calls down: fall back.
        let system_prompt = template
            .and_then(|t| render(t, &vars).ok())
            .or_else(|| render(DEFAULT_PERSONA_TEMPLATE, &vars).ok())
            .unwrap_or_default();
        Self {
            profile,
            goal,
            product_brief: scenario.product_brief.clone(),
            voice_id: persona.voice_id.clone(),
            time_limit: scenario.time_limit,
            system_prompt,
            drill_opening: None,
        }
    }

    /// The setup of a drill session (`objection` empty: not a drill): the persona opens with
    /// the objection and the LLM persona is told to keep pressing it.
    pub fn for_drill(mut self, objection: &str) -> Self {
        let objection = objection.trim();
        if !objection.is_empty() {
            self.system_prompt
                .push_str(&crate::domain::drill::drill_instructions(objection));
            self.drill_opening = Some(objection.to_owned());
        }
        self
    }

    pub fn first_message(&self) -> String {
        if let Some(opening) = &self.drill_opening {
            return opening.clone();
        }
        ScriptedPersona::new(self.profile.clone(), self.goal.clone(), "").greeting()
    }

    fn scripted(&self) -> ScriptedPersona {
        ScriptedPersona::new(
            self.profile.clone(),
            self.goal.clone(),
            self.product_brief.clone(),
        )
    }
}

/// The conversation so far, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Thread {
    Scripted {
        persona: Box<ScriptedPersona>,
        /// Persona turns stored (the greeting included).
        answered: usize,
    },
    Llm {
        messages: Vec<ChatMessage>,
        answered: usize,
    },
}

impl Thread {
    pub fn answered(&self) -> usize {
        match self {
            Thread::Scripted { answered, .. } | Thread::Llm { answered, .. } => *answered,
        }
    }

    pub fn is_llm(&self) -> bool {
        matches!(self, Thread::Llm { .. })
    }

    /// A thread for `setup` from the stored transcript (ordered by arrival).
    pub fn rebuild(setup: &PersonaSetup, llm: bool, segments: &[segment::Model]) -> Self {
        let persona_turns = segments
            .iter()
            .filter(|s| speaker_from_i32(s.speaker) == Speaker::Persona)
            .count();
        let answered_ids: std::collections::HashSet<&str> = segments
            .iter()
            .filter_map(|s| s.reply_to.as_deref())
            .collect();
        let mut ordered: Vec<&segment::Model> = segments.iter().collect();
        ordered.sort_by_key(|s| s.seq);
        if llm {
            let mut messages = vec![ChatMessage::new("system", setup.system_prompt.clone())];
            for s in ordered {
                match speaker_from_i32(s.speaker) {
                    Speaker::Persona => {
                        messages.push(ChatMessage::new("assistant", s.text.clone()))
                    }
                    Speaker::Trainee if answered_ids.contains(s.segment_id.as_str()) => {
                        messages.push(ChatMessage::new("user", s.text.clone()))
                    }
                    _ => {}
                }
            }
            Thread::Llm {
                messages,
                answered: persona_turns,
            }
        } else {
            let mut persona = setup.scripted();
            for s in ordered {
                if speaker_from_i32(s.speaker) == Speaker::Trainee
                    && answered_ids.contains(s.segment_id.as_str())
                {
                    persona.reply(&s.text);
                }
            }
            Thread::Scripted {
                persona: Box::new(persona),
                answered: persona_turns,
            }
        }
    }

    /// A fresh thread after the greeting was stored.
    pub fn after_greeting(setup: &PersonaSetup, llm: bool, greeting: &str) -> Self {
        if llm {
            Thread::Llm {
                messages: vec![
                    ChatMessage::new("system", setup.system_prompt.clone()),
                    ChatMessage::new("assistant", greeting),
                ],
                answered: 1,
            }
        } else {
            Thread::Scripted {
                persona: Box::new(setup.scripted()),
                answered: 1,
            }
        }
    }
}
