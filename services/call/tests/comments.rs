//! Comments on transcript lines, on SQLite and PostgreSQL: a manager comments at a line, the
//! trainee answers, both are listed (paged) and pushed to a watcher of the session; the
//! refusals (another trainee, another organization, no anchor, a line that does not exist, an
//! oversized body, a reply across sessions, deleting someone else's comment) change nothing.
//! Each write puts exactly one event per comment in the outbox (none for a refused one),
//! deletions are pushed to watchers, and analytics' coaching figures follow, once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, Suite, suite_with};
use prost::Message;
use salestrainer_call::app::settings::CallSettings;
use salestrainer_proto::{analytics as an, call as pb, events as ev};
use salestrainer_runtime::events::TOPIC_COMMENTS;
use salestrainer_tests::authed;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Code, Status};

const MAX_BODY: u64 = 64;

async fn suite(backend: Backend) -> Suite {
    suite_with(backend, |st| {
        st.set_section(
            "call",
            CallSettings {
                max_comment_bytes: MAX_BODY,
                ..Default::default()
            },
        );
    })
    .await
}

/// An ended TEXT session of tom's and the ids of its transcript lines.
async fn session_with_lines(s: &Suite) -> (String, Vec<String>) {
    let session = s
        .start(&s.tom, pb::SessionMode::Text)
        .await
        .session
        .unwrap();
    let mut c = s.converse(&s.tom, &session.name).await;
    c.next().await.unwrap();
    c.reply().await.unwrap();
    c.say("How do you plan your routes today?", "r1")
        .await
        .unwrap();
    c.end().await;
    let ids = s
        .transcript(&session.name)
        .await
        .segments
        .into_iter()
        .map(|g| g.segment_id)
        .collect();
    (session.name, ids)
}

