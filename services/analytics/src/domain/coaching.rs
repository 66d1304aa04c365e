//! Coaching figures from comments on session transcripts: per session, per trainee (comments
//! received from others and how many they answered) and per coach (an author commenting on
//! someone else's session).

use std::collections::{BTreeMap, BTreeSet};

/// A comment as the read model keeps it (added or deleted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommentFact {
    /// "organizations/{o}/sessions/{s}/comments/{c}".
    pub comment: String,
    pub session: String,
    /// The session's owner (member name).
    pub trainee: String,
    pub author: String,
    /// Written by the session's trainee.
    pub by_trainee: bool,
    /// The comment it answers; empty for a new thread.
    pub reply_to: String,
    pub create_us: Option<i64>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionTally {
    pub session: String,
    pub trainee: String,
    pub comments: i64,
    pub by_trainee: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraineeTally {
    pub trainee: String,
    pub received: i64,
    pub answered: i64,
    pub replies: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoachTally {
    pub author: String,
    pub comments: i64,
    pub sessions: i64,
    pub trainees: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    pub comments: i64,
    pub commented_sessions: i64,
    /// Most commented first, at most [`MAX_SESSIONS`].
    pub sessions: Vec<SessionTally>,
    /// Most comments received first.
    pub trainees: Vec<TraineeTally>,
    /// Most comments written first.
    pub coaches: Vec<CoachTally>,
}

/// Sessions listed in an answer.
pub const MAX_SESSIONS: usize = 100;

/// The figures of the live comments `rows`; `answered` holds the comments a session's trainee
/// replied to.
pub fn tally(rows: &[CommentFact], answered: &BTreeSet<String>) -> Activity {
    let mut sessions: BTreeMap<&str, SessionTally> = BTreeMap::new();
    let mut trainees: BTreeMap<&str, TraineeTally> = BTreeMap::new();
    let mut coaches: BTreeMap<&str, (i64, BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for c in rows.iter().filter(|c| !c.deleted) {
        let s = sessions.entry(&c.session).or_insert_with(|| SessionTally {
            session: c.session.clone(),
            trainee: c.trainee.clone(),
            ..SessionTally::default()
        });
        s.comments += 1;
        let t = trainees.entry(&c.trainee).or_insert_with(|| TraineeTally {
            trainee: c.trainee.clone(),
            ..TraineeTally::default()
        });
        if c.by_trainee {
            s.by_trainee += 1;
            t.replies += 1;
        } else {
            t.received += 1;
            t.answered += i64::from(answered.contains(&c.comment));
            let coach = coaches.entry(&c.author).or_default();
            coach.0 += 1;
            coach.1.insert(&c.session);
            coach.2.insert(&c.trainee);
        }
    }
    let comments = sessions.values().map(|s| s.comments).sum();
    let commented_sessions = sessions.len() as i64;
    let mut sessions: Vec<SessionTally> = sessions.into_values().collect();
    sessions.sort_by(|a, b| b.comments.cmp(&a.comments).then(a.session.cmp(&b.session)));
    sessions.truncate(MAX_SESSIONS);
    let mut trainees: Vec<TraineeTally> = trainees.into_values().collect();
    trainees.sort_by(|a, b| b.received.cmp(&a.received).then(a.trainee.cmp(&b.trainee)));
    let mut coaches: Vec<CoachTally> = coaches
        .into_iter()
        .map(|(author, (comments, s, t))| CoachTally {
            author: author.to_owned(),
            comments,
            sessions: s.len() as i64,
            trainees: t.len() as i64,
        })
        .collect();
    coaches.sort_by(|a, b| b.comments.cmp(&a.comments).then(a.author.cmp(&b.author)));
    Activity {
        comments,
        commented_sessions,
        sessions,
        trainees,
        coaches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, session: &str, trainee: &str, author: &str) -> CommentFact {
        CommentFact {
            comment: format!("{session}/comments/{id}"),
            session: session.into(),
            trainee: trainee.into(),
            author: author.into(),
            by_trainee: author == trainee,
            create_us: Some(1),
            ..CommentFact::default()
        }
    }

    #[test]
    fn counts_coaching_per_session_trainee_and_coach() {
        let (s1, s2, s3) = ("o/sessions/1", "o/sessions/2", "o/sessions/3");
        let rows = vec![
            c("a", s1, "tom", "maria"),
            c("b", s1, "tom", "maria"),
            c("r", s1, "tom", "tom"),
            c("d", s2, "tom", "ann"),
            c("e", s3, "tina", "maria"),
            CommentFact {
                deleted: true,
                ..c("x", s3, "tina", "maria")
            },
        ];
        let answered = BTreeSet::from([format!("{s1}/comments/a")]);
        let a = tally(&rows, &answered);
        assert_eq!((a.comments, a.commented_sessions), (5, 3));
        assert_eq!(a.sessions[0].session, s1);
        assert_eq!((a.sessions[0].comments, a.sessions[0].by_trainee), (3, 1));
        let tom = &a.trainees[0];
        assert_eq!(
            (
                tom.trainee.as_str(),
                tom.received,
                tom.answered,
                tom.replies
            ),
            ("tom", 3, 1, 1)
        );
        assert_eq!((a.trainees[1].received, a.trainees[1].answered), (1, 0));
        let maria = &a.coaches[0];
        assert_eq!(
            (
                maria.author.as_str(),
                maria.comments,
                maria.sessions,
                maria.trainees
            ),
            ("maria", 3, 2, 2)
        );
        assert_eq!(
            (a.coaches[1].author.as_str(), a.coaches[1].comments),
            ("ann", 1)
        );
    }
}
