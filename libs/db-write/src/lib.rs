//! Write transactions. SQLite has one writer per file: every write in the process — the
//! services' own and the event bus's — queues here in order instead of meeting SQLite's busy
//! handler, which sleeps in steps of up to 100 ms and turns contention into long tails.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// A write transaction. On SQLite it holds the process's write gate for that database file
/// until it commits or is dropped, so no caller can forget the gate; it also took SQLite's
/// write lock up front (`BEGIN IMMEDIATE`). Use it wherever a `ConnectionTrait` is expected.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

/// Begins a transaction that will write. On SQLite it first queues on the process's write
/// gate for that file — SQLite has one writer at a time and its busy handler sleeps in steps of
/// up to 100 ms, which turns contention into long tails, while a FIFO async mutex hands the lock
/// over without sleeping — then takes the write lock up front (`BEGIN IMMEDIATE`): a deferred
/// transaction that reads first and writes later fails with "database is locked" when another
/// writer committed in between. PostgreSQL is not gated and ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let gate = match db.get_database_backend() {
        DbBackend::Sqlite => Some(sqlite_gate(db).lock_owned().await),
        _ => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTxn { txn, _gate: gate })
}

/// Runs `work` — one whole write transaction, [`begin_write`] to commit — on the process's
/// SQLite writer thread when `db` is SQLite, and in place otherwise. Why: the gate is held from
/// `BEGIN` to `COMMIT`, and every statement in between wakes the writing task, which on a busy
/// runtime waits behind every other ready task each time; the hold time, and with it every
/// queued writer's wait, then grows with the load. The writer thread runs write transactions
/// only, so its statements follow one another without queueing. The work runs to its end even
/// if the caller goes away (it is a whole transaction, committed or rolled back by itself).
pub async fn on_writer<T, E, F>(db: &DatabaseConnection, work: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<DbErr> + Send + 'static,
{
    if db.get_database_backend() != DbBackend::Sqlite {
        return work.await;
    }
    let runtime = match writer_runtime() {
        Ok(r) => r,
        Err(e) => return Err(DbErr::Custom(format!("no SQLite writer thread: {e}")).into()),
    };
    // The caller's span goes along, so the statements stay inside the request's trace.
    let work = tracing::Instrument::instrument(work, tracing::Span::current());
    match runtime.spawn(work).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(DbErr::Custom(format!("SQLite writer thread stopped: {e}")).into()),
    }
}

/// One thread, started on first use, for the whole process (every SQLite file shares it: the
/// gates already run one transaction per file at a time).
fn writer_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sqlite-writer")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One gate per SQLite file in the process (every connection to a file shares its writer).
fn sqlite_gate(db: &DatabaseConnection) -> Arc<tokio::sync::Mutex<()>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    gates.entry(file).or_default().clone()
}
