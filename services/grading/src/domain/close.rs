//! Step 4 of the pipeline: was the scenario's goal reached?

use super::text::{
    accepts, find_any, find_phrase, find_time_expr, is_rejection, keywords, proposes, quote_around,
    sentences, words,
};
use super::types::{Evidence, GoalKind, Speaker, Turn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseDecision {
    pub closed: bool,
    /// The proposal (when there is one) and the persona's agreement.
    pub evidence: Vec<Evidence>,
    pub rationale: String,
}

/// Persona lines that agree to buy on their own.
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
    "send the paperwork",
    "send over the paperwork",
    "we'll buy",
    "i'll buy",
    "we'll go with",
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
];

/// Trainee words that ask for the purchase.
const PURCHASE_ASKS: &[&str] = &[
    "buy",
    "purchase",
    "sign",
    "order",
    "contract",
    "paperwork",
    "move forward",
    "go ahead",
    "get started",
    "subscription",
    "license",
    "licence",
    "invoice",
];

/// Words that make a meeting (a subset of next-step terms, plus appointments).
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
];

/// Decides whether the goal was reached, with the lines that show it.
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

/// (trainee proposal, persona reply that accepts) pairs, in order.
fn accepted_pairs<'a>(parties: &[&'a Turn]) -> Vec<(&'a Turn, &'a Turn, (usize, usize))> {
    parties
        .windows(2)
        .filter(|w| w[0].speaker == Speaker::Trainee && w[1].speaker == Speaker::Persona)
        .filter(|w| proposes(&w[0].text))
        .filter_map(|w| accepts(&w[1].text).map(|r| (w[0], w[1], r)))
        .collect()
}

fn book_meeting(parties: &[&Turn]) -> Option<Vec<Evidence>> {
    for (t, p, acc) in accepted_pairs(parties) {
        let term_in_t = find_any(&t.text, MEETING_TERMS).map(|(_, s, e)| (s, e));
        let has_term = term_in_t.is_some() || find_any(&p.text, MEETING_TERMS).is_some();
        let has_time = find_time_expr(&t.text).is_some() || find_time_expr(&p.text).is_some();
        if has_term && has_time {
            // Quote the trainee's proposal around the meeting word, else around the time.
            let range = term_in_t
                .or_else(|| find_time_expr(&t.text))
                .or_else(|| sentences(&t.text).into_iter().next())
                .unwrap_or((0, 0));
            return Some(vec![evidence(t, range), evidence(p, acc)]);
        }
    }
    // The persona proposes and agrees in one line: "Sure, let's do a call Thursday at 10."
    parties
        .iter()
        .filter(|p| p.speaker == Speaker::Persona)
        .find_map(|p| {
            let acc = accepts(&p.text)?;
            find_any(&p.text, MEETING_TERMS)?;
            find_time_expr(&p.text)?;
            Some(vec![evidence(p, acc)])
        })
}

fn agree_purchase(parties: &[&Turn]) -> Option<Vec<Evidence>> {
    // A persona line that agrees to buy by itself, not hedged in the same sentence.
    for p in parties.iter().filter(|p| p.speaker == Speaker::Persona) {
        for (s, e) in sentences(&p.text) {
            let sentence = &p.text[s..e];
            if let Some((_, ms, me)) = find_any(sentence, PURCHASE_AGREEMENTS)
                && !is_rejection(sentence)
                && find_phrase(sentence, "if").is_none()
            {
                return Some(vec![evidence(p, (s + ms, s + me))]);
            }
        }
    }
    // Or the trainee asks for the order and the persona says yes.
    accepted_pairs(parties).into_iter().find_map(|(t, p, acc)| {
        let (_, s, e) = find_any(&t.text, PURCHASE_ASKS)?;
        Some(vec![evidence(t, (s, e)), evidence(p, acc)])
    })
}

fn custom(parties: &[&Turn], goal: &str) -> Option<Vec<Evidence>> {
    let kws = keywords(goal);
    if kws.is_empty() {
        return None;
    }
    let needed = kws.len().div_ceil(2);
    let hits = |text: &str| {
        let ws = words(text);
        kws.iter().filter(|k| ws.contains(k)).count()
    };
    for (t, p, acc) in accepted_pairs(parties) {
        let both = format!("{} {}", t.text, p.text);
        if hits(&both) >= needed {
            let first_kw = kws
                .iter()
                .find_map(|k| find_phrase(&t.text, k))
                .or_else(|| sentences(&t.text).into_iter().next())
                .unwrap_or((0, 0));
            return Some(vec![evidence(t, first_kw), evidence(p, acc)]);
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
