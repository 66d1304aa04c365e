//! What a text turn writes to its session row must touch no index: every turn (a few hundred a
//! second under load) would otherwise add an entry to each index of `call_sessions`, and on
//! PostgreSQL no turn's update could be HOT. The columns a turn changes are found by doing
//! turns (an LLM reply with usage included) and comparing the row before and after; the
//! indexes are read from each backend's catalog. SQLite and PostgreSQL.
//!
//! And a turn's write is all or nothing on both backends (PostgreSQL writes it in one
//! statement, SQLite in a transaction): a resend, a half-stored pair, a session that is not
//! ACTIVE or a limit writes nothing and says why, and concurrent resends store a turn once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use salestrainer_call::{
    app::settings::CallSettings,
    domain::{Speaker, transcript::Limits},
    store::{self, Migrator, NewTurn, TurnUsage, WriteError, session},
};
use salestrainer_proto::call as pb;
use salestrainer_runtime::time::now_us;
use salestrainer_tests::Backend;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};

async fn row(db: &DatabaseConnection, id: &str) -> serde_json::Map<String, serde_json::Value> {
    match session::Entity::find_by_id(id.to_owned())
        .into_json()
        .one(db)
        .await
        .unwrap()
        .expect("the session")
    {
        serde_json::Value::Object(m) => m,
        other => panic!("not a row: {other}"),
    }
}

/// The columns of each index on `call_sessions`.
async fn indexed_columns(db: &DatabaseConnection) -> Vec<(String, BTreeSet<String>)> {
    let backend = db.get_database_backend();
    let q = match backend {
        DbBackend::Postgres => {
            "SELECT ic.relname AS index_name, a.attname AS column_name \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
             WHERE c.relname = 'call_sessions'"
        }
        _ => {
            "SELECT il.name AS index_name, ii.name AS column_name \
             FROM pragma_index_list('call_sessions') il, pragma_index_info(il.name) ii"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, q))
        .await
        .unwrap();
    let mut by_index: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for r in rows {
        by_index
            .entry(r.try_get("", "index_name").unwrap())
            .or_default()
            .insert(r.try_get("", "column_name").unwrap());
    }
    by_index.into_iter().collect()
}

fn turn(id: &str, speaker: Speaker, usage: Option<TurnUsage>) -> NewTurn {
    NewTurn {
        segment_id: id.into(),
        speaker,
        text: format!("words of {id}"),
        start_ms: 1,
        end_ms: 2,
        reply_to: None,
        usage,
    }
}

