//! Issue 10: a grading database migrated by the earlier migrations (instants in milliseconds)
//! keeps the same instants once migrated to microseconds, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use salestrainer_grading::api::convert::job_pb;
use salestrainer_grading::store::{self, Migrator, evaluation, job, usage};
use salestrainer_proto::grading::JobState;
use salestrainer_runtime::Settings;
use salestrainer_runtime::time::{now_us, timestamp};
use salestrainer_tests::Backend;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};
use sea_orm_migration::MigratorTrait;

const CREATED_MS: i64 = 1_700_000_000_123;
const UPDATED_MS: i64 = 1_700_000_050_456;
const SESSION_START_MS: i64 = 1_699_999_000_789;
const ATTEMPT_START_MS: i64 = 1_700_000_040_001;
const ATTEMPT_END_MS: i64 = 1_700_000_041_999;

/// A grading database with every migration before the move to microseconds applied.
async fn database_before_micros(backend: Backend, dir: &std::path::Path) -> DatabaseConnection {
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        database_url: backend.database_url(),
        ..Settings::default()
    };
    let db = salestrainer_runtime::db::connect(&settings.database_url_for("grading"))
        .await
        .expect("a test database (is PostgreSQL up?)");
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m0003_grading_instants_us")
        .expect("the move to microseconds is a migration");
    let before = u32::try_from(before).unwrap();
    Migrator::up(&db, Some(before)).await.unwrap();
    db
}

fn v(x: impl Into<sea_orm::Value>) -> Expr {
    Expr::val(x)
}

/// Inserts one row by column name (the schema of the earlier migrations).
async fn insert(db: &DatabaseConnection, table: &str, cols: Vec<(&str, Expr)>) {
    let (names, values): (Vec<_>, Vec<_>) = cols.into_iter().unzip();
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(names.into_iter().map(Alias::new))
        .values_panic(values)
        .to_owned();
    db.execute(&stmt).await.unwrap();
}

/// A job row as the millisecond schema stored it.
async fn insert_old_job(
    db: &DatabaseConnection,
    id: &str,
    state: JobState,
    next_attempt_at_ms: i64,
    lease_until_ms: Option<i64>,
) {
    let log = format!(
        r#"[{{"attempt":1,"start_ms":{ATTEMPT_START_MS},"end_ms":{ATTEMPT_END_MS},"step":3,"error":"http 503","retryable":true}}]"#
    );
    insert(
        db,
        "grading_jobs",
        vec![
            ("id", v(id)),
            ("organization", v("organizations/acme")),
            ("session", v(format!("organizations/acme/sessions/{id}"))),
            ("generation", v(0i32)),
            ("request_id", v(format!("req-{id}"))),
            ("regrade", v(false)),
            ("trainee", v("organizations/acme/members/t1")),
            ("scenario", v("organizations/acme/scenarios/s1")),
            ("assignment", v("")),
            ("rubric", v("")),
            ("session_start_ms", v(Some(SESSION_START_MS))),
            ("session_duration_ms", v(Some(95_000i64))),
            ("state", v(state as i32)),
            ("attempts", v(1i32)),
            ("max_attempts", v(5i32)),
            ("next_attempt_at", v(next_attempt_at_ms)),
            (
                "lease_token",
                v(lease_until_ms.map(|_| "a-worker".to_owned())),
            ),
            ("lease_until", v(lease_until_ms)),
            ("current_step", v(3i32)),
            ("checkpoint", v("{}")),
            ("dead_reason", v(0i32)),
            ("last_error", v(Some("http 503".to_owned()))),
            ("attempt_log", v(log)),
            ("evaluation", v(Option::<String>::None)),
            ("started", v(true)),
            ("enqueued_at", v(Some(UPDATED_MS - 7))),
            ("version", v(4i32)),
            ("create_ms", v(CREATED_MS)),
            ("update_ms", v(UPDATED_MS)),
        ],
    )
    .await;
}

/// The columns of index `name`, in order.
async fn index_columns(db: &DatabaseConnection, name: &str) -> String {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => format!(
            "SELECT group_concat(name, ', ') AS cols FROM \
             (SELECT name FROM pragma_index_info('{name}') ORDER BY seqno)"
        ),
        _ => format!("SELECT indexdef AS cols FROM pg_indexes WHERE indexname = '{name}'"),
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("index {name} exists"));
    row.try_get::<String>("", "cols").unwrap()
}

