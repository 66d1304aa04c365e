//! Step 4 of the pipeline: was the scenario's goal reached?

use super::text::{
    ACCEPTANCE, DEFERRALS, contains_any, find_any, find_phrase, find_specific_time, find_time_expr,
    is_rejection, keywords, proposes, quote_around, sentences, stem, words,
};
use super::types::{Evidence, GoalKind, Speaker, Turn};
use salestrainer_conversation::NEXT_STEP_ASKS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseDecision {
    pub closed: bool,
    /// The proposal (when there is one) and the persona's agreement.
    pub evidence: Vec<Evidence>,
    pub rationale: String,
}

/// Customer lines that commit to buying (or renewing) on their own.
const PURCHASE_AGREEMENTS: &[&str] = &[
    "we'll take it",
    "i'll take it",
    "where do i sign",
    "ready to sign",
    "i'll sign",
    "we'll sign",
    "send the contract",
    "send me the contract",
    "send over the contract",
    "send the contract over",
    "send the agreement",
    "send me the agreement",
    "send the paperwork",
    "send me the paperwork",
    "send over the paperwork",
    "we'll buy",
    "i'll buy",
    "we'll go with",
    "let's go ahead",
    "let's move forward",
    "we want to move forward",
    "we're in",
    "place the order",
    "place an order",
    "i'll order",
    "we'll order",
    "sign us up",
    "you've got a deal",
    "it's a deal",
    "we'll purchase",
    "we'll renew",
    "renew us",
    "let's renew",
];

/// Trainee words that ask for the order.
const PURCHASE_ASKS: &[&str] = &[
    "buy",
    "purchase",
    "sign",
    "signed",
    "contract",
    "agreement",
    "paperwork",
    "move forward",
    "go ahead",
    "get started",
    "set up",
    "subscription",
    "license",
    "licence",
    "renew",
];

/// Words that make a meeting.
const MEETING_TERMS: &[&str] = &[
    "meeting",
    "meet",
    "call",
    "demo",
    "session",
    "appointment",
    "invite",
    "calendar",
    "walkthrough",
    "catch up",
    "workshop",
    "kickoff",
    "talk",
    "speak",
    "minutes",
];

/// Decides whether the goal was reached, from the customer's side: the customer explicitly
/// agrees to a concrete step (a time, a meeting, the purchase). The trainee asking is not
/// enough, and a refusal, a hedge or "send me something" is not agreement.
pub fn decide(goal: &GoalKind, transcript: &[Turn]) -> CloseDecision {
    let parties: Vec<&Turn> = transcript
        .iter()
        .filter(|t| t.speaker != Speaker::System)
        .collect();
    let found = match goal {
        GoalKind::BookMeeting => book_meeting(&parties),
        GoalKind::AgreePurchase => agree_purchase(&parties),
        GoalKind::Custom(text) => custom(&parties, text),
    };
    match found {
        Some(evidence) => {
            let rationale = match evidence.last() {
                Some(e) => format!(
                    "Goal \"{goal}\" reached: the customer said \"{}\".",
                    e.quote
                ),
                None => format!("Goal \"{goal}\" reached."),
            };
            CloseDecision {
                closed: true,
                evidence,
                rationale,
            }
        }
        None => CloseDecision {
            closed: false,
            evidence: vec![],
            rationale: format!("No customer agreement to \"{goal}\" was found."),
        },
    }
}

fn evidence(t: &Turn, range: (usize, usize)) -> Evidence {
    Evidence {
        turn_id: t.id.clone(),
        quote: quote_around(&t.text, range.0, range.1).to_string(),
    }
}

/// The customer's agreement in a reply: the opening sentences up to the first one that turns
/// down, hedges or defers. `None` when the reply opens with a refusal, a hedge or a deferral,
/// or agrees to nothing.
pub struct Agreement {
    /// Byte range of the agreeing part (whole sentences).
    pub part: (usize, usize),
    /// The acceptance cue or commitment phrase.
    pub cue: (usize, usize),
}

pub fn agreement(reply: &str) -> Option<Agreement> {
    let ss = sentences(reply);
    let mut end = None;
    let mut cue = None;
    for &(s, e) in &ss {
        let sentence = &reply[s..e];
        if is_rejection(sentence) || contains_any(sentence, DEFERRALS) || is_conditional(sentence) {
            break;
        }
        end = Some(e);
        if cue.is_none() {
            cue = find_any(sentence, PURCHASE_AGREEMENTS)
                .or_else(|| find_any(sentence, ACCEPTANCE))
                .map(|(_, a, b)| (s + a, s + b));
        }
    }
    let start = ss.first()?.0;
    Some(Agreement {
        part: (start, end?),
        cue: cue?,
    })
}

/// "If you drop the price, we'll take it": agreement on a condition is not agreement yet.
fn is_conditional(sentence: &str) -> bool {
    find_phrase(sentence, "if").is_some_and(|(s, _)| s < 3)
}

