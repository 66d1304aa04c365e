//! Drills: from an evaluation, the weakest moment to practise again. The weakest criterion is
//! the lowest normalized score (the first in rubric order on a tie); its moment is what the
//! customer said there: the customer's own evidence quote if the grader kept one, else the
//! customer's words just before the trainee's evidence line in the transcript, else the last
//! thing the customer said before the trainee's first scored line.

use super::Speaker;

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

/// What the customer said at the criterion's moment, if the evaluation and transcript tell.
pub fn objection(criterion: &Scored, transcript: &[Line]) -> Option<String> {
    let customer = |t: &str| {
        let t = t.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    // A customer quote may be a sentence of its line: the whole line is the moment.
    if let Some(q) = criterion
        .evidence
        .iter()
        .find(|q| q.speaker == Speaker::Persona)
    {
        let line = transcript.iter().find(|l| {
            l.speaker == Speaker::Persona
                && ((!q.segment_id.is_empty() && l.segment_id == q.segment_id)
                    || (!q.text.trim().is_empty() && l.text.contains(q.text.trim())))
        });
        if let Some(whole) = line
            .and_then(|l| customer(&l.text))
            .or_else(|| customer(&q.text))
        {
            return Some(whole);
        }
    }
    // The customer's words just before each trainee evidence line, the first that has some.
    for q in criterion
        .evidence
        .iter()
        .filter(|q| q.speaker == Speaker::Trainee)
    {
        let at = transcript.iter().position(|l| {
            (!q.segment_id.is_empty() && l.segment_id == q.segment_id)
                || (!q.text.trim().is_empty() && l.text.trim() == q.text.trim())
        });
        if let Some(at) = at
            && let Some(before) = transcript[..at]
                .iter()
                .rev()
                .find(|l| l.speaker == Speaker::Persona)
                .and_then(|l| customer(&l.text))
        {
            return Some(before);
        }
    }
    None
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
    fn the_moment_is_the_customer_line_before_the_trainee_evidence() {
        let t = [
            line("p0", Speaker::Persona, "Hi, who is this?"),
            line("t0", Speaker::Trainee, "Dana from Acme."),
            line("p1", Speaker::Persona, "We already have a vendor."),
            line("t1", Speaker::Trainee, "Ok, bye then."),
        ];
        let by_id = scored("objections", 10.0, vec![quote(Speaker::Trainee, "", "t1")]);
        assert_eq!(
            objection(&by_id, &t).as_deref(),
            Some("We already have a vendor.")
        );
        let by_text = scored(
            "objections",
            10.0,
            vec![quote(Speaker::Trainee, "Ok, bye then.", "")],
        );
        assert_eq!(
            objection(&by_text, &t).as_deref(),
            Some("We already have a vendor.")
        );
        let persona = scored(
            "objections",
            10.0,
            vec![quote(Speaker::Persona, "Too pricey.", "")],
        );
        assert_eq!(objection(&persona, &t).as_deref(), Some("Too pricey."));
        let part = scored(
            "objections",
            10.0,
            vec![quote(Speaker::Persona, "a vendor.", "")],
        );
        assert_eq!(
            objection(&part, &t).as_deref(),
            Some("We already have a vendor.")
        );
        assert_eq!(objection(&scored("x", 1.0, vec![]), &t), None);
        assert_eq!(
            fallback_objection(&t).as_deref(),
            Some("We already have a vendor.")
        );
    }
}
