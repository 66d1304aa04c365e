//! The scripted persona: a deterministic, offline customer used when no LLM credential is
//! configured (and in the embedded demo).
//!
//! It is a small state machine driven by the persona's background, objections and difficulty
//! and by the scenario's goal. It reads each trainee turn for a few explainable signals
//! (discovery question, pitch, acknowledgement, ask for the next step) and answers:
//!
//! - it greets with `first_message` (or a generated greeting);
//! - it answers questions about its situation from sentences of its background;
//! - it pushes back on a pitch that comes before any discovery question;
//! - after discovery, it raises its objections in turn (as many as its difficulty requires);
//! - an objection counts as addressed when the trainee acknowledges it *and* responds with
//!   substance (words of the objection or the product brief, or a question about it);
//! - it agrees to the next step only when enough objections were addressed and the trainee
//!   asks for it; otherwise it deflects, naming what is still missing.
//!
//! No randomness: wording varies by turn index, so the same inputs give the same replies.
//! The state is serde-serialisable so a conversation thread can be stored (Redis) and
//! continued by any replica.

use salestrainer_conversation::{
    ACKNOWLEDGEMENTS, DISCOVERY_OPENERS as DISCOVERY, NEXT_STEP_ASKS as ASKS, PITCHES,
    PLEASANTRIES, QUESTION_OPENERS,
};
use serde::{Deserialize, Serialize};

use super::text::{
    as_clause, as_sentence, contains_any, keywords, normalized, overlap, sentences, words,
};

/// How hard the persona is to convince.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Difficulty {
    Easy,
    #[default]
    Medium,
    Hard,
}

impl Difficulty {
    /// How many of `total` objections must be addressed before the persona can agree.
    pub fn required_objections(self, total: usize) -> usize {
        match self {
            Difficulty::Easy => total.min(1),
            Difficulty::Medium => total.min(2),
            Difficulty::Hard => total,
        }
    }

    /// Lower-case name, as used in prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

/// Who the persona is (from the config service's Persona).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonaProfile {
    pub name: String,
    pub role: String,
    pub company: String,
    /// Situation, pains, budget: what the persona knows and may reveal.
    pub background: String,
    pub personality: String,
    pub objections: Vec<String>,
    pub difficulty: Difficulty,
    /// What the persona says first; empty means a generated greeting.
    pub first_message: String,
}

/// What kind of next step the scenario is after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum GoalKind {
    #[default]
    BookMeeting,
    AgreePurchase,
    Custom,
}

/// The scenario's goal (from the config service's Scenario).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScenarioGoal {
    pub kind: GoalKind,
    pub description: String,
}

impl ScenarioGoal {
    /// A short description of the goal for prompts: the free text if given, else a default
    /// per kind.
    pub fn summary(&self) -> String {
        let d = self.description.trim();
        if !d.is_empty() {
            return d.to_owned();
        }
        match self.kind {
            GoalKind::BookMeeting => "the trainee books a follow-up meeting".to_owned(),
            GoalKind::AgreePurchase => "the customer agrees to buy".to_owned(),
            GoalKind::Custom => "the customer agrees to the proposed next step".to_owned(),
        }
    }
}

/// One persona turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonaReply {
    pub text: String,
    /// True on the turn where the persona agrees to the scenario's next step (only that
    /// turn; [`ScriptedPersona::has_agreed`] stays true afterwards).
    pub agreed_next_step: bool,
    /// Index into `PersonaProfile::objections` of an objection raised for the first time in
    /// this reply.
    pub objection_raised: Option<usize>,
}

/// Splits `text` into word-sized chunks (each word with the whitespace before it) so a reply
/// can be streamed token-like; concatenating the chunks gives `text` back exactly.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_ws = true;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        // A chunk ends where a word ends and whitespace begins.
        if ws && !prev_ws && i > start {
            out.push(text[start..i].to_owned());
            start = i;
        }
        prev_ws = ws;
    }
    if start < text.len() {
        out.push(text[start..].to_owned());
    }
    out
}

/// What the trainee's turn contains, read once per turn.
struct Signals {
    question: bool,
    discovery: bool,
    pleasantry: bool,
    pitch: bool,
    ask: bool,
    ack: bool,
    keywords: Vec<String>,
    brief_overlap: usize,
}