/// (trainee proposal, customer reply, agreement) in order: the customer answers a proposal.
fn answered_proposals<'a>(parties: &[&'a Turn]) -> Vec<(&'a Turn, &'a Turn, Agreement)> {
    parties
        .windows(2)
        .filter(|w| w[0].speaker == Speaker::Trainee && w[1].speaker == Speaker::Persona)
        .filter(|w| proposes(&w[0].text))
        .filter_map(|w| agreement(&w[1].text).map(|a| (w[0], w[1], a)))
        .collect()
}

fn book_meeting(parties: &[&Turn]) -> Option<Vec<Evidence>> {
    // The customer says yes to a proposal, and the step has a time.
    for (t, p, a) in answered_proposals(parties) {
        let agreed = &p.text[a.part.0..a.part.1];
        let time_t = find_time_expr(&t.text);
        let time_p = find_time_expr(agreed);
        if time_t.is_none() && time_p.is_none() {
            continue;
        }
        // A meeting was on the table: its words, an ask, or a specific day or hour proposed
        // ("Next Tuesday at 9am?"); a yes to small talk about "this week" is not one.
        let meeting = contains_any(&t.text, MEETING_TERMS)
            || contains_any(&t.text, NEXT_STEP_ASKS)
            || find_specific_time(&t.text).is_some()
            || (time_p.is_some() && contains_any(agreed, MEETING_TERMS));
        if !meeting {
            continue;
        }
        let range = find_any(&t.text, MEETING_TERMS)
            .map(|(_, s, e)| (s, e))
            .or(time_t)
            .or_else(|| sentences(&t.text).into_iter().next())
            .unwrap_or((0, 0));
        return Some(vec![evidence(t, range), evidence(p, a.cue)]);
    }
    // The customer names the time themselves ("Alright, Wednesday at 2 then") after the trainee
    // proposed a meeting earlier in the call.
    let mut proposed = false;
    for t in parties {
        if t.speaker == Speaker::Trainee {
            proposed |= proposes(&t.text)
                && (find_specific_time(&t.text).is_some()
                    || contains_any(&t.text, MEETING_TERMS)
                    || contains_any(&t.text, NEXT_STEP_ASKS));
            continue;
        }
        if !proposed {
            continue;
        }
        if let Some(a) = agreement(&t.text)
            && find_specific_time(&t.text[a.part.0..a.part.1]).is_some()
        {
            return Some(vec![evidence(t, a.cue)]);
        }
    }
    None
}

fn agree_purchase(parties: &[&Turn]) -> Option<Vec<Evidence>> {
    // A customer line that commits to buying by itself.
    for p in parties.iter().filter(|p| p.speaker == Speaker::Persona) {
        if let Some(a) = agreement(&p.text)
            && let Some((_, s, e)) = find_any(&p.text[a.part.0..a.part.1], PURCHASE_AGREEMENTS)
        {
            let off = a.part.0;
            return Some(vec![evidence(p, (off + s, off + e))]);
        }
    }
    // Or the trainee asks for the order and the customer says yes.
    answered_proposals(parties)
        .into_iter()
        .find_map(|(t, p, a)| {
            let (_, s, e) = find_any(&t.text, PURCHASE_ASKS)?;
            Some(vec![evidence(t, (s, e)), evidence(p, a.cue)])
        })
}

