//! Issue 10: a database written by the timestamp-column schema (migrations 1 to 3) keeps its
//! instants, to the microsecond, through `m0003_time_micros`; SQLite and PostgreSQL.
//!
//! The old rows are written with raw SQL binding `chrono::DateTime<Utc>` values, exactly as
//! sea-orm wrote them before (PostgreSQL `timestamptz`; SQLite RFC 3339 text with 0, 3 or 6
//! fraction digits), then read back through the new entities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use salestrainer_config::store::{
    self, Migrator, credentials,
    entities::{
        member, organization, prompt_template, prompt_template_revision, provider_credential,
        resource,
    },
};
use salestrainer_runtime::Settings;
use salestrainer_tests::{Backend, drop_postgres_databases};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, Value};
use sea_orm_migration::MigratorTrait;

/// Migrations before `m0003_time_micros`: m0001, m0002 and the outbox.
const OLD_MIGRATIONS: u32 = 3;

fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, micros * 1_000).unwrap()
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// `INSERT INTO table (cols) VALUES (params)` with the backend's placeholders.
async fn insert(db: &DatabaseConnection, table: &str, row: Vec<(&str, Value)>) {
    let backend = db.get_database_backend();
    let cols: Vec<String> = row.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let params: Vec<String> = (1..=row.len())
        .map(|i| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => "?".to_owned(),
        })
        .collect();
    let sql = format!(
        "INSERT INTO \"{table}\" ({}) VALUES ({})",
        cols.join(", "),
        params.join(", ")
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        row.into_iter().map(|(_, v)| v),
    ))
    .await
    .unwrap_or_else(|e| panic!("insert into {table}: {e}"));
}

fn s(v: &str) -> Value {
    v.into()
}

#[tokio::test]
async fn timestamp_columns_become_microseconds_with_the_same_instants() {
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            database_url: backend.database_url(),
            ..Settings::default()
        };
        let url = settings.database_url_for("config");
        let db = salestrainer_runtime::db::connect(&url).await.unwrap();
        migrated_keeps_instants(&db, backend).await;
        db.close().await.unwrap();
        drop_postgres_databases(&settings.database_url, &["config"]).await;
    }
}