/// The scripted persona's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedPersona {
    profile: PersonaProfile,
    goal: ScenarioGoal,
    product_brief: String,
    /// Trainee turns answered so far; picks wording variants.
    turn: usize,
    discovery_questions: usize,
    /// Objections raised so far (they are raised in order, so this is also the next index).
    raised: usize,
    /// Raised but not yet addressed.
    open_objection: Option<usize>,
    addressed: usize,
    /// Background sentences already told, so open questions reveal something new.
    revealed: Vec<bool>,
    agreed: bool,
}

impl ScriptedPersona {
    pub fn new(
        profile: PersonaProfile,
        goal: ScenarioGoal,
        product_brief: impl Into<String>,
    ) -> Self {
        let revealed = vec![false; sentences(&profile.background).len()];
        ScriptedPersona {
            profile,
            goal,
            product_brief: product_brief.into(),
            turn: 0,
            discovery_questions: 0,
            raised: 0,
            open_objection: None,
            addressed: 0,
            revealed,
            agreed: false,
        }
    }

    pub fn profile(&self) -> &PersonaProfile {
        &self.profile
    }

    /// Whether the persona has agreed to the next step (sticky).
    pub fn has_agreed(&self) -> bool {
        self.agreed
    }

    /// Objections addressed so far.
    pub fn objections_addressed(&self) -> usize {
        self.addressed
    }

    /// Objections that must be addressed before the persona can agree.
    pub fn objections_required(&self) -> usize {
        self.profile
            .difficulty
            .required_objections(self.profile.objections.len())
    }

    /// The persona's opening line.
    pub fn greeting(&self) -> String {
        let first = self.profile.first_message.trim();
        if !first.is_empty() {
            return first.to_owned();
        }
        let mut who = String::from("Hi, this is ");
        who.push_str(non_empty(&self.profile.name, "Alex"));
        match (self.profile.role.trim(), self.profile.company.trim()) {
            ("", "") => {}
            (role, "") => who.push_str(&format!(", {role}")),
            ("", company) => who.push_str(&format!(" from {company}")),
            (role, company) => who.push_str(&format!(", {role} at {company}")),
        }
        who.push('.');
        let tail = match self.profile.difficulty {
            Difficulty::Easy => " What can I do for you?",
            Difficulty::Medium => " What's this about?",
            Difficulty::Hard => " I've only got a few minutes, so what do you need?",
        };
        who + tail
    }

    /// Answers one trainee turn.
    pub fn reply(&mut self, trainee_text: &str) -> PersonaReply {
        let turn = self.turn;
        self.turn += 1;
        if words(trainee_text).is_empty() {
            return self.say(pick(
                turn,
                &[
                    "Sorry, I didn't catch that.",
                    "Sorry, could you say that again?",
                ],
            ));
        }
        let s = self.signals(trainee_text);

        if self.agreed {
            return self.say(self.after_agreement(turn));
        }
        if let Some(i) = self.open_objection {
            return self.on_open_objection(turn, i, &s);
        }
        if s.ask {
            return self.on_ask(turn);
        }
        if s.pleasantry && !s.pitch {
            let text = match self.profile.difficulty {
                Difficulty::Hard => "Busy. What is it?",
                _ => pick(
                    turn,
                    &[
                        "Fine, thanks. What's this about?",
                        "Busy, as always. What can I do for you?",
                    ],
                ),
            };
            return self.say(text);
        }
        if s.discovery {
            self.discovery_questions += 1;
            let answer = self.answer_from_background(turn, &s.keywords);
            return self.say(answer);
        }
        if self.discovery_questions == 0 {
            // A pitch (or any product talk) before a single question about us.
            if s.pitch || s.brief_overlap >= 2 {
                return self.say(self.push_back(turn));
            }
            return self.say(pick(
                turn,
                &[
                    "Okay. What's this about?",
                    "Sure. What did you want to talk about?",
                    "Go on.",
                ],
            ));
        }
        if s.question {
            // A closed question about us ("is that right?") still deserves an answer.
            let answer = self.answer_from_background(turn, &s.keywords);
            return self.say(answer);
        }
        // Product talk after discovery: this is where objections come up.
        if let Some(reply) = self.raise_next_objection(turn, "") {
            return reply;
        }
        self.say(self.invite_ask(turn))
    }

