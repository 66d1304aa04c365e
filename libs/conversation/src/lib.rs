//! The cue vocabulary of a sales conversation: the phrases that mark a question, a pitch, an
//! acknowledgement, an ask for the next step, an objection, a refusal or an agreement.
//!
//! One list serves both sides of a practice call: the scripted persona reacts to these cues
//! and the grader scores them, so a trainee who moves the persona also moves the grade.
//! Phrases are lower case, words separated by single spaces, apostrophes straight.

/// Words that carry no content on their own.
pub const FILLERS: &[&str] = &[
    "um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "hmm", "hm", "mm", "mmm", "mhm",
    "mm-hmm", "mm-hm", "uh-huh", "uh-hum",
];

/// Short acknowledgements: filler-like, but meaningful when they answer a question.
pub const BACKCHANNELS: &[&str] = &[
    "okay", "ok", "right", "yeah", "yep", "yes", "sure", "alright", "so", "well", "like",
];

/// Multi-word verbal fillers.
pub const FILLER_PHRASES: &[&str] = &["you know", "i mean", "kind of", "sort of"];

/// Openers that make a sentence a question even without a question mark (voice transcripts
/// often drop punctuation).
pub const QUESTION_OPENERS: &[&str] = &[
    "what",
    "what's",
    "how",
    "how's",
    "why",
    "when",
    "where",
    "who",
    "which",
    "tell me",
    "walk me",
    "describe",
    "can you",
    "could you",
    "would you",
    "do you",
    "do",
    "does",
    "did",
    "did you",
    "can",
    "could",
    "would",
    "are you",
    "is",
    "are",
    "have you",
    "have",
    "has",
    "should",
    "shall",
    "may",
];

/// Openers of open questions, the ones that invite the customer to talk.
pub const OPEN_QUESTION_OPENERS: &[&str] = &[
    "what",
    "what's",
    "how",
    "how's",
    "why",
    "tell me",
    "walk me through",
    "describe",
    "help me understand",
    "can you tell me",
    "could you tell me",
    "can you walk me",
    "could you walk me",
    "explain",
];

/// Question words that count as discovery when the persona hears them (open and situational
/// closed questions alike).
pub const DISCOVERY_OPENERS: &[&str] = &[
    "what",
    "what's",
    "how",
    "why",
    "tell me",
    "walk me through",
    "describe",
    "explain",
    "when",
    "where",
    "who",
    "which",
    "do you",
    "are you",
    "have you",
    "is there",
    "are there",
];

/// Small talk that is not discovery.
pub const PLEASANTRIES: &[&str] = &[
    "how are you",
    "how's it going",
    "how is it going",
    "how are things",
    "how's your day",
    "how is your day",
    "how have you been",
];

/// Acknowledging what the customer said.
pub const ACKNOWLEDGEMENTS: &[&str] = &[
    "i understand",
    "understand",
    "understandable",
    "understood",
    "that's fair",
    "fair point",
    "fair enough",
    "that's a fair",
    "good point",
    "great point",
    "makes sense",
    "that makes sense",
    "i hear you",
    "i get that",
    "i get it",
    "totally get",
    "totally understand",
    "i see",
    "valid concern",
    "valid point",
    "legitimate concern",
    "fair concern",
    "that's a valid",
    "great question",
    "good question",
    "i appreciate",
    "you're right",
    "you are right",
    "i can see why",
    "that's a real concern",
    "that's a common",
    "absolutely",
    "completely agree",
    "i agree",
];

/// Empathy: the rep reacts to how the situation feels for the customer.
pub const EMPATHY: &[&str] = &[
    "i understand",
    "that sounds",
    "i hear you",
    "makes sense",
    "i can imagine",
    "sorry to hear",
    "i'm sorry",
    "that must be",
    "great to hear",
    "glad to hear",
    "i appreciate",
    "totally understand",
    "i get that",
];

/// Thanking the customer.
pub const THANKS: &[&str] = &[
    "thank you",
    "thanks",
    "appreciate your time",
    "i appreciate",
];

/// Presenting the product rather than asking.
pub const PITCHES: &[&str] = &[
    "our product",
    "our solution",
    "our platform",
    "our tool",
    "our software",
    "our service",
    "our app",
    "our system",
    "our pricing",
    "we offer",
    "we provide",
    "we help",
    "we can help",
    "i can help",
    "we've built",
    "we built",
    "let me tell you",
    "let me show",
    "i'd like to show",
    "i want to show",
    "i'd love to show",
    "it helps",
    "it lets you",
    "it will",
    "you'll get",
    "you will get",
    "you'll save",
    "save you",
    "saves you",
    "introducing",
    "the best",
];

/// Words of a concrete next step.
pub const NEXT_STEP_TERMS: &[&str] = &[
    "meeting",
    "meet",
    "call",
    "demo",
    "demonstration",
    "walkthrough",
    "session",
    "trial",
    "pilot",
    "contract",
    "agreement",
    "paperwork",
    "proposal",
    "follow-up",
    "follow up",
    "calendar invite",
    "invite",
    "onboarding",
    "kickoff",
    "kick-off",
    "workshop",
    "quote",
    "order form",
    "purchase order",
    "renewal",
    "next step",
    "next steps",
];

/// The rep asking for the next step.
pub const NEXT_STEP_ASKS: &[&str] = &[
    "can we schedule",
    "could we schedule",
    "let's schedule",
    "schedule a",
    "schedule some",
    "schedule time",
    "book a",
    "book some",
    "book time",
    "book in",
    "would you be open to",
    "are you open to",
    "would you be willing to",
    "shall we",
    "next step",
    "next steps",
    "sign",
    "sign up",
    "signed",
    "move forward",
    "moving forward",
    "go ahead",
    "trial",
    "pilot",
    "get started",
    "set up a",
    "set up time",
    "can we meet",
    "could we meet",
    "put something in the calendar",
    "ready to buy",
    "ready to purchase",
];

