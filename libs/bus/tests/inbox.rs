//! Inbox idempotency on real SQLite and PostgreSQL databases.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestDb, bounded};
use salestrainer_bus::inbox::{self, mark_handled};
use sea_orm::TransactionTrait;

async fn inbox_scenario(tdb: TestDb) {
    let db = &tdb.db;

    // First time true, then false; another consumer has its own record.
    assert!(mark_handled(db, "analytics", "ev-1").await.unwrap());
    assert!(!mark_handled(db, "analytics", "ev-1").await.unwrap());
    assert!(mark_handled(db, "grading", "ev-1").await.unwrap());

    // A rolled-back transaction takes its mark with it: the redelivery is handled afresh.
    let txn = db.begin().await.unwrap();
    assert!(mark_handled(&txn, "analytics", "ev-2").await.unwrap());
    txn.rollback().await.unwrap();
    let txn = db.begin().await.unwrap();
    assert!(mark_handled(&txn, "analytics", "ev-2").await.unwrap());
    txn.commit().await.unwrap();
    assert!(!mark_handled(db, "analytics", "ev-2").await.unwrap());

    // Concurrent duplicates, each in its own transaction: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            let first = mark_handled(&txn, "analytics", "ev-race").await.unwrap();
            // Hold the transaction open a moment so the others really overlap.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            txn.commit().await.unwrap();
            first
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent mark_handled returns true");

    // Purging old records.
    assert_eq!(
        inbox::purge_handled_before(db, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        inbox::purge_handled_before(db, chrono::Utc::now())
            .await
            .unwrap(),
        4
    );

    tdb.cleanup().await;
}

#[tokio::test]
async fn inbox_sqlite() {
    bounded(async { inbox_scenario(TestDb::sqlite().await).await }).await;
}

#[tokio::test]
async fn inbox_postgres() {
    bounded(async { inbox_scenario(TestDb::postgres().await).await }).await;
}
