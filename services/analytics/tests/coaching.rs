//! GetCoachingActivity over real connections, on SQLite and PostgreSQL: comment events of a
//! seeded organization give the per-session, per-trainee and per-coach figures; a redelivered
//! batch counts once; a deletion that arrives before its addition keeps the comment out; a
//! trainee sees only their own figures; a comment event that names another session's comment
//! is refused without a write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::Role;
use tonic::Code;

const ORG: &str = "acme";

fn member(m: &str) -> String {
    format!("organizations/{ORG}/members/{m}")
}

fn session(s: &str) -> String {
    format!("organizations/{ORG}/sessions/{s}")
}

fn comment_name(s: &str, c: &str) -> String {
    format!("{}/comments/{c}", session(s))
}

/// CommentAdded `c` on `s` (owned by `trainee`) by `author`, answering `reply_to` (if any).
fn added(c: &str, s: &str, trainee: &str, author: &str, reply_to: &str, at: i64) -> ev::Event {
    let role = if author == trainee {
        ev::MemberRole::Trainee
    } else {
        ev::MemberRole::Manager
    };
    event(
        &format!("add-{c}"),
        ORG,
        at,
        ev::event::Payload::CommentAdded(ev::CommentAdded {
            comment: comment_name(s, c),
            session: session(s),
            trainee: member(trainee),
            author: member(author),
            author_role: role as i32,
            by_trainee: author == trainee,
            segment_id: "seg-1".into(),
            segment_index: 1,
            reply_to: if reply_to.is_empty() {
                String::new()
            } else {
                comment_name(s, reply_to)
            },
            create_time: Some(ts(at)),
        }),
    )
}

/// CommentDeleted for the comment `added` described.
fn deleted(added: &ev::Event, at: i64) -> ev::Event {
    let Some(ev::event::Payload::CommentAdded(a)) = added.payload.clone() else {
        panic!("not a CommentAdded")
    };
    event(
        &format!("del-{}", added.event_id),
        ORG,
        at,
        ev::event::Payload::CommentDeleted(ev::CommentDeleted {
            comment: a.comment,
            session: a.session,
            trainee: a.trainee,
            author: a.author.clone(),
            by_trainee: a.by_trainee,
            reply_to: a.reply_to,
            create_time: a.create_time,
            deleted_by: a.author,
        }),
    )
}

fn request(trainee: &str) -> pb::GetCoachingActivityRequest {
    pb::GetCoachingActivityRequest {
        organization: format!("organizations/{ORG}"),
        trainee: if trainee.is_empty() {
            String::new()
        } else {
            member(trainee)
        },
        start_time: Some(ts(BASE_US)),
        end_time: Some(ts(BASE_US + 7 * DAY_US)),
    }
}