    fn say(&self, text: impl Into<String>) -> PersonaReply {
        PersonaReply {
            text: text.into(),
            agreed_next_step: false,
            objection_raised: None,
        }
    }

    fn signals(&self, text: &str) -> Signals {
        let norm = normalized(text);
        let trimmed = norm.trim_start();
        let question = text.contains('?')
            || QUESTION_OPENERS
                .iter()
                .any(|q| trimmed.starts_with(&format!("{q} ")));
        let pleasantry = contains_any(&norm, PLEASANTRIES);
        let ask = contains_any(&norm, ASKS);
        let discovery = question && !ask && contains_any(&norm, DISCOVERY);
        let kw = keywords(text);
        let brief_overlap = overlap(&kw, &keywords(&self.product_brief));
        Signals {
            question,
            discovery,
            pleasantry,
            pitch: contains_any(&norm, PITCHES),
            ask,
            ack: contains_any(&norm, ACKNOWLEDGEMENTS),
            keywords: kw,
            brief_overlap,
        }
    }

    fn on_open_objection(&mut self, turn: usize, i: usize, s: &Signals) -> PersonaReply {
        let objection = self.objection(i);
        let objection_kw = keywords(&objection);
        let substance =
            overlap(&s.keywords, &objection_kw) > 0 || s.brief_overlap > 0 || s.question;
        if s.ack && substance {
            self.open_objection = None;
            self.addressed += 1;
            let thanks = match self.profile.difficulty {
                Difficulty::Easy => pick(
                    turn,
                    &[
                        "Okay, that helps a lot.",
                        "Good, that answers my concern.",
                        "That's reassuring.",
                    ],
                ),
                Difficulty::Medium => pick(
                    turn,
                    &["Okay, that's fair.", "Alright, that helps.", "Fair enough."],
                ),
                Difficulty::Hard => pick(
                    turn,
                    &[
                        "Hm. Fine, I'll accept that.",
                        "Okay. That's a reasonable answer.",
                        "Fine.",
                    ],
                ),
            };
            if s.ask {
                let mut reply = self.on_ask(turn);
                reply.text = format!("{thanks} {}", reply.text);
                return reply;
            }
            if let Some(reply) = self.raise_next_objection(turn, thanks) {
                return reply;
            }
            return self.say(format!("{thanks} {}", self.invite_ask(turn)));
        }
        let concern = as_clause(&objection);
        if s.ask {
            return self.say(self.deflect_open_objection(turn, &concern));
        }
        if s.discovery {
            self.discovery_questions += 1;
            let answer = self.answer_from_background(turn, &s.keywords);
            return self.say(format!(
                "{answer} But that doesn't change my concern: {concern}."
            ));
        }
        let text = if s.ack {
            // Acknowledged but said nothing about it.
            match self.profile.difficulty {
                Difficulty::Easy => {
                    format!("Thanks, but how does that help with my concern: {concern}?")
                }
                Difficulty::Medium => {
                    format!("I appreciate that, but you haven't really answered it: {concern}.")
                }
                Difficulty::Hard => format!(
                    "Saying you understand isn't an answer. {}",
                    as_sentence(&objection)
                ),
            }
        } else {
            match self.profile.difficulty {
                Difficulty::Easy => pick_fmt(
                    turn,
                    &[
                        "I hear you, but I'm still wondering about this: {}.",
                        "Sure, but what about my concern: {}?",
                    ],
                    &concern,
                ),
                Difficulty::Medium => pick_fmt(
                    turn,
                    &[
                        "That doesn't really address my concern: {}.",
                        "You're skipping over my point: {}.",
                    ],
                    &concern,
                ),
                Difficulty::Hard => pick_fmt(
                    turn,
                    &[
                        "You're not listening. {}",
                        "That's a sales pitch, not an answer. {}",
                    ],
                    &as_sentence(&objection),
                ),
            }
        };
        self.say(text)
    }

