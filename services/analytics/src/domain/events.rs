//! Events as the read model takes them: a protobuf event is checked (names belong to its
//! organization, times are valid, scores in range) and turned into a [`Parsed`] event, or
//! into the field violations that reject it. Shared by the bus consumers and IngestEvents.

use salestrainer_proto::events::{self as pb, event::Payload};
use salestrainer_runtime::{
    FieldViolation, names,
    time::{duration_ms, micros},
};

use super::{
    Drill, Grade, Origin, SessionEvent, SessionInfo, UsageStats, coaching::CommentFact,
    score_to_milli,
};

/// The origin a call service session event reports.
fn origin(source: i32, drill: Option<&pb::DrillOf>) -> Origin {
    Origin {
        real_call: source == pb::SessionSource::RealCall as i32,
        drill: drill.filter(|d| !d.evaluation.is_empty()).map(|d| Drill {
            evaluation: d.evaluation.clone(),
            criterion: d.criterion.clone(),
            skill: d.skill.clone(),
            before_milli: score_to_milli(d.score),
        }),
    }
}

/// LLM usage an event reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    pub provider: String,
    pub model: String,
    pub stats: UsageStats,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Session {
        // Boxed: the session variant is much larger than the others.
        event: Box<SessionEvent>,
        usage: Option<Usage>,
    },
    /// A display name from ConfigChanged (empty when the resource was deleted).
    Name {
        resource: String,
        kind: String,
        display_name: String,
    },
    /// A comment added or deleted (`deleted` set).
    Comment(CommentFact),
    /// Recorded (so it is not handled twice) but it changes no number.
    Ignored,
}

/// A validated event.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub event_id: String,
    /// Organization id.
    pub org: String,
    pub occur_us: i64,
    pub body: Body,
}

fn usage(u: Option<&pb::LlmUsage>) -> Option<Usage> {
    let u = u?;
    let stats = UsageStats {
        prompt_tokens: u.prompt_tokens.max(0),
        completion_tokens: u.completion_tokens.max(0),
        cost_micros: u.cost_micros.max(0),
        requests: i64::from(u.requests.max(0)),
    };
    (stats != UsageStats::default()).then(|| Usage {
        provider: u.provider.clone(),
        model: u.model.clone(),
        stats,
    })
}

struct Check<'a> {
    prefix: String,
    org: &'a str,
    violations: Vec<FieldViolation>,
}

impl Check<'_> {
    fn bad(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(FieldViolation::new(
            format!("{}{field}", self.prefix),
            description,
        ));
    }

    /// A required child name of the event's organization.
    fn child(&mut self, field: &str, value: &str, collection: &str, required: bool) {
        if value.is_empty() {
            if required {
                self.bad(field, "is required");
            }
            return;
        }
        match names::parse_child(value, collection) {
            Some((org, _)) if org == self.org => {}
            Some(_) => self.bad(field, "must belong to the event's organization"),
            None => self.bad(
                field,
                format!("must be organizations/{{organization}}/{collection}/{{id}}"),
            ),
        }
    }

    /// A duration in milliseconds; a negative one counts as unknown (as before), one that
    /// overflows or has malformed nanos is refused.
    fn duration(&mut self, field: &str, d: Option<&prost_types::Duration>) -> Option<i64> {
        let d = d?;
        let ms = duration_ms(d);
        if ms.is_none() && d.seconds >= 0 && d.nanos >= 0 {
            self.bad(field, "is not a valid duration");
        }
        ms
    }

    /// One score per skill (the first wins), sorted; a bad entry is a violation.
    fn skills(&mut self, field: &str, scores: &[pb::SkillScore]) -> Vec<(String, i64)> {
        let named = scores.iter().map(|s| (s.skill.as_str(), s.score));
        self.scores(field, named, "needs a skill and a score of 0 to 100")
    }

    /// One score per criterion (the first wins), sorted; a bad entry is a violation.
    fn criteria(&mut self, field: &str, scores: &[pb::CriterionScore]) -> Vec<(String, i64)> {
        let named = scores.iter().map(|s| (s.criterion.as_str(), s.score));
        self.scores(field, named, "needs a criterion and a score of 0 to 100")
    }

    fn scores<'s>(
        &mut self,
        field: &str,
        named: impl Iterator<Item = (&'s str, f64)>,
        bad: &str,
    ) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = Vec::new();
        for (i, (name, score)) in named.enumerate() {
            if name.is_empty() || !(0.0..=100.0).contains(&score) {
                self.bad(&format!("{field}[{i}]"), bad);
            } else if !out.iter().any(|(k, _)| k == name) {
                out.push((name.to_owned(), score_to_milli(score)));
            }
        }
        out.sort();
        out
    }

    /// A comment's name under the session `session`.
    fn comment(&mut self, field: &str, value: &str, session: &str, required: bool) {
        if value.is_empty() {
            if required {
                self.bad(field, "is required");
            }
            return;
        }
        if names::parse_nested(value, "comments").is_none_or(|(parent, _)| parent != session) {
            self.bad(
                field,
                "must be a comment of the event's session ({session}/comments/{comment})",
            );
        }
    }

    fn time(&mut self, field: &str, ts: Option<&prost_types::Timestamp>) -> Option<i64> {
        let ts = ts?;
        let us = micros(ts);
        if us.is_none() {
            self.bad(field, "is not a valid timestamp");
        }
        us
    }
}

