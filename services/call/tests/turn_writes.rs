//! What a text turn writes to its session row must touch no index: every turn (a few hundred a
//! second under load) would otherwise add an entry to each index of `call_sessions`, and on
//! PostgreSQL no turn's update could be HOT. The columns a turn changes are found by doing
//! turns (an LLM reply with usage included) and comparing the row before and after; the
//! indexes are read from each backend's catalog. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use salestrainer_call::{
    app::settings::CallSettings,
    domain::Speaker,
    store::{self, Migrator, NewTurn, TurnUsage, session},
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

async fn a_turn_touches_no_index(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = backend.fresh_database::<Migrator>("call", dir.path()).await;
    let earlier = now_us() - 60_000_000;
    store::insert_session(
        &db,
        session::Model {
            id: "s1".into(),
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