/// An ACTIVE text session `id`, last active a minute ago.
async fn active_session(db: &DatabaseConnection, id: &str) {
    let earlier = now_us() - 60_000_000;
    store::insert_session(
        db,
        session::Model {
            id: id.into(),
            organization: "acme".into(),
            trainee: "organizations/acme/members/tom".into(),
            scenario: "organizations/acme/scenarios/cold-call".into(),
            mode: pb::SessionMode::Text as i32,
            state: pb::SessionState::Active as i32,
            start_us: earlier,
            last_activity_us: earlier,
            create_us: earlier,
            update_us: earlier,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

async fn a_turn_touches_no_index(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = backend.fresh_database::<Migrator>("call", dir.path()).await;
    active_session(&db, "s1").await;
    let limits = CallSettings::default().transcript_limits();
    let before = row(&db, "s1").await;
    let usage = TurnUsage {
        prompt_tokens: 120,
        completion_tokens: 40,
        model: "persona-model".into(),
    };
    assert!(
        store::append_turns(
            &db,
            vec![
                turn("trainee-1", Speaker::Trainee, None),
                turn("persona-1", Speaker::Persona, Some(usage)),
            ],
            "s1",
            &limits,
        )
        .await
        .unwrap()
    );
    let after = row(&db, "s1").await;
    let moved: BTreeSet<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    // The turn did move the session (else this test checks nothing).
    for column in ["last_activity_us", "segment_count", "prompt_tokens"] {
        assert!(
            moved.contains(column),
            "{backend:?}: {column} did not move: {moved:?}"
        );
    }
    let indexes = indexed_columns(&db).await;
    assert!(
        indexes.len() >= 5,
        "{backend:?}: indexes not read: {indexes:?}"
    );
    for (index, columns) in &indexes {
        let hit: Vec<&String> = columns.intersection(&moved).collect();
        assert!(
            hit.is_empty(),
            "{backend:?}: index {index} covers {hit:?}, which a text turn changes"
        );
    }
    if backend == Backend::Postgres {
        let options = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT array_to_string(reloptions, ',') AS o FROM pg_class \
                 WHERE relname = 'call_sessions'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<Option<String>>("", "o")
            .unwrap();
        assert_eq!(options.as_deref(), Some("fillfactor=70"));
    }
    // The sweeper still finds the session by its activity.
    let idle = store::expired_sessions(&db, now_us() + 1, now_us(), 10)
        .await
        .unwrap();
    assert_eq!(idle.len(), 1, "{backend:?}");
    let busy = store::expired_sessions(&db, now_us() - 30_000_000, now_us(), 10)
        .await
        .unwrap();
    assert!(
        busy.is_empty(),
        "{backend:?}: a session with a turn just now is not idle"
    );
}

#[tokio::test]
async fn a_turn_touches_no_index_sqlite() {
    a_turn_touches_no_index(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_turn_touches_no_index_postgres() {
    a_turn_touches_no_index(Backend::Postgres).await;
}

/// The session's counters and its stored segment ids, in id order.
async fn state_of(db: &DatabaseConnection, id: &str) -> (i64, i64, i64, Vec<String>) {
    let m = store::get(db, id).await.unwrap().expect("the session");
    let mut ids: Vec<String> = store::segments(db, id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.segment_id)
        .collect();
    ids.sort();
    (m.segment_count, m.transcript_bytes, m.prompt_tokens, ids)
}

async fn a_turn_is_written_whole_or_not_at_all(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = backend.fresh_database::<Migrator>("call", dir.path()).await;
    active_session(&db, "s1").await;
    let limits = CallSettings::default().transcript_limits();
    let usage = || {
        Some(TurnUsage {
            prompt_tokens: 7,
            completion_tokens: 3,
            model: "m".into(),
        })
    };
    let pair = |n: &str| {
        vec![
            turn(&format!("trainee-{n}"), Speaker::Trainee, None),
            turn(&format!("persona-{n}"), Speaker::Persona, usage()),
        ]
    };
    assert!(
        store::append_turns(&db, pair("1"), "s1", &limits)
            .await
            .unwrap()
    );
    let stored = state_of(&db, "s1").await;
    assert_eq!(
        (stored.0, stored.1, stored.2),
        (2, 2 * "words of trainee-1".len() as i64, 7),
        "{backend:?}"
    );

    // A resend, and a resent trainee turn with a fresh reply id: false, nothing written.
    assert!(
        !store::append_turns(&db, pair("1"), "s1", &limits)
            .await
            .unwrap()
    );
    let half = vec![
        turn("trainee-1", Speaker::Trainee, None),
        turn("persona-other", Speaker::Persona, usage()),
    ];
    assert!(!store::append_turns(&db, half, "s1", &limits).await.unwrap());
    assert_eq!(
        state_of(&db, "s1").await,
        stored,
        "{backend:?}: a resend wrote"
    );

    // A limit: refused as such, nothing written.
    let tight = Limits {
        max_segments: 3,
        ..limits
    };
    let refused = store::append_turns(&db, pair("2"), "s1", &tight).await;
    assert!(
        matches!(refused, Err(WriteError::Limit(_))),
        "{backend:?}: {refused:?}"
    );
    let small = Limits {
        max_transcript_bytes: 40,
        ..limits
    };
    let refused = store::append_turns(&db, pair("2"), "s1", &small).await;
    assert!(
        matches!(refused, Err(WriteError::Limit(_))),
        "{backend:?}: {refused:?}"
    );
    assert_eq!(
        state_of(&db, "s1").await,
        stored,
        "{backend:?}: a refusal wrote"
    );
    // A limit with room for exactly this turn lets it in.
    let exact = Limits {
        max_segments: 4,
        ..limits
    };
    assert!(
        store::append_turns(&db, pair("2"), "s1", &exact)
            .await
            .unwrap()
    );

    // Gone and not ACTIVE: said so, nothing written.
    let missing = store::append_turns(&db, pair("3"), "nope", &limits).await;
    assert!(
        matches!(missing, Err(WriteError::NotFound)),
        "{backend:?}: {missing:?}"
    );
    db.execute_raw(Statement::from_string(
        backend_of(&db),
        format!(
            "UPDATE call_sessions SET state = {} WHERE id = 's1'",
            pb::SessionState::Ended as i32
        ),
    ))
    .await
    .unwrap();
    let before = state_of(&db, "s1").await;
    let ended = store::append_turns(&db, pair("3"), "s1", &limits).await;
    assert!(
        matches!(ended, Err(WriteError::NotActive(s)) if s == pb::SessionState::Ended as i32),
        "{backend:?}: {ended:?}"
    );
    assert_eq!(state_of(&db, "s1").await, before, "{backend:?}");
}

fn backend_of(db: &DatabaseConnection) -> DbBackend {
    db.get_database_backend()
}

/// The same turn sent by two writers at once (a client resending on a second stream, served
/// by another replica): stored once, counted once, one writer told it was a resend.
async fn concurrent_resends_store_a_turn_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = backend.fresh_database::<Migrator>("call", dir.path()).await;
    active_session(&db, "s1").await;
    let limits = CallSettings::default().transcript_limits();
    const ROUNDS: usize = 25;
    for round in 0..ROUNDS {
        let write = |reply: &str| {
            let db = db.clone();
            let turns = vec![
                turn(&format!("trainee-{round}"), Speaker::Trainee, None),
                turn(&format!("persona-{round}-{reply}"), Speaker::Persona, None),
            ];
            tokio::spawn(async move { store::append_turns(&db, turns, "s1", &limits).await })
        };
        let (a, b) = (write("a"), write("b"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let fresh = [&a, &b].iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(fresh, 1, "{backend:?} round {round}: {a:?} {b:?}");
        assert!(
            matches!((&a, &b), (Ok(_), Ok(_))),
            "{backend:?} round {round}: {a:?} {b:?}"
        );
    }
    let (count, _, _, ids) = state_of(&db, "s1").await;
    assert_eq!(
        count,
        2 * ROUNDS as i64,
        "{backend:?}: counters moved for a resend"
    );
    assert_eq!(ids.len(), 2 * ROUNDS, "{backend:?}: {ids:?}");
}

#[tokio::test]
async fn a_turn_is_written_whole_or_not_at_all_sqlite() {
    a_turn_is_written_whole_or_not_at_all(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_turn_is_written_whole_or_not_at_all_postgres() {
    a_turn_is_written_whole_or_not_at_all(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_store_a_turn_once_sqlite() {
    concurrent_resends_store_a_turn_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_store_a_turn_once_postgres() {
    concurrent_resends_store_a_turn_once(Backend::Postgres).await;
}