/// A manager's override: the evaluation's effective numbers, as a copy of its grade with a
/// higher override revision (see `Fact::apply`).
fn overridden(c: &mut Check<'_>, p: &pb::EvaluationOverridden, occur_us: i64) -> Body {
    c.child(
        "evaluation_overridden.session",
        &p.session,
        "sessions",
        true,
    );
    c.child(
        "evaluation_overridden.trainee",
        &p.trainee,
        "members",
        false,
    );
    c.child(
        "evaluation_overridden.scenario",
        &p.scenario,
        "scenarios",
        false,
    );
    c.child(
        "evaluation_overridden.assignment",
        &p.assignment,
        "assignments",
        false,
    );
    c.child(
        "evaluation_overridden.evaluation",
        &p.evaluation,
        "evaluations",
        true,
    );
    if !(0.0..=100.0).contains(&p.overall_score) {
        c.bad("evaluation_overridden.overall_score", "must be 0 to 100");
    }
    if p.revision < 1 {
        c.bad("evaluation_overridden.revision", "must be at least 1");
    }
    let skills = c.skills("evaluation_overridden.skill_scores", &p.skill_scores);
    let criteria = c.criteria(
        "evaluation_overridden.criterion_scores",
        &p.criterion_scores,
    );
    let start_us = c.time(
        "evaluation_overridden.session_start_time",
        p.session_start_time.as_ref(),
    );
    let duration_ms = c.duration(
        "evaluation_overridden.session_duration",
        p.session_duration.as_ref(),
    );
    Body::Session {
        event: Box::new(SessionEvent::Graded {
            info: SessionInfo {
                session: p.session.clone(),
                trainee: p.trainee.clone(),
                scenario: p.scenario.clone(),
                assignment: p.assignment.clone(),
                start_us,
                duration_ms,
                // Only the call service's events know it; merging keeps what they said.
                origin: Origin::default(),
            },
            grade: Grade {
                evaluation: p.evaluation.clone(),
                score_milli: score_to_milli(p.overall_score),
                passed: p.passed,
                closed: p.closed,
                graded_us: occur_us,
                skills,
                override_rev: p.revision,
                criteria,
            },
            supersedes: String::new(),
        }),
        usage: None,
    }
}

/// The comment a CommentAdded or CommentDeleted describes: the fields both carry.
macro_rules! comment_fact {
    ($p:expr, $deleted:expr) => {
        CommentFact {
            comment: $p.comment.clone(),
            session: $p.session.clone(),
            trainee: $p.trainee.clone(),
            author: $p.author.clone(),
            by_trainee: $p.by_trainee,
            reply_to: $p.reply_to.clone(),
            create_us: None,
            deleted: $deleted,
        }
    };
}

/// A comment added or deleted (`f.deleted`), checked field by field (`field` names the
/// payload), with its create time.
fn comment(
    c: &mut Check<'_>,
    field: &str,
    mut f: CommentFact,
    create_time: Option<&prost_types::Timestamp>,
) -> Body {
    c.child(&format!("{field}.session"), &f.session, "sessions", true);
    c.child(&format!("{field}.trainee"), &f.trainee, "members", true);
    c.child(&format!("{field}.author"), &f.author, "members", true);
    c.comment(&format!("{field}.comment"), &f.comment, &f.session, true);
    c.comment(&format!("{field}.reply_to"), &f.reply_to, &f.session, false);
    f.create_us = c.time(&format!("{field}.create_time"), create_time);
    Body::Comment(f)
}