async fn old_rows_keep_their_instants(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = database_before_micros(backend, dir.path()).await;
    let now_ms = now_us() / 1000;
    // Due (its retry time has come) and not due (its lease runs for another hour).
    insert_old_job(&db, "due", JobState::Retrying, now_ms - 60_000, None).await;
    insert_old_job(
        &db,
        "leased",
        JobState::Running,
        CREATED_MS,
        Some(now_ms + 3_600_000),
    )
    .await;
    insert(
        &db,
        "evaluations",
        vec![
            ("id", v("e1")),
            ("organization", v("organizations/acme")),
            ("session", v("organizations/acme/sessions/done")),
            ("trainee", v("organizations/acme/members/t1")),
            ("scenario", v("organizations/acme/scenarios/s1")),
            ("assignment", v("")),
            ("job_id", v("done")),
            ("overall_score", v(3.5f64)),
            ("passed", v(true)),
            ("closed", v(false)),
            ("supersedes", v(Option::<String>::None)),
            ("superseded_by", v(Option::<String>::None)),
            ("body", v(Vec::<u8>::new())),
            ("create_ms", v(UPDATED_MS)),
        ],
    )
    .await;
    insert(
        &db,
        "llm_usage",
        vec![
            ("job_id", v("due")),
            ("organization", v("organizations/acme")),
            ("session", v("organizations/acme/sessions/due")),
            ("attempt", v(1i32)),
            ("step", v(3i32)),
            ("provider", v("openai")),
            ("model", v("m")),
            ("prompt_tokens", v(10i64)),
            ("completion_tokens", v(5i64)),
            ("cost_micros", v(7i64)),
            ("latency_ms", v(1_234i64)),
            ("outcome", v("http 503")),
            ("create_ms", v(ATTEMPT_END_MS)),
        ],
    )
    .await;

    Migrator::up(&db, None).await.unwrap();

    let j = job::Entity::find_by_id("due".to_owned())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.create_us, CREATED_MS * 1000);
    assert_eq!(j.update_us, UPDATED_MS * 1000);
    assert_eq!(j.session_start_us, Some(SESSION_START_MS * 1000));
    assert_eq!(j.next_attempt_at_us, (now_ms - 60_000) * 1000);
    assert_eq!(j.enqueued_at_us, Some((UPDATED_MS - 7) * 1000));
    assert_eq!(j.lease_until_us, None);
    assert_eq!(j.session_duration_ms, Some(95_000), "durations stay ms");
    let pb = job_pb(&j);
    assert_eq!(pb.create_time, Some(timestamp(CREATED_MS * 1000)));
    assert_eq!(pb.update_time, Some(timestamp(UPDATED_MS * 1000)));
    assert_eq!(
        pb.next_attempt_time,
        Some(timestamp((now_ms - 60_000) * 1000))
    );
    let attempts = &pb.recent_attempts;
    assert_eq!(attempts.len(), 1, "the attempt log still reads");
    assert_eq!(
        attempts[0].start_time,
        Some(timestamp(ATTEMPT_START_MS * 1000))
    );
    assert_eq!(attempts[0].end_time, Some(timestamp(ATTEMPT_END_MS * 1000)));
    assert_eq!(attempts[0].error, "http 503");

    let leased = job::Entity::find_by_id("leased".to_owned())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leased.lease_until_us, Some((now_ms + 3_600_000) * 1000));
    // Due-ness compares the converted instants with now in microseconds.
    assert_eq!(
        store::due_job_ids(&db, now_us(), 10).await.unwrap(),
        vec!["due".to_owned()]
    );

    let e = evaluation::Entity::find_by_id("e1".to_owned())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.create_us, UPDATED_MS * 1000);
    let u = usage::Entity::find().one(&db).await.unwrap().unwrap();
    assert_eq!(u.create_us, ATTEMPT_END_MS * 1000);
    assert_eq!(u.latency_ms, 1_234, "durations stay ms");

    // The indexes follow their renamed columns.
    for (index, column) in [
        ("idx_grading_jobs_org_create", "create_us"),
        ("idx_grading_jobs_state_next", "next_attempt_at_us"),
        ("idx_evaluations_org_create", "create_us"),
    ] {
        let cols = index_columns(&db, index).await;
        assert!(cols.contains(column), "{index}: {cols}");
    }

    // And back: undoing the move to microseconds (and the migrations after it) restores
    // milliseconds.
    let after = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m0003_grading_instants_us")
        .unwrap();
    Migrator::down(&db, Some(u32::try_from(after + 1).unwrap()))
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT create_ms, next_attempt_at, attempt_log FROM grading_jobs WHERE id = 'due'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "create_ms").unwrap(), CREATED_MS);
    assert_eq!(
        row.try_get::<i64>("", "next_attempt_at").unwrap(),
        now_ms - 60_000
    );
    let log: String = row.try_get("", "attempt_log").unwrap();
    assert!(
        log.contains(&format!("\"start_ms\":{ATTEMPT_START_MS}")),
        "{log}"
    );
    Migrator::up(&db, None).await.unwrap();
}

#[tokio::test]
async fn old_rows_keep_their_instants_sqlite() {
    old_rows_keep_their_instants(Backend::Sqlite).await;
}

#[tokio::test]
async fn old_rows_keep_their_instants_postgres() {
    old_rows_keep_their_instants(Backend::Postgres).await;
}