async fn migrated_keeps_instants(db: &DatabaseConnection, backend: Backend) {
    Migrator::up(db, Some(OLD_MIGRATIONS)).await.unwrap();

    // Six fraction digits, three (SQLite writes "...09.120+00:00"), none, and the turn of a
    // second and of the century.
    let t_org_create = at(1_714_979_289, 123_456);
    let t_org_update = at(1_714_979_289, 120_000);
    let t_member = at(1_714_979_300, 0);
    let t_resource_create = at(946_684_799, 999_999);
    let t_resource_update = at(946_684_800, 1);
    let t_template = at(1_700_000_000, 654_321);
    let t_revision = at(1_700_000_001, 500_000);
    let t_cred_a = at(1_600_000_000, 42);
    let t_cred_b = at(1_500_000_000, 999_000);
    let t_tested = at(1_750_000_000, 7);

    let ts = |t: DateTime<Utc>| -> Value { t.into() };
    insert(
        db,
        "organizations",
        vec![
            ("id", s("acme")),
            ("display_name", s("Acme")),
            ("settings", serde_json::json!({}).into()),
            ("etag", s("e-org")),
            ("create_time", ts(t_org_create)),
            ("update_time", ts(t_org_update)),
        ],
    )
    .await;
    insert(
        db,
        "members",
        vec![
            ("id", s("ann")),
            ("organization_id", s("acme")),
            ("subject", s("user-ann")),
            ("display_name", s("Ann")),
            ("email", s("ann@example.com")),
            ("role", s("admin")),
            ("etag", s("e-member")),
            ("create_time", ts(t_member)),
            ("update_time", ts(t_member)),
        ],
    )
    .await;
    insert(
        db,
        "resources",
        vec![
            ("organization_id", s("acme")),
            ("collection", s("personas")),
            ("id", s("pat")),
            ("display_name", s("Pat")),
            ("spec", Vec::<u8>::new().into()),
            ("open_to_all", false.into()),
            ("etag", s("e-persona")),
            ("create_time", ts(t_resource_create)),
            ("update_time", ts(t_resource_update)),
        ],
    )
    .await;
    insert(
        db,
        "prompt_templates",
        vec![
            ("organization_id", s("acme")),
            ("id", s("greeting")),
            ("purpose", s("persona")),
            ("display_name", s("Greeting")),
            ("builtin", false.into()),
            ("revision", 1i64.into()),
            ("etag", s("e-template")),
            ("create_time", ts(t_template)),
            ("update_time", ts(t_template)),
        ],
    )
    .await;
    insert(
        db,
        "prompt_template_revisions",
        vec![
            ("organization_id", s("acme")),
            ("template_id", s("greeting")),
            ("revision", 1i64.into()),
            ("display_name", s("Greeting")),
            ("body", s("Hello")),
            ("etag", s("e-template")),
            ("create_time", ts(t_revision)),
        ],
    )
    .await;
    // Two credentials of one kind: the earlier-created ("b") is the kind's first, by time
    // although not by id.
    for (id, created, tested) in [("a", t_cred_a, Some(t_tested)), ("b", t_cred_b, None)] {
        insert(
            db,
            "provider_credentials",
            vec![
                ("organization_id", s("acme")),
                ("id", s(id)),
                ("kind", s("openai_compatible")),
                ("display_name", s(id)),
                ("base_url", s("https://llm.example")),
                ("model", s("m")),
                ("api_key_ciphertext", Vec::<u8>::new().into()),
                ("key_id", s("k1")),
                ("masked_api_key", s("")),
                ("requests_per_minute", 60i32.into()),
                ("tokens_per_minute", 1000i64.into()),
                ("last_test_outcome", tested.map(|_| "ok").into()),
                ("last_test_time", tested.into()),
                ("etag", s(&format!("e-{id}"))),
                ("create_time", ts(created)),
                ("update_time", ts(created)),
            ],
        )
        .await;
    }
    if backend == Backend::Sqlite {
        // What sea-orm wrote, for the record: RFC 3339 text, fraction digits as needed.
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT create_time, update_time FROM organizations",
            ))
            .await
            .unwrap()
            .unwrap();
        let create: String = row.try_get("", "create_time").unwrap();
        let update: String = row.try_get("", "update_time").unwrap();
        assert_eq!(create, "2024-05-06T07:08:09.123456+00:00");
        assert_eq!(update, "2024-05-06T07:08:09.120+00:00");
    }

    Migrator::up(db, None).await.unwrap();
    check(
        db,
        backend,
        &[
            t_org_create,
            t_org_update,
            t_member,
            t_resource_create,
            t_resource_update,
            t_template,
            t_revision,
            t_cred_a,
            t_cred_b,
            t_tested,
        ],
    )
    .await;

    // Down and up again: the same instants once more.
    // (m0004, which adds a column, sits on top of m0003 and goes down first.)
    Migrator::down(db, Some(2)).await.unwrap();
    Migrator::up(db, None).await.unwrap();
    check(
        db,
        backend,
        &[
            t_org_create,
            t_org_update,
            t_member,
            t_resource_create,
            t_resource_update,
            t_template,
            t_revision,
            t_cred_a,
            t_cred_b,
            t_tested,
        ],
    )
    .await;

    // The old NOT NULL columns are gone: a row written through the new entities goes in.
    assert!(
        store::ensure_organization(db, "beta", "Beta", "user-bob")
            .await
            .unwrap()
    );
    let beta = organization::Entity::find_by_id("beta".to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(beta.create_us > us(t_tested), "{backend:?}");
}

async fn check(db: &DatabaseConnection, backend: Backend, t: &[DateTime<Utc>; 10]) {
    let [
        org_create,
        org_update,
        member_t,
        resource_create,
        resource_update,
        template_t,
        revision_t,
        cred_a,
        cred_b,
        tested,
    ] = *t;
    let org = organization::Entity::find_by_id("acme".to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (org.create_us, org.update_us),
        (us(org_create), us(org_update)),
        "{backend:?}"
    );
    let m = member::Entity::find_by_id("ann".to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.create_us, m.update_us), (us(member_t), us(member_t)));
    let r = resource::Entity::find_by_id(("acme".into(), "personas".into(), "pat".into()))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.create_us, r.update_us),
        (us(resource_create), us(resource_update)),
        "{backend:?}"
    );
    let tpl = prompt_template::Entity::find_by_id(("acme".into(), "greeting".into()))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (tpl.create_us, tpl.update_us),
        (us(template_t), us(template_t))
    );
    let rev = prompt_template_revision::Entity::find_by_id(("acme".into(), "greeting".into(), 1))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rev.create_us, us(revision_t), "{backend:?}");
    let a = provider_credential::Entity::find_by_id(("acme".into(), "a".into()))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.create_us, a.update_us, a.last_test_us),
        (us(cred_a), us(cred_a), Some(us(tested))),
        "{backend:?}"
    );
    let b = provider_credential::Entity::find_by_id(("acme".into(), "b".into()))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.create_us, b.last_test_us),
        (us(cred_b), None),
        "{backend:?}"
    );
    let first = credentials::first_of_kind(db, "acme", "openai_compatible")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, "b", "{backend:?}");
}