    fn on_ask(&mut self, turn: usize) -> PersonaReply {
        if self.discovery_questions == 0 {
            let text = match self.profile.difficulty {
                Difficulty::Hard => {
                    "You're asking for my time and you haven't asked a single thing about us. No."
                        .to_owned()
                }
                _ => format!(
                    "That's a bit fast. You haven't asked anything about us yet, so I'm not ready to {}.",
                    self.goal_verb()
                ),
            };
            return self.say(text);
        }
        if self.addressed >= self.objections_required() {
            self.agreed = true;
            return PersonaReply {
                text: self.agreement(turn),
                agreed_next_step: true,
                objection_raised: None,
            };
        }
        let lead = pick(
            turn,
            &["Before I agree to anything,", "Not so fast.", "Hold on."],
        );
        if let Some(reply) = self.raise_next_objection(turn, lead) {
            return reply;
        }
        // Unreachable in practice (objections are raised until enough are addressed), but a
        // polite deflection is the safe answer.
        self.say(format!("I'm not ready to {} yet.", self.goal_verb()))
    }

    /// Raises the next objection if the persona still needs more addressed; `lead` prefixes it.
    fn raise_next_objection(&mut self, turn: usize, lead: &str) -> Option<PersonaReply> {
        if self.raised >= self.objections_required() || self.raised >= self.profile.objections.len()
        {
            return None;
        }
        let i = self.raised;
        self.raised += 1;
        self.open_objection = Some(i);
        let objection = self.objection(i);
        let body = match self.profile.difficulty {
            Difficulty::Easy => pick_fmt(
                turn,
                &[
                    "One thing that worries me: {}",
                    "I do have one concern. {}",
                    "My hesitation is this: {}",
                ],
                &as_sentence(&objection),
            ),
            Difficulty::Medium => pick_fmt(
                turn,
                &[
                    "Here's my problem. {}",
                    "I'm not convinced. {}",
                    "My concern is this: {}",
                ],
                &as_sentence(&objection),
            ),
            Difficulty::Hard => pick_fmt(
                turn,
                &["{} So why would I bother?", "Look. {}", "Frankly, {}"],
                &as_sentence(&objection),
            ),
        };
        let text = if lead.is_empty() {
            body
        } else {
            format!("{lead} {body}")
        };
        Some(PersonaReply {
            text,
            agreed_next_step: false,
            objection_raised: Some(i),
        })
    }

    fn deflect_open_objection(&self, turn: usize, concern: &str) -> String {
        let verb = self.goal_verb();
        match self.profile.difficulty {
            Difficulty::Easy => {
                format!("I'd like to, but first help me with my concern: {concern}.")
            }
            Difficulty::Medium => {
                pick_fmt(
                    turn,
                    &[
                        "I'm not ready to {} while this is open: ",
                        "Before I {}, you still need to address this: ",
                    ],
                    verb,
                ) + concern
                    + "."
            }
            Difficulty::Hard => format!("No. Not until you deal with my concern: {concern}."),
        }
    }

    fn invite_ask(&self, turn: usize) -> String {
        match self.profile.difficulty {
            Difficulty::Easy => pick(
                turn,
                &[
                    "That sounds useful. What would you suggest as a next step?",
                    "I like what I'm hearing. Where do we go from here?",
                ],
            )
            .to_owned(),
            Difficulty::Medium => pick(
                turn,
                &[
                    "Okay. So what are you proposing?",
                    "Alright. What's the next step you have in mind?",
                ],
            )
            .to_owned(),
            Difficulty::Hard => pick(
                turn,
                &[
                    "And? What exactly do you want from me?",
                    "Get to the point. What are you asking for?",
                ],
            )
            .to_owned(),
        }
    }

    fn agreement(&self, turn: usize) -> String {
        match self.goal.kind {
            GoalKind::BookMeeting => pick(
                turn,
                &[
                    "Alright, let's do it. Tuesday at 10am works for me, send me an invite.",
                    "Okay, I'm in. How about Thursday at 2pm? Send over an invite.",
                ],
            )
            .to_owned(),
            GoalKind::AgreePurchase => pick(
                turn,
                &[
                    "Okay, you've convinced me. Let's move forward, send over the paperwork.",
                    "Alright, I'm ready to move forward. Send me the contract and we'll get it signed.",
                ],
            )
            .to_owned(),
            GoalKind::Custom => {
                let d = self.goal.description.trim();
                if d.is_empty() {
                    "Alright, you've convinced me. Let's go ahead.".to_owned()
                } else {
                    format!("Alright, you've convinced me. Let's go ahead ({}).", as_clause(d))
                }
            }
        }
    }