async fn activity(
    h: &Harness,
    token: &str,
    req: pb::GetCoachingActivityRequest,
) -> Result<pb::GetCoachingActivityResponse, tonic::Status> {
    h.client()
        .get_coaching_activity(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

/// (trainee, received, answered, replies) per trainee, in the answer's order.
fn trainees(a: &pb::GetCoachingActivityResponse) -> Vec<(String, i32, i32, i32)> {
    a.trainees
        .iter()
        .map(|t| {
            (
                t.trainee.clone(),
                t.comments_received,
                t.comments_answered,
                t.replies_written,
            )
        })
        .collect()
}

/// (author, comments, sessions, trainees) per coach, in the answer's order.
fn coaches(a: &pb::GetCoachingActivityResponse) -> Vec<(String, i32, i32, i32)> {
    a.coaches
        .iter()
        .map(|c| {
            (
                c.author.clone(),
                c.comments_written,
                c.sessions_coached,
                c.trainees_coached,
            )
        })
        .collect()
}

async fn coaching_figures(backend: Backend) {
    let h = spawn(backend).await;
    let boss = h.token(Role::Manager, "boss", ORG).await;
    let ann = h.token(Role::Trainee, "ann", ORG).await;
    let stranger = h.token(Role::Admin, "eve", "other").await;
    let day = BASE_US + DAY_US;

    let c1 = added("c1", "s1", "ann", "boss", "", day);
    let r1 = added("r1", "s1", "ann", "ann", "c1", day + 10);
    let c2 = added("c2", "s1", "ann", "boss", "", day + 20);
    let c3 = added("c3", "s2", "ann", "boss", "", day + 30);
    let c4 = added("c4", "s3", "bob", "lead", "", day + 40);
    let c5 = added("c5", "s3", "bob", "boss", "", day + 50);
    // Before the range: never counted.
    let old = added("c0", "s1", "ann", "boss", "", BASE_US - DAY_US);
    // c5's deletion comes first: its addition must not bring it back.
    let batch = vec![
        deleted(&c5, day + 60),
        c1.clone(),
        r1.clone(),
        c2,
        c3,
        c4,
        c5,
        old,
    ];
    let first = h.ingest(batch.clone()).await;
    assert_eq!((first.accepted, first.duplicates), (8, 0));

    let want_trainees = vec![(member("ann"), 3, 1, 1), (member("bob"), 1, 0, 0)];
    let want_coaches = vec![(member("boss"), 3, 2, 1), (member("lead"), 1, 1, 1)];
    let all = activity(&h, &boss, request("")).await.unwrap();
    assert_eq!((all.comment_count, all.commented_session_count), (5, 3));
    assert_eq!(trainees(&all), want_trainees);
    assert_eq!(coaches(&all), want_coaches);
    let s1 = &all.sessions[0];
    assert_eq!(
        (
            s1.session.as_str(),
            s1.trainee.as_str(),
            s1.comment_count,
            s1.trainee_comment_count
        ),
        (session("s1").as_str(), member("ann").as_str(), 3, 1)
    );
    assert_eq!(all.sessions.len(), 3);

    // Redelivered: every event is a duplicate and no figure moves.
    let again = h.ingest(batch).await;
    assert_eq!((again.accepted, again.duplicates), (0, 8));
    assert_eq!(activity(&h, &boss, request("")).await.unwrap(), all);

    // A trainee: no filter means their own sessions; another trainee's figures are refused.
    let mine = activity(&h, &ann, request("")).await.unwrap();
    assert_eq!(trainees(&mine), vec![(member("ann"), 3, 1, 1)]);
    assert_eq!(coaches(&mine), vec![(member("boss"), 3, 2, 1)]);
    assert_eq!(mine, activity(&h, &ann, request("ann")).await.unwrap());
    let e = activity(&h, &ann, request("bob")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A manager filters by trainee.
    let bob = activity(&h, &boss, request("bob")).await.unwrap();
    assert_eq!((bob.comment_count, bob.commented_session_count), (1, 1));
    assert_eq!(coaches(&bob), vec![(member("lead"), 1, 1, 1)]);
    // Another organization's figures do not exist for the caller; bad input is named.
    let e = activity(&h, &stranger, request("")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let mut bad = request("");
    bad.trainee = "organizations/other/members/x".into();
    let e = activity(&h, &boss, bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // ann's answer is deleted: c1 is no longer answered (the cached answer moves at once).
    let gone = h.ingest(vec![deleted(&r1, day + 70)]).await;
    assert_eq!(gone.accepted, 1);
    let after = activity(&h, &boss, request("")).await.unwrap();
    assert_eq!(after.comment_count, 4);
    assert_eq!(
        trainees(&after),
        vec![(member("ann"), 3, 0, 0), (member("bob"), 1, 0, 0)]
    );

    // A comment event naming another session's comment is refused, and writes nothing.
    let mut wrong = added("c9", "s1", "ann", "boss", "", day + 80);
    if let Some(ev::event::Payload::CommentAdded(a)) = &mut wrong.payload {
        a.comment = comment_name("s2", "c9");
    }
    let e = h
        .client()
        .ingest_events(authed(
            pb::IngestEventsRequest {
                events: vec![wrong],
            },
            &h.service(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(
        e.message(),
        "invalid argument: events[0].comment_added.comment"
    );
    assert_eq!(activity(&h, &boss, request("")).await.unwrap(), after);
    h.finish().await;
}

#[tokio::test]
async fn coaching_figures_sqlite() {
    coaching_figures(Backend::Sqlite).await;
}

#[tokio::test]
async fn coaching_figures_postgres() {
    coaching_figures(Backend::Postgres).await;
}
