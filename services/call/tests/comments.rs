//! Comments on transcript lines, on SQLite and PostgreSQL: a manager comments at a line, the
//! trainee answers, both are listed (paged) and pushed to a watcher of the session; the
//! refusals (another trainee, another organization, no anchor, a line that does not exist, an
//! oversized body, a reply across sessions, deleting someone else's comment) change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, Suite, suite_with};
use salestrainer_call::app::settings::CallSettings;
use salestrainer_proto::call as pb;
use salestrainer_tests::authed;
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
    let delete = |token: String, name: String| {
        let mut c = s.call.clone();
        async move {
            c.delete_comment(authed(pb::DeleteCommentRequest { name }, &token))
                .await
                .map(|_| ())
        }
    };
    let e = delete(s.tom.clone(), note.name.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = delete(s.mia.clone(), answer.name.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = delete(s.tina.clone(), note.name.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        all(&s, &name).await.len(),
        2,
        "refused deletes deleted nothing"
    );
    // The note goes with its answer.
    delete(s.mia.clone(), note.name.clone()).await.unwrap();
    assert!(all(&s, &name).await.is_empty());
    let third = create(&s, &s.tom, &name, bad("my own note", &line, ""))
        .await
        .unwrap();
    delete(s.admin.clone(), third.name.clone()).await.unwrap();
    let e = delete(s.admin.clone(), third.name).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let url = s.app.settings.database_url.clone();
    s.app.stop().await;
    salestrainer_tests::drop_postgres_databases(&url, &["config", "call", "grading", "analytics"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_on_sqlite() {
    comment_thread(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_on_postgres() {
    comment_thread(Backend::Postgres).await;
}
