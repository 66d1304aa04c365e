//! Drills: from an evaluation, the weakest moment to practise again. The weakest criterion is
//! the lowest normalized score (the first in rubric order on a tie); its moment is what the
//! customer said there (the customer lines the criterion's evidence points at), preferring
//! an objection, since a drill practises handling pushback (see [`objection`]).

use salestrainer_conversation::OBJECTIONS;

use super::Speaker;
use super::text::{contains_any, normalized};

/// A criterion's score as the evaluation gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub criterion: String,
    pub skill: String,
    /// 0–100.
    pub normalized: f64,
    pub evidence: Vec<Quote>,
}

/// An evidence line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub speaker: Speaker,
    pub text: String,
    pub segment_id: String,
}

/// One line of the drilled session's transcript, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub segment_id: String,
    pub speaker: Speaker,
    pub text: String,
}

/// The criterion with the lowest score; `None` when the evaluation scored none.
pub fn weakest(criteria: &[Scored]) -> Option<&Scored> {
    criteria
        .iter()
        .filter(|c| c.normalized.is_finite())
        .fold(None, |best: Option<&Scored>, c| match best {
            Some(b) if b.normalized <= c.normalized => Some(b),
            _ => Some(c),
        })
}

/// Whether a customer line pushes back (the cue vocabulary grading reads objections with).
pub fn is_objection(text: &str) -> bool {
    contains_any(&normalized(text), OBJECTIONS)
}

/// The customer's lines at the criterion's moment, in evidence order: the whole line of each
/// customer quote (a quote may be one sentence of it) and the customer's words just before
/// each trainee quote.
fn moments(criterion: &Scored, transcript: &[Line]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: &str| {
        let t = t.trim();
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    };
    let at = |q: &Quote| {
        transcript.iter().position(|l| {
            l.speaker == q.speaker
                && ((!q.segment_id.is_empty() && l.segment_id == q.segment_id)
                    || (!q.text.trim().is_empty() && l.text.contains(q.text.trim())))
        })
    };
    for q in &criterion.evidence {
        match (q.speaker, at(q)) {
            (Speaker::Persona, Some(i)) => push(&transcript[i].text),
            (Speaker::Persona, None) => push(&q.text),
            (Speaker::Trainee, Some(i)) => {
                if let Some(before) = transcript[..i]
                    .iter()
                    .rev()
                    .find(|l| l.speaker == Speaker::Persona)
                {
                    push(&before.text);
                }
            }
            _ => {}
        }
    }
    out
}

/// What the customer said at the criterion's moment: the first of its moments that is an
/// objection; else the call's last objection (the pushback the trainee left standing); else
/// the first moment; `None` when neither the evaluation nor the transcript tells.
pub fn objection(criterion: &Scored, transcript: &[Line]) -> Option<String> {
    let moments = moments(criterion, transcript);
    if let Some(o) = moments.iter().find(|m| is_objection(m)) {
        return Some(o.clone());
    }
    let last_objection = transcript
        .iter()
        .rev()
        .find(|l| l.speaker == Speaker::Persona && is_objection(&l.text))
        .map(|l| l.text.trim().to_owned());
    last_objection.or_else(|| moments.into_iter().next())
}

/// The customer's hardest line when the evaluation points at none: the last customer line
/// that is not the opening greeting.
pub fn fallback_objection(transcript: &[Line]) -> Option<String> {
    transcript
        .iter()
        .filter(|l| l.speaker == Speaker::Persona)
        .skip(1)
        .last()
        .map(|l| l.text.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The LLM persona's instructions for a drill, after its usual system prompt.
pub fn drill_instructions(objection: &str) -> String {
    format!(
        "\n\nThis is a short drill. You have just opened the call by raising this objection \
         again, word for word: \"{objection}\". Keep pressing that objection until the trainee \
         handles it well; do not move on to other topics."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(criterion: &str, normalized: f64, evidence: Vec<Quote>) -> Scored {
        Scored {
            criterion: criterion.into(),
            skill: criterion.into(),
            normalized,
            evidence,
        }
    }

    fn quote(speaker: Speaker, text: &str, id: &str) -> Quote {
        Quote {
            speaker,
            text: text.into(),
            segment_id: id.into(),
        }
    }

    fn line(id: &str, speaker: Speaker, text: &str) -> Line {
        Line {
            segment_id: id.into(),
            speaker,
            text: text.into(),
        }
    }

    #[test]
    fn the_lowest_score_wins_and_ties_keep_rubric_order() {
        let c = [
            scored("rapport", 80.0, vec![]),
            scored("objections", 20.0, vec![]),
            scored("closing", 20.0, vec![]),
        ];
        assert_eq!(
            weakest(&c).map(|c| c.criterion.as_str()),
            Some("objections")
        );
        assert!(weakest(&[]).is_none());
    }

    #[test]
    fn the_moment_is_the_customer_objection_the_evidence_points_at() {
        let t = [
            line("p0", Speaker::Persona, "Hi, who is this?"),
            line("t0", Speaker::Trainee, "Dana from Acme."),
            line("p1", Speaker::Persona, "We already have a vendor."),
            line("t1", Speaker::Trainee, "Ok, bye then."),
            line("p2", Speaker::Persona, "Sounds useful. What next?"),
        ];
        // The customer's words before the trainee's evidence, by id or by text.
        let by_id = scored("objections", 10.0, vec![quote(Speaker::Trainee, "", "t1")]);
        assert_eq!(
            objection(&by_id, &t).as_deref(),
            Some("We already have a vendor.")
        );
        let by_text = scored(
            "x",
            10.0,
            vec![quote(Speaker::Trainee, "Ok, bye then.", "")],
        );
        assert_eq!(
            objection(&by_text, &t).as_deref(),
            Some("We already have a vendor.")
        );
        // A customer quote stands for its whole line.
        let part = scored("x", 10.0, vec![quote(Speaker::Persona, "a vendor.", "")]);
        assert_eq!(
            objection(&part, &t).as_deref(),
            Some("We already have a vendor.")
        );
        // A moment that is no objection gives way to the call's last objection.
        let friendly = scored(
            "x",
            10.0,
            vec![quote(Speaker::Persona, "Sounds useful.", "p2")],
        );
        assert_eq!(
            objection(&friendly, &t).as_deref(),
            Some("We already have a vendor.")
        );
        let calm = [
            line("p0", Speaker::Persona, "Hi."),
            line("p1", Speaker::Persona, "Sounds useful."),
        ];
        let moment = scored(
            "x",
            10.0,
            vec![quote(Speaker::Persona, "Sounds useful.", "")],
        );
        assert_eq!(objection(&moment, &calm).as_deref(), Some("Sounds useful."));
        assert_eq!(objection(&scored("x", 1.0, vec![]), &calm), None);
        assert_eq!(
            fallback_objection(&t).as_deref(),
            Some("Sounds useful. What next?")
        );
        assert!(is_objection(
            "Honestly, your price is too expensive for us."
        ));
        assert!(!is_objection("What would you suggest as a next step?"));
    }
}