fn custom(parties: &[&Turn], goal: &str) -> Option<Vec<Evidence>> {
    let kws: Vec<String> = keywords(goal).iter().map(|k| stem(k)).collect();
    if kws.is_empty() {
        return None;
    }
    let needed = kws.len().div_ceil(2);
    let hits = |text: &str| {
        let ws: Vec<String> = words(text).iter().map(|w| stem(w)).collect();
        kws.iter().filter(|k| ws.contains(k)).count()
    };
    // The customer commits to the goal in their own words ("Yes, renew us for another year").
    for p in parties.iter().filter(|p| p.speaker == Speaker::Persona) {
        if let Some(a) = agreement(&p.text)
            && hits(&p.text[a.part.0..a.part.1]) >= needed
        {
            return Some(vec![evidence(p, a.cue)]);
        }
    }
    // Or agrees to a proposal of it.
    for (t, p, a) in answered_proposals(parties) {
        let both = format!("{} {}", t.text, &p.text[a.part.0..a.part.1]);
        if hits(&both) >= needed {
            let first_kw = kws
                .iter()
                .find_map(|k| {
                    words(&t.text)
                        .into_iter()
                        .find(|w| stem(w) == *k)
                        .and_then(|w| find_phrase(&t.text, &w))
                })
                .or_else(|| sentences(&t.text).into_iter().next())
                .unwrap_or((0, 0));
            return Some(vec![evidence(t, first_kw), evidence(p, a.cue)]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, who: Speaker, text: &str) -> Turn {
        Turn::new(id, who, text)
    }
    use Speaker::{Persona as P, Trainee as T};

    fn assert_quotes_exact(transcript: &[Turn], d: &CloseDecision) {
        for e in &d.evidence {
            let turn = transcript.iter().find(|t| t.id == e.turn_id);
            assert!(turn.is_some_and(|t| t.text.contains(&e.quote)), "{e:?}");
        }
    }

    #[test]
    fn meeting_booked_with_time_and_acceptance() {
        let tr = vec![
            t(
                "1",
                T,
                "Would a 30 minute demo on Thursday at 10am work for you?",
            ),
            t("2", P, "Yes, Thursday at 10 works. Send the invite."),
        ];
        let d = decide(&GoalKind::BookMeeting, &tr);
        assert!(d.closed, "{d:?}");
        assert_eq!(d.evidence.len(), 2);
        assert_eq!(d.evidence[1].quote, "Yes, Thursday at 10 works.");
        assert_quotes_exact(&tr, &d);
    }

    #[test]
    fn meeting_without_time_or_with_refusal_is_not_booked() {
        let vague = vec![
            t("1", T, "Can we have a call sometime?"),
            t("2", P, "Sure, maybe."),
        ];
        assert!(!decide(&GoalKind::BookMeeting, &vague).closed);
        let refused = vec![
            t("1", T, "Can we meet on Tuesday at 3pm?"),
            t("2", P, "No, I don't have time for this."),
        ];
        assert!(!decide(&GoalKind::BookMeeting, &refused).closed);
    }

    #[test]
    fn purchase_agreed() {
        let direct = vec![
            t("1", T, "That covers the pricing."),
            t(
                "2",
                P,
                "Alright. Send me the contract and we'll sign this week.",
            ),
        ];
        let d = decide(&GoalKind::AgreePurchase, &direct);
        assert!(d.closed);
        assert_quotes_exact(&direct, &d);
        let asked = vec![
            t("1", T, "Shall we go ahead with the annual license?"),
            t("2", P, "Yes, let's do it."),
        ];
        assert!(decide(&GoalKind::AgreePurchase, &asked).closed);
        let hedged = vec![
            t("1", T, "So, ready to move forward?"),
            t(
                "2",
                P,
                "If you drop the price, we'll take it. Not at this price.",
            ),
        ];
        assert!(!decide(&GoalKind::AgreePurchase, &hedged).closed);
    }

    #[test]
    fn only_the_customer_closes() {
        let asked_only = vec![
            t("1", T, "Can we book a demo on Tuesday at 2pm?"),
            t(
                "2",
                P,
                "Okay, send me something first and I'll think about it.",
            ),
        ];
        assert!(!decide(&GoalKind::BookMeeting, &asked_only).closed);
        let refused = vec![
            t("1", T, "Shall I send the contract?"),
            t("2", P, "No. Goodbye."),
        ];
        assert!(!decide(&GoalKind::AgreePurchase, &refused).closed);
        let later = vec![
            t("1", T, "Could we look at it together next week?"),
            t("2", P, "Not right now. Call me next quarter."),
        ];
        assert!(!decide(&GoalKind::BookMeeting, &later).closed);
        let own_words = vec![
            t("1", T, "Are you free Wednesday at 2pm for twenty minutes?"),
            t("2", P, "I'm wary of vendors who want hours of my time."),
            t(
                "3",
                T,
                "Twenty minutes, and I'll hang up early if it isn't relevant.",
            ),
            t("4", P, "Alright, Wednesday at 2 then."),
        ];
        let d = decide(&GoalKind::BookMeeting, &own_words);
        assert!(d.closed, "{d:?}");
        assert_quotes_exact(&own_words, &d);
        let renewal = vec![
            t("1", T, "Same price as this year plus four percent."),
            t("2", P, "Okay. Yes, renew us for another year."),
        ];
        let g = GoalKind::Custom("renew the subscription for another year".into());
        assert!(decide(&g, &renewal).closed);
        let deferred = vec![
            t("1", T, "Are you happy to renew for another year?"),
            t("2", P, "Probably, but I need to check with finance first."),
        ];
        assert!(!decide(&g, &deferred).closed);
    }

    #[test]
    fn custom_goal_by_keywords() {
        let tr = vec![
            t("1", T, "Would you start a two-week pilot with your team?"),
            t("2", P, "Sure, a pilot sounds good."),
        ];
        let d = decide(&GoalKind::Custom("Agree to a two-week pilot".into()), &tr);
        assert!(d.closed, "{d:?}");
        assert_quotes_exact(&tr, &d);
        let no = vec![t("1", T, "Would you like a brochure?"), t("2", P, "Sure.")];
        assert!(!decide(&GoalKind::Custom("Agree to a two-week pilot".into()), &no).closed);
    }
}