    fn after_agreement(&self, turn: usize) -> &'static str {
        pick(
            turn,
            &[
                "We're all set then. Thanks for your time.",
                "Sounds good. Talk soon.",
                "Great, looking forward to it.",
            ],
        )
    }

    fn push_back(&self, turn: usize) -> String {
        match self.profile.difficulty {
            Difficulty::Easy => pick(
                turn,
                &[
                    "You haven't asked anything about us yet. Maybe find out what we actually need first?",
                    "Hang on, you haven't asked anything about us yet. Don't you want to know how we work today?",
                ],
            )
            .to_owned(),
            Difficulty::Medium => pick(
                turn,
                &[
                    "You haven't asked anything about us yet. Why would I care about that?",
                    "You haven't asked anything about us yet, and you're already pitching me.",
                ],
            )
            .to_owned(),
            Difficulty::Hard => pick(
                turn,
                &[
                    "You haven't asked anything about us yet. I get ten pitches a day. Why would yours be different?",
                    "Stop. You haven't asked anything about us yet.",
                ],
            )
            .to_owned(),
        }
    }

    /// The best-matching background sentence for the question's keywords, or the next one not
    /// yet told for an open question; Easy personas volunteer one more sentence.
    fn answer_from_background(&mut self, turn: usize, question_kw: &[String]) -> String {
        let bg = sentences(&self.profile.background);
        if self.revealed.len() != bg.len() {
            // The profile came from an older stored state; re-sync rather than index past it.
            self.revealed = vec![false; bg.len()];
        }
        if bg.is_empty() {
            return pick(
                turn,
                &[
                    "Honestly, there's not much to tell. Things are fine as they are.",
                    "We're doing okay. Nothing special to report.",
                ],
            )
            .to_owned();
        }
        let mut best: Option<(usize, usize)> = None; // (score, index)
        for (i, sentence) in bg.iter().enumerate() {
            let score = overlap(question_kw, &keywords(sentence));
            if score == 0 {
                continue;
            }
            // Higher score wins; on a tie prefer a sentence not yet told, then the earlier one.
            let better = match best {
                None => true,
                Some((bs, bi)) => {
                    score > bs || (score == bs && self.revealed[bi] && !self.revealed[i])
                }
            };
            if better {
                best = Some((score, i));
            }
        }
        let index = match best {
            Some((_, i)) => Some(i),
            None => self.revealed.iter().position(|r| !r),
        };
        let Some(i) = index else {
            return pick(
                turn,
                &[
                    "I think I've told you the main things already.",
                    "That's really all there is to it on our side.",
                ],
            )
            .to_owned();
        };
        self.revealed[i] = true;
        let mut answer = as_sentence(&bg[i]);
        if self.profile.difficulty == Difficulty::Easy
            && let Some(j) = self.revealed.iter().position(|r| !r)
        {
            self.revealed[j] = true;
            answer = format!("{answer} {}", as_sentence(&bg[j]));
        }
        let lead = match self.profile.difficulty {
            Difficulty::Easy => pick(turn, &["Sure. ", "Good question. ", ""]),
            Difficulty::Medium => pick(turn, &["", "Well, ", ""]),
            Difficulty::Hard => pick(turn, &["", "Briefly: ", ""]),
        };
        format!("{lead}{answer}")
    }

    fn objection(&self, i: usize) -> String {
        self.profile.objections.get(i).cloned().unwrap_or_default()
    }

    fn goal_verb(&self) -> &'static str {
        match self.goal.kind {
            GoalKind::BookMeeting => "book a meeting",
            GoalKind::AgreePurchase => "commit to a purchase",
            GoalKind::Custom => "commit to anything",
        }
    }
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    let t = s.trim();
    if t.is_empty() { default } else { t }
}