/// Checks one event; `prefix` names it in violations (e.g. "events[3].").
pub fn parse(e: &pb::Event, prefix: &str) -> Result<Parsed, Vec<FieldViolation>> {
    let org = names::parse_organization(&e.organization).unwrap_or_default();
    let mut c = Check {
        prefix: prefix.to_owned(),
        org,
        violations: Vec::new(),
    };
    if e.event_id.is_empty() || e.event_id.len() > 128 {
        c.bad("event_id", "must be 1 to 128 characters");
    }
    if org.is_empty() {
        c.bad("organization", "must be organizations/{organization}");
    }
    let occur_us = match e.occur_time.as_ref() {
        Some(ts) => c.time("occur_time", Some(ts)).unwrap_or(0),
        None => {
            c.bad("occur_time", "is required");
            0
        }
    };
    let body = match &e.payload {
        None => {
            c.bad("payload", "is required");
            Body::Ignored
        }
        Some(Payload::SessionStarted(p)) => {
            c.child("session_started.session", &p.session, "sessions", true);
            c.child("session_started.trainee", &p.trainee, "members", false);
            c.child("session_started.scenario", &p.scenario, "scenarios", false);
            c.child(
                "session_started.assignment",
                &p.assignment,
                "assignments",
                false,
            );
            let start_us = c.time("session_started.start_time", p.start_time.as_ref());
            Body::Session {
                event: Box::new(SessionEvent::Started(SessionInfo {
                    session: p.session.clone(),
                    trainee: p.trainee.clone(),
                    scenario: p.scenario.clone(),
                    assignment: p.assignment.clone(),
                    start_us,
                    duration_ms: None,
                    origin: origin(p.source, p.drill_of.as_ref()),
                })),
                usage: None,
            }
        }
        Some(Payload::SessionEnded(p)) => {
            c.child("session_ended.session", &p.session, "sessions", true);
            c.child("session_ended.trainee", &p.trainee, "members", false);
            c.child("session_ended.scenario", &p.scenario, "scenarios", false);
            c.child(
                "session_ended.assignment",
                &p.assignment,
                "assignments",
                false,
            );
            let start_us = c.time("session_ended.start_time", p.start_time.as_ref());
            let duration_ms = c.duration("session_ended.duration", p.duration.as_ref());
            Body::Session {
                event: Box::new(SessionEvent::Ended {
                    info: SessionInfo {
                        session: p.session.clone(),
                        trainee: p.trainee.clone(),
                        scenario: p.scenario.clone(),
                        assignment: p.assignment.clone(),
                        start_us,
                        duration_ms,
                        origin: origin(p.source, p.drill_of.as_ref()),
                    },
                    cancelled: p.end_reason == pb::EndReason::Cancelled as i32,
                }),
                usage: usage(p.usage.as_ref()),
            }
        }
        Some(Payload::SessionGraded(p)) => {
            c.child("session_graded.session", &p.session, "sessions", true);
            c.child("session_graded.trainee", &p.trainee, "members", false);
            c.child("session_graded.scenario", &p.scenario, "scenarios", false);
            c.child(
                "session_graded.assignment",
                &p.assignment,
                "assignments",
                false,
            );
            if p.evaluation.is_empty() {
                c.bad("session_graded.evaluation", "is required");
            }
            if !(0.0..=100.0).contains(&p.overall_score) {
                c.bad("session_graded.overall_score", "must be 0 to 100");
            }
            let skills = c.skills("session_graded.skill_scores", &p.skill_scores);
            let criteria = c.criteria("session_graded.criterion_scores", &p.criterion_scores);
            let start_us = c.time(
                "session_graded.session_start_time",
                p.session_start_time.as_ref(),
            );
            let duration_ms = c.duration(
                "session_graded.session_duration",
                p.session_duration.as_ref(),
            );
            Body::Session {
                event: Box::new(SessionEvent::Graded {
                    info: SessionInfo {
                        session: p.session.clone(),
                        trainee: p.trainee.clone(),
                        scenario: p.scenario.clone(),
                        assignment: p.assignment.clone(),
                        start_us,
                        duration_ms,
                        // Grading repeats the source the call service gave it, for a
                        // session whose own events never arrived (drills only they know).
                        origin: origin(p.source, None),
                    },
                    grade: Grade {
                        evaluation: p.evaluation.clone(),
                        score_milli: score_to_milli(p.overall_score),
                        passed: p.passed,
                        closed: p.closed,
                        graded_us: occur_us,
                        skills,
                        override_rev: 0,
                        criteria,
                    },
                    supersedes: p.supersedes.clone(),
                }),
                usage: usage(p.usage.as_ref()),
            }
        }
        Some(Payload::GradingFailed(p)) => {
            c.child("grading_failed.session", &p.session, "sessions", true);
            c.child("grading_failed.trainee", &p.trainee, "members", false);
            c.child("grading_failed.scenario", &p.scenario, "scenarios", false);
            Body::Session {
                event: Box::new(SessionEvent::Failed(SessionInfo {
                    session: p.session.clone(),
                    trainee: p.trainee.clone(),
                    scenario: p.scenario.clone(),
                    ..SessionInfo::default()
                })),
                usage: None,
            }
        }
        Some(Payload::EvaluationOverridden(p)) => overridden(&mut c, p, occur_us),
        Some(Payload::GradingStarted(_)) => Body::Ignored,
        Some(Payload::CommentAdded(p)) => comment(
            &mut c,
            "comment_added",
            comment_fact!(p, false),
            p.create_time.as_ref(),
        ),
        Some(Payload::CommentDeleted(p)) => comment(
            &mut c,
            "comment_deleted",
            comment_fact!(p, true),
            p.create_time.as_ref(),
        ),
        Some(Payload::ConfigChanged(p)) => {
            let own = p.resource == e.organization
                || p.resource
                    .strip_prefix(&e.organization)
                    .is_some_and(|rest| rest.starts_with('/'));
            if p.resource.is_empty() || !own {
                c.bad(
                    "config_changed.resource",
                    "must be the event's organization or under it",
                );
            }
            let display_name = if p.change_kind == pb::ChangeKind::Deleted as i32 {
                String::new()
            } else {
                p.display_name.clone()
            };
            Body::Name {
                resource: p.resource.clone(),
                kind: p.resource_type.clone(),
                display_name,
            }
        }
    };
    if c.violations.is_empty() {
        Ok(Parsed {
            event_id: e.event_id.clone(),
            org: org.to_owned(),
            occur_us,
            body,
        })
    } else {
        Err(c.violations)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{Dim, Fact};

    fn graded(source: pb::SessionSource) -> pb::Event {
        pb::Event {
            event_id: "e1".into(),
            occur_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            organization: "organizations/acme".into(),
            payload: Some(Payload::SessionGraded(pb::SessionGraded {
                session: "organizations/acme/sessions/s1".into(),
                evaluation: "organizations/acme/evaluations/v1".into(),
                trainee: "organizations/acme/members/tom".into(),
                session_start_time: Some(prost_types::Timestamp {
                    seconds: 1_699_990_000,
                    nanos: 0,
                }),
                overall_score: 80.0,
                source: source as i32,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn fact_of(e: &pb::Event) -> Fact {
        let Body::Session { event, .. } = parse(e, "").unwrap().body else {
            panic!("a session event");
        };
        let mut fact = Fact::new(&event.info().session, "acme");
        fact.apply(&event);
        fact
    }

    /// A session whose own events were lost is known only from its grade: the source grading
    /// repeats keeps a real call out of practice numbers; no source leaves it practice.
    #[test]
    fn a_grade_alone_counts_a_real_call_apart() {
        let real = fact_of(&graded(pb::SessionSource::RealCall));
        assert!(real.origin.real_call);
        assert!(real.counted());
        assert_eq!(real.dims()[0], (Dim::RealOrg, ""));
        let unknown = fact_of(&graded(pb::SessionSource::Unspecified));
        assert!(!unknown.origin.real_call);
        assert_eq!(unknown.dims()[0], (Dim::Org, ""));
    }
}