/// A check that the point landed.
pub const TRIAL_CLOSES: &[&str] = &[
    "does that make sense",
    "how does that sound",
    "what do you think",
    "would that help",
    "does that sound",
    "how would that work for you",
    "does that work",
    "does that change",
    "did i get that right",
];

/// The customer pushing back.
pub const OBJECTIONS: &[&str] = &[
    "too expensive",
    "expensive",
    "pricey",
    "too much",
    "a lot for",
    "more than i expected",
    "budget",
    "can't afford",
    "concern",
    "concerned",
    "worried",
    "wary",
    "not sure",
    "already have",
    "already use",
    "already using",
    "already pay",
    "we're covered",
    "happy with",
    "don't need",
    "no time",
    "busy",
    "not interested",
    "not convinced",
    "not a priority",
    "not the right time",
    "bad time",
    "risk",
    "risky",
    "hesitant",
    "skeptical",
    "sceptical",
    "doubt",
    "cheaper",
    "tried",
    "hated",
    "crashed",
    "not happy",
    "freeze",
    "only have",
    "that's it",
    "in the middle of",
    "make it quick",
    "not this week",
    "no budget",
    "tight",
    "justify",
    "steep",
    "under pressure",
    "cut costs",
    "pressure on cost",
];

/// Agreement to a proposal, checked in the opening of a reply.
pub const ACCEPTANCE: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "sounds good",
    "sounds great",
    "sounds fine",
    "that works",
    "works for me",
    "works for both",
    "works great",
    "works",
    "is fine",
    "is good",
    "is okay",
    "is ok",
    "let's do it",
    "let's do that",
    "lets do it",
    "let's go ahead",
    "ok",
    "okay",
    "deal",
    "perfect",
    "great",
    "absolutely",
    "of course",
    "definitely",
    "go ahead",
    "book it",
    "send it over",
    "send it",
    "count me in",
    "fine",
    "alright",
    "all right",
    "agreed",
    "happy to",
    "i'd like that",
    "why not",
];

/// Turning something down or hedging.
pub const REJECTIONS: &[&str] = &[
    "no",
    "nope",
    "not",
    "can't",
    "cannot",
    "won't",
    "don't",
    "doesn't",
    "isn't",
    "wouldn't",
    "busy",
    "pass",
    "never",
    "maybe later",
    "not interested",
];

/// Negative words that are friendly ("no problem").
pub const FRIENDLY_NEGATIVES: &[&str] = &[
    "no problem",
    "not a problem",
    "no worries",
    "why not",
    "can't wait",
    "don't see why not",
];

/// A customer putting the decision off or asking for material instead of committing.
pub const DEFERRALS: &[&str] = &[
    "send me something",
    "send me some",
    "send me an email",
    "send an email",
    "send me information",
    "send me the information",
    "send me some information",
    "send me a brochure",
    "send me the details",
    "send me the renewal details",
    "send me the renewal quote",
    "send me the quote",
    "send me the revised",
    "email me",
    "just email",
    "think about it",
    "think it over",
    "get back to you",
    "come back to you",
    "i'll let you know",
    "let me check",
    "need to check",
    "i'll look at it",
    "have a look",
    "call me next",
    "call me in",
    "call me later",
    "try me",
    "maybe",
    "probably",
    "not right now",
    "not now",
    "not this year",
    "not yet",
    "some other time",
    "sometime",
];

/// Day words of a concrete time.
pub const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
];

/// Words of a concrete time.
pub const TIME_WORDS: &[&str] = &[
    "tomorrow",
    "today",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "noon",
    "midday",
    "o'clock",
    "am",
    "pm",
    "a.m",
    "p.m",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Phrases of a time.
pub const TIME_PHRASES: &[&str] = &[
    "next week",
    "this week",
    "next month",
    "end of the week",
    "end of week",
    "later this week",
    "first thing",
    "first of the month",
    "from next month",
    "within the hour",
];

/// The variables a persona prompt template may use: the config service accepts exactly these
/// when a template is saved, and the call service fills every one of them when it renders.
pub const PERSONA_PROMPT_VARIABLES: &[&str] = &[
    "persona_name",
    "persona_role",
    "company",
    "background",
    "personality",
    "objections",
    "difficulty",
    "goal",
    "scenario_name",
    "product_brief",
    "first_message",
    "agreement_rule",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_lower_case_and_single_spaced() {
        let lists: &[&[&str]] = &[
            FILLERS,
            BACKCHANNELS,
            FILLER_PHRASES,
            QUESTION_OPENERS,
            OPEN_QUESTION_OPENERS,
            DISCOVERY_OPENERS,
            PLEASANTRIES,
            ACKNOWLEDGEMENTS,
            EMPATHY,
            THANKS,
            PITCHES,
            NEXT_STEP_TERMS,
            NEXT_STEP_ASKS,
            TRIAL_CLOSES,
            OBJECTIONS,
            ACCEPTANCE,
            REJECTIONS,
            FRIENDLY_NEGATIVES,
            DEFERRALS,
            WEEKDAYS,
            TIME_WORDS,
            TIME_PHRASES,
        ];
        for list in lists {
            for p in *list {
                assert_eq!(*p, p.to_lowercase(), "{p}");
                assert_eq!(p.split_whitespace().collect::<Vec<_>>().join(" "), *p);
                assert!(!p.contains('\u{2019}'), "{p}");
            }
        }
    }
}