async fn create(
    s: &Suite,
    token: &str,
    parent: &str,
    comment: pb::Comment,
) -> Result<pb::Comment, Status> {
    s.call
        .clone()
        .create_comment(authed(
            pb::CreateCommentRequest {
                parent: parent.into(),
                comment: Some(comment),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().comment.unwrap())
}

async fn list(
    s: &Suite,
    token: &str,
    parent: &str,
    size: i32,
    page: &str,
) -> Result<pb::ListCommentsResponse, Status> {
    s.call
        .clone()
        .list_comments(authed(
            pb::ListCommentsRequest {
                parent: parent.into(),
                page_size: size,
                page_token: page.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn delete(s: &Suite, token: &str, name: &str) -> Result<(), Status> {
    s.call
        .clone()
        .delete_comment(authed(
            pb::DeleteCommentRequest { name: name.into() },
            token,
        ))
        .await
        .map(|_| ())
}

async fn all(s: &Suite, parent: &str) -> Vec<pb::Comment> {
    list(s, &s.mia, parent, 0, "").await.unwrap().comments
}

fn violation_field(st: &Status) -> String {
    use tonic_types::StatusExt;
    st.get_details_bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

async fn comment_thread(backend: Backend) {
    let s = suite(backend).await;
    let (name, lines) = session_with_lines(&s).await;
    let line = lines[1].clone();

    // tom watches his session for comments (the session is over: the stream stays open).
    let mut watch = s
        .call
        .clone()
        .watch_session(authed(
            pb::WatchSessionRequest {
                name: name.clone(),
                include_comments: true,
            },
            &s.tom,
        ))
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().unwrap();

    let note = create(
        &s,
        &s.mia,
        &name,
        pb::Comment {
            body: "  Good open question; now ask about the cost of late deliveries. ".into(),
            segment_id: line.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        note.name.starts_with(&format!("{name}/comments/")),
        "{}",
        note.name
    );
    assert_eq!(note.author, "organizations/acme/members/mia");
    assert_eq!(
        note.body,
        "Good open question; now ask about the cost of late deliveries."
    );
    assert_eq!(note.segment_id, line);
    assert!(note.create_time.is_some());

    // The trainee answers; the answer sits on the same line.
    let answer = create(
        &s,
        &s.tom,
        &name,
        pb::Comment {
            body: "Will do next time.".into(),
            reply_to: note.name.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(answer.reply_to, note.name);
    assert_eq!(answer.segment_id, line);
    assert_eq!(answer.author, "organizations/acme/members/tom");

    // Both were pushed to tom's watcher, in order (state changes of grading may interleave).
    let mut pushed = Vec::new();
    while pushed.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("pushed within 5 s")
            .unwrap()
            .unwrap();
        if let Some(c) = m.comment {
            assert!(m.session.is_some());
            pushed.push(c);
        }
    }
    assert_eq!(pushed, vec![note.clone(), answer.clone()]);

    // Listed oldest first, paged; tom reads every comment on his own session.
    let first = list(&s, &s.tom, &name, 1, "").await.unwrap();
    assert_eq!(first.comments, vec![note.clone()]);
    assert!(!first.next_page_token.is_empty());
    let second = list(&s, &s.tom, &name, 1, &first.next_page_token)
        .await
        .unwrap();
    assert_eq!(second.comments, vec![answer.clone()]);
    assert!(second.next_page_token.is_empty());
    let bad_token = list(&s, &s.tom, &name, 1, "garbage").await.unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);

    // Another trainee and another organization: the session does not exist for them.
    let gary = s.outsider().await;
    for token in [&s.tina, &gary] {
        assert_eq!(
            list(&s, token, &name, 0, "").await.unwrap_err().code(),
            Code::NotFound
        );
        let e = create(
            &s,
            token,
            &name,
            pb::Comment {
                body: "hi".into(),
                segment_id: line.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }

    // Bad input: named fields, nothing written.
    let bad = |body: &str, segment: &str, reply_to: &str| pb::Comment {
        body: body.into(),
        segment_id: segment.into(),
        reply_to: reply_to.into(),
        ..Default::default()
    };
    for (c, field) in [
        (bad("   ", &line, ""), "comment.body"),
        (bad("no anchor", "", ""), "comment.segment_id"),
        (bad("nowhere", "no-such-line", ""), "comment.segment_id"),
        (bad("moved", &lines[0], &note.name), "comment.segment_id"),
        (
            bad(
                "elsewhere",
                "",
                "organizations/acme/sessions/other/comments/c-1",
            ),
            "comment.reply_to",
        ),
        (
            bad("missing", "", &format!("{name}/comments/c-missing")),
            "comment.reply_to",
        ),
    ] {
        let e = create(&s, &s.mia, &name, c).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert_eq!(violation_field(&e), field, "{e:?}");
    }
    let long = "x".repeat(MAX_BODY as usize + 1);
    let e = create(&s, &s.mia, &name, bad(&long, &line, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(all(&s, &name).await.len(), 2, "refusals wrote nothing");

    // Deleting: not someone else's (tom, mia), but the author's own and an admin's.
    let e = delete(&s, &s.tom, &note.name).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = delete(&s, &s.mia, &answer.name).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = delete(&s, &s.tina, &note.name).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        all(&s, &name).await.len(),
        2,
        "refused deletes deleted nothing"
    );
    // The note goes with its answer.
    delete(&s, &s.mia, &note.name).await.unwrap();
    assert!(all(&s, &name).await.is_empty());
    let third = create(&s, &s.tom, &name, bad("my own note", &line, ""))
        .await
        .unwrap();
    delete(&s, &s.admin, &third.name).await.unwrap();
    let e = delete(&s, &s.admin, &third.name).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    finish(s).await;
}

async fn finish(s: Suite) {
    let url = s.app.settings.database_url.clone();
    s.app.stop().await;
    salestrainer_tests::drop_postgres_databases(&url, &salestrainer_tests::DATABASES).await;
}

/// The comment events in call's outbox, in the order they were written.
async fn outbox_events(s: &Suite) -> Vec<ev::Event> {
    use salestrainer_bus::outbox::entity;
    let db = sea_orm::Database::connect(s.app.settings.database_url_for("call"))
        .await
        .unwrap();
    let rows = entity::Entity::find()
        .filter(entity::Column::Topic.eq(TOPIC_COMMENTS))
        .order_by_asc(entity::Column::Id)
        .all(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| ev::Event::decode(r.payload.as_slice()).unwrap())
        .collect()
}

/// The next comment push of a watch stream: (added comment, deleted comment name); state
/// changes (grading) in between are skipped.
async fn next_comment_push(
    watch: &mut tonic::Streaming<pb::WatchSessionResponse>,
) -> (Option<pb::Comment>, String) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("pushed within 5 s")
            .unwrap()
            .unwrap();
        if m.comment.is_some() || !m.deleted_comment.is_empty() {
            assert!(m.session.is_some());
            return (m.comment, m.deleted_comment);
        }
    }
}

async fn watch(s: &Suite, token: &str, name: &str) -> tonic::Streaming<pb::WatchSessionResponse> {
    let mut w = s
        .call
        .clone()
        .watch_session(authed(
            pb::WatchSessionRequest {
                name: name.into(),
                include_comments: true,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    w.message().await.unwrap().unwrap();
    w
}

/// Analytics' coaching figures for acme, once they show `comments` comments.
async fn coaching(s: &Suite, token: &str, comments: i32) -> an::GetCoachingActivityResponse {
    let mut c = an::analytics_service_client::AnalyticsServiceClient::new(s.app.channel.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = c
            .get_coaching_activity(authed(
                an::GetCoachingActivityRequest {
                    organization: "organizations/acme".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        if a.comment_count == comments {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "analytics shows {} comments, not {comments}",
            a.comment_count
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_pushes_and_figures(backend: Backend) {
    let s = suite(backend).await;
    let (name, lines) = session_with_lines(&s).await;
    let mut early = watch(&s, &s.tom, &name).await;
    let at = |line: &str, body: &str, reply_to: &str| pb::Comment {
        body: body.into(),
        segment_id: line.into(),
        reply_to: reply_to.into(),
        ..Default::default()
    };
    let note = create(&s, &s.mia, &name, at(&lines[1], "Ask about cost.", ""))
        .await
        .unwrap();
    let answer = create(&s, &s.tom, &name, at("", "Will do.", &note.name))
        .await
        .unwrap();
    let other = create(&s, &s.admin, &name, at(&lines[0], "Nice opener.", ""))
        .await
        .unwrap();
    // Refused writes: no event.
    let e = create(&s, &s.tina, &name, at(&lines[0], "hi", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = create(&s, &s.mia, &name, at("no-such-line", "hi", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let events = outbox_events(&s).await;
    assert_eq!(events.len(), 3, "one event per comment written: {events:?}");
    let added: Vec<ev::CommentAdded> = events
        .iter()
        .map(|e| match &e.payload {
            Some(ev::event::Payload::CommentAdded(a)) => a.clone(),
            other => panic!("not CommentAdded: {other:?}"),
        })
        .collect();
    let tom = "organizations/acme/members/tom";
    assert_eq!(
        added[0],
        ev::CommentAdded {
            comment: note.name.clone(),
            session: name.clone(),
            trainee: tom.into(),
            author: "organizations/acme/members/mia".into(),
            author_role: ev::MemberRole::Manager as i32,
            by_trainee: false,
            segment_id: lines[1].clone(),
            segment_index: 1,
            reply_to: String::new(),
            create_time: note.create_time,
        }
    );
    assert_eq!(
        (
            added[1].author.as_str(),
            added[1].author_role,
            added[1].by_trainee,
            added[1].reply_to.as_str(),
            added[1].segment_index
        ),
        (
            tom,
            ev::MemberRole::Trainee as i32,
            true,
            note.name.as_str(),
            1
        )
    );
    assert_eq!(
        (added[2].author_role, added[2].segment_index),
        (ev::MemberRole::Admin as i32, 0)
    );
    assert!(
        events
            .iter()
            .all(|e| e.organization == "organizations/acme"),
        "{events:?}"
    );
    // The text stays in the call service.
    let raw: Vec<u8> = events.iter().flat_map(|e| e.encode_to_vec()).collect();
    assert!(
        !raw.windows(b"Ask about cost".len())
            .any(|w| w == b"Ask about cost")
    );

    // Pushed in order to the watcher that was there first.
    for want in [&note, &answer, &other] {
        assert_eq!(
            next_comment_push(&mut early).await,
            (Some(want.clone()), String::new())
        );
    }
    let figures = coaching(&s, &s.mia, 3).await;
    assert_eq!(figures.commented_session_count, 1);
    let t = &figures.trainees[0];
    assert_eq!(
        (
            t.trainee.as_str(),
            t.comments_received,
            t.comments_answered,
            t.replies_written
        ),
        (tom, 2, 1, 1)
    );
    assert_eq!(figures.coaches.len(), 2);
    // tina may not read tom's figures.
    let e = an::analytics_service_client::AnalyticsServiceClient::new(s.app.channel.clone())
        .get_coaching_activity(authed(
            an::GetCoachingActivityRequest {
                organization: "organizations/acme".into(),
                trainee: tom.into(),
                ..Default::default()
            },
            &s.tina,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // A watcher opened now still hears of the deletion of comments it found.
    let mut late = watch(&s, &s.mia, &name).await;
    let e = delete(&s, &s.tom, &note.name).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        outbox_events(&s).await.len(),
        3,
        "a refused delete emits nothing"
    );
    delete(&s, &s.mia, &note.name).await.unwrap();
    let events = outbox_events(&s).await;
    let deleted: Vec<(String, String)> = events[3..]
        .iter()
        .map(|e| match &e.payload {
            Some(ev::event::Payload::CommentDeleted(d)) => {
                (d.comment.clone(), d.deleted_by.clone())
            }
            other => panic!("not CommentDeleted: {other:?}"),
        })
        .collect();
    let mia = "organizations/acme/members/mia".to_owned();
    assert_eq!(
        deleted,
        vec![(note.name.clone(), mia.clone()), (answer.name.clone(), mia)],
        "the comment and its reply, once each"
    );
    for w in [&mut early, &mut late] {
        let mut gone = vec![next_comment_push(w).await, next_comment_push(w).await];
        gone.sort_by(|a, b| a.1.cmp(&b.1));
        let mut want = vec![(None, note.name.clone()), (None, answer.name.clone())];
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(gone, want);
    }
    let figures = coaching(&s, &s.mia, 1).await;
    let t = &figures.trainees[0];
    assert_eq!(
        (t.comments_received, t.comments_answered, t.replies_written),
        (1, 0, 0)
    );

    // Redelivered to analytics: every event a duplicate, no figure moves.
    let mut a = an::analytics_service_client::AnalyticsServiceClient::new(s.app.channel.clone());
    let again = a
        .ingest_events(authed(
            an::IngestEventsRequest {
                events: outbox_events(&s).await,
            },
            &s.service,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 5));
    assert_eq!(coaching(&s, &s.mia, 1).await, figures);
    finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_events_on_sqlite() {
    events_pushes_and_figures(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_events_on_postgres() {
    events_pushes_and_figures(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_on_sqlite() {
    comment_thread(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_on_postgres() {
    comment_thread(Backend::Postgres).await;
}