/// A wording variant chosen by turn index (never empty: callers pass non-empty lists).
fn pick(turn: usize, options: &[&'static str]) -> &'static str {
    options
        .get(turn % options.len().max(1))
        .copied()
        .unwrap_or("")
}

/// Like [`pick`], replacing the first `{}` with `arg`.
fn pick_fmt(turn: usize, options: &[&'static str], arg: &str) -> String {
    pick(turn, options).replacen("{}", arg, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(difficulty: Difficulty) -> PersonaProfile {
        PersonaProfile {
            name: "Dana Reyes".into(),
            role: "Head of Operations".into(),
            company: "Northwind Logistics".into(),
            background: "We run 40 delivery trucks across three states. \
                Dispatch is planned by hand in spreadsheets every morning. \
                Late deliveries cost us about 20k a month in penalties. \
                Our budget for new software this year is around 50k."
                .into(),
            personality: "sceptical, busy".into(),
            objections: vec![
                "Your price is too high for a company our size.".into(),
                "We tried a routing tool two years ago and the drivers refused to use it.".into(),
                "Integration with our ERP sounds like a months-long project.".into(),
            ],
            difficulty,
            first_message: String::new(),
        }
    }

    fn goal() -> ScenarioGoal {
        ScenarioGoal {
            kind: GoalKind::BookMeeting,
            description: String::new(),
        }
    }

    const BRIEF: &str =
        "RouteWise optimises delivery routes automatically, with a driver app and ERP integration.";

    fn persona(d: Difficulty) -> ScriptedPersona {
        ScriptedPersona::new(profile(d), goal(), BRIEF)
    }

    const ADDRESS_PRICE: &str = "I understand, price matters. Most customers your size recover the cost within three months from fewer late-delivery penalties.";
    const ADDRESS_DRIVERS: &str = "That's fair. Our driver app was designed with drivers, and adoption is above 90% because it is simpler than paper.";
    const ADDRESS_ERP: &str =
        "Good point. The ERP integration is a standard connector and usually takes two weeks.";
    const ASK: &str = "Can we schedule a 30 minute demo next week?";

    #[test]
    fn greets_with_first_message_or_generated_greeting() {
        assert!(
            persona(Difficulty::Medium)
                .greeting()
                .starts_with("Hi, this is Dana Reyes, Head of Operations at Northwind Logistics.")
        );
        let mut p = profile(Difficulty::Easy);
        p.first_message = "Dana speaking.".into();
        assert_eq!(
            ScriptedPersona::new(p, goal(), BRIEF).greeting(),
            "Dana speaking."
        );
    }

    #[test]
    fn pitch_before_discovery_gets_push_back() {
        for d in [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard] {
            let mut p = persona(d);
            let r = p.reply("Our platform optimises delivery routes and will save you thousands.");
            assert!(
                r.text.contains("You haven't asked anything about us yet"),
                "{d:?}: {}",
                r.text
            );
            assert!(!r.agreed_next_step);
            assert_eq!(r.objection_raised, None);
        }
    }

    #[test]
    fn ask_before_discovery_is_refused() {
        let mut p = persona(Difficulty::Easy);
        let r = p.reply(ASK);
        assert!(!r.agreed_next_step);
        assert!(r.text.contains("haven't asked"), "{}", r.text);
    }

    #[test]
    fn question_about_situation_is_answered_from_background() {
        let mut p = persona(Difficulty::Medium);
        let r = p.reply("How do you plan dispatch today?");
        assert!(
            r.text
                .contains("Dispatch is planned by hand in spreadsheets"),
            "{}",
            r.text
        );
        let r = p.reply("What does a late delivery cost you?");
        assert!(r.text.contains("20k a month in penalties"), "{}", r.text);
        let r = p.reply("Tell me about your budget for this.");
        assert!(r.text.contains("around 50k"), "{}", r.text);
    }

    /// Runs discovery, then pitches; returns the replies.
    fn open(p: &mut ScriptedPersona) -> Vec<PersonaReply> {
        vec![
            p.reply("Hi Dana, thanks for taking my call. How are you?"),
            p.reply("How do you plan your routes today?"),
            p.reply("RouteWise plans the routes automatically every morning and sends them to a driver app."),
        ]
    }

    #[test]
    fn easy_agrees_after_one_objection_and_the_ask() {
        let mut p = persona(Difficulty::Easy);
        let r = open(&mut p);
        assert_eq!(r[2].objection_raised, Some(0), "{}", r[2].text);
        // Asking while the objection is open is deflected, naming it.
        let r = p.reply(ASK);
        assert!(!r.agreed_next_step);
        assert!(r.text.contains("price is too high"), "{}", r.text);
        let r = p.reply(ADDRESS_PRICE);
        assert!(!r.agreed_next_step, "{}", r.text);
        assert_eq!(r.objection_raised, None, "easy needs only one: {}", r.text);
        assert_eq!(p.objections_addressed(), 1);
        let r = p.reply(ASK);
        assert!(r.agreed_next_step, "{}", r.text);
        assert!(
            r.text.contains("Tuesday") || r.text.contains("Thursday"),
            "{}",
            r.text
        );
        assert!(p.has_agreed());
        assert!(!p.reply("Great, talk then.").agreed_next_step);
    }

    #[test]
    fn hard_requires_all_objections() {
        let mut p = persona(Difficulty::Hard);
        let r = open(&mut p);
        assert_eq!(r[2].objection_raised, Some(0));
        let r = p.reply(ADDRESS_PRICE);
        assert_eq!(r.objection_raised, Some(1), "{}", r.text);
        // Asking after one of three is not enough.
        let r = p.reply(ASK);
        assert!(!r.agreed_next_step);
        assert!(r.text.contains("drivers refused"), "{}", r.text);
        let r = p.reply(ADDRESS_DRIVERS);
        assert_eq!(r.objection_raised, Some(2), "{}", r.text);
        let r = p.reply(ADDRESS_ERP);
        assert!(!r.agreed_next_step, "no ask yet: {}", r.text);
        let r = p.reply(ASK);
        assert!(r.agreed_next_step, "{}", r.text);
        assert_eq!(p.objections_addressed(), 3);
    }

    #[test]
    fn medium_needs_two_and_ask_with_the_answer_counts() {
        let mut p = persona(Difficulty::Medium);
        open(&mut p);
        let r = p.reply(ADDRESS_PRICE);
        assert_eq!(r.objection_raised, Some(1));
        let r = p.reply(&format!(
            "{ADDRESS_DRIVERS} Would you be open to a short demo on Tuesday?"
        ));
        assert!(r.agreed_next_step, "{}", r.text);
    }

    #[test]
    fn bare_acknowledgement_or_ignoring_does_not_address() {
        let mut p = persona(Difficulty::Medium);
        open(&mut p);
        let r = p.reply("I understand.");
        assert_eq!(p.objections_addressed(), 0, "{}", r.text);
        let r = p.reply("Anyway, RouteWise has a great driver app.");
        assert_eq!(p.objections_addressed(), 0, "{}", r.text);
        assert!(r.text.contains("price is too high"), "{}", r.text);
    }

    #[test]
    fn purchase_goal_agrees_to_move_forward() {
        let mut p = ScriptedPersona::new(
            profile(Difficulty::Easy),
            ScenarioGoal {
                kind: GoalKind::AgreePurchase,
                description: String::new(),
            },
            BRIEF,
        );
        open(&mut p);
        p.reply(ADDRESS_PRICE);
        let r = p.reply("Shall we move forward with the annual plan?");
        assert!(r.agreed_next_step);
        assert!(r.text.contains("move forward"), "{}", r.text);
    }

    #[test]
    fn deterministic_and_serialisable() {
        let script = [
            "Hello!",
            "What keeps you up at night?",
            "Our platform fixes that.",
            ADDRESS_PRICE,
            ASK,
        ];
        let run = || {
            let mut p = persona(Difficulty::Medium);
            script.iter().map(|t| p.reply(t)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());

        // A stored thread continues exactly where it left off.
        let mut a = persona(Difficulty::Hard);
        a.reply(script[1]);
        let json = serde_json::to_string(&a).expect("serialise");
        let mut b: ScriptedPersona = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(a.reply(script[2]), b.reply(script[2]));
    }

    #[test]
    fn chunks_are_word_sized_and_lossless() {
        let text = "Hello there,  how are\nyou?";
        let c = chunks(text);
        assert_eq!(c, ["Hello", " there,", "  how", " are", "\nyou?"]);
        assert_eq!(c.concat(), text);
        assert!(chunks("").is_empty());
        assert_eq!(chunks("  lead").concat(), "  lead");
    }

    #[test]
    fn no_objections_and_no_background_still_work() {
        let mut p = ScriptedPersona::new(PersonaProfile::default(), ScenarioGoal::default(), "");
        assert!(p.greeting().starts_with("Hi, this is Alex."));
        assert!(!p.reply("What do you do?").text.is_empty());
        assert!(p.reply("Can we book a meeting?").agreed_next_step);
        assert!(!p.reply("").agreed_next_step);
    }
}
