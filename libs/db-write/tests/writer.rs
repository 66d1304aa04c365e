//! `on_writer`: a whole SQLite write transaction runs on the writer thread, commits or rolls
//! back by itself, and finishes even when its caller goes away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salestrainer_db_write::{begin_write, on_writer};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let db = Database::connect(url).await.unwrap();
    db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .unwrap();
    (dir, db)
}

async fn count(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM t",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn insert(db: DatabaseConnection, v: String) -> Result<String, DbErr> {
    let conn = db.clone();
    on_writer(&db, async move {
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        let txn = begin_write(&conn).await?;
        txn.execute_unprepared(&format!("INSERT INTO t (v) VALUES ('{v}')"))
            .await?;
        txn.commit().await?;
        Ok(thread)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_the_writer_thread_and_commits() {
    let (_dir, db) = sqlite().await;
    let thread = insert(db.clone(), "a".into()).await.unwrap();
    assert_eq!(thread, "sqlite-writer");
    assert_eq!(count(&db).await, 1);

    // Many writers at once: every one commits, one after the other.
    let tasks: Vec<_> = (0..200)
        .map(|i| tokio::spawn(insert(db.clone(), format!("v{i}"))))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&db).await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_writes_nothing_and_says_why() {
    let (_dir, db) = sqlite().await;
    let conn = db.clone();
    let err = on_writer(&db, async move {
        let txn = begin_write(&conn).await?;
        txn.execute_unprepared("INSERT INTO t (v) VALUES ('x')")
            .await?;
        // Not null: fails, and the transaction is dropped without commit.
        txn.execute_unprepared("INSERT INTO t (v) VALUES (NULL)")
            .await?;
        txn.commit().await?;
        Ok::<_, DbErr>(())
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("NOT NULL"), "{err}");
    assert_eq!(count(&db).await, 0);
    // The gate was released: the next write goes through.
    insert(db.clone(), "after".into()).await.unwrap();
    assert_eq!(count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_finishes_when_its_caller_goes_away() {
    let (_dir, db) = sqlite().await;
    let conn = db.clone();
    let caller = tokio::spawn({
        let db = db.clone();
        async move {
            on_writer(&db, async move {
                let txn = begin_write(&conn).await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                txn.execute_unprepared("INSERT INTO t (v) VALUES ('late')")
                    .await?;
                txn.commit().await?;
                Ok::<_, DbErr>(())
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&db).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_span_goes_along() {
    use tracing::Instrument;
    use tracing_subscriber::util::SubscriberInitExt;
    // A subscriber for every thread (the writer's included), so spans exist.
    let _ = tracing_subscriber::registry().try_init();
    let (_dir, db) = sqlite().await;
    let conn = db.clone();
    let seen = async {
        on_writer(&db, async move {
            let span = tracing::Span::current();
            let name = span.metadata().map(|m| m.name()).unwrap_or_default();
            let txn = begin_write(&conn).await?;
            txn.commit().await?;
            Ok::<_, DbErr>((name, std::thread::current().name().map(str::to_owned)))
        })
        .await
    }
    .instrument(tracing::info_span!("caller_request"))
    .await
    .unwrap();
    assert_eq!(seen.0, "caller_request");
    assert_eq!(seen.1.as_deref(), Some("sqlite-writer"));
}

/// A WAL-mode file with SQLite's own checkpoint far away, as the services connect.
async fn sqlite_wal(dir: &std::path::Path) -> DatabaseConnection {
    let url = format!("sqlite://{}?mode=rwc", dir.join("wal.db").display());
    let mut opts = sea_orm::ConnectOptions::new(url);
    opts.max_connections(4).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .pragma(
                "wal_autocheckpoint",
                salestrainer_db_write::WAL_AUTOCHECKPOINT_PAGES.to_string(),
            )
    });
    let db = Database::connect(opts).await.unwrap();
    db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .unwrap();
    db
}

/// Checkpoints come from the gated commits' count, beside the writer: the main file takes
/// the pages only once `CHECKPOINT_EVERY_COMMITS` commits were made, and then without
/// another write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hundredth_commit_checkpoints_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_wal(dir.path()).await;
    let main_file = dir.path().join("wal.db");
    let size = || std::fs::metadata(&main_file).map(|m| m.len()).unwrap_or(0);
    let row = "x".repeat(3000);
    for _ in 1..salestrainer_db_write::CHECKPOINT_EVERY_COMMITS {
        insert(db.clone(), row.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = size();
    assert!(
        before < 100 * 3000 / 2,
        "the rows reached the main file before the checkpoint: {before} bytes"
    );
    insert(db.clone(), row.clone()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < 100 * 3000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after the 100th commit: main file {} bytes",
            size()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&db).await, 100);
}
