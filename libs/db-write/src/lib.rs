//! Write transactions. SQLite has one writer per file: every write in the process — the
//! services' own and the event bus's — queues here in order instead of meeting SQLite's busy
//! handler, which sleeps in steps of up to 100 ms and turns contention into long tails.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
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
    /// SQLite: the file written, to count the commit towards its next checkpoint.
    sqlite: Option<(Arc<SqliteFile>, DatabaseConnection)>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTxn { txn, _gate, sqlite } = self;
        txn.commit().await?;
        drop(_gate);
        if let Some((file, db)) = sqlite {
            file.committed(db);
        }
        Ok(())
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
    let (gate, sqlite) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let file = sqlite_file(db);
            let gate = file.gate.clone().lock_owned().await;
            (Some(gate), Some((file, db.clone())))
        }
        _ => (None, None),
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTxn {
        txn,
        _gate: gate,
        sqlite,
    })
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

/// Gated write transactions between two checkpoints of a file (a text turn writes a handful
/// of pages: a few hundred pages of WAL, well under SQLite's own 1,000-page trigger).
pub const CHECKPOINT_EVERY_COMMITS: u64 = 100;

/// The pages of WAL at which a commit itself checkpoints (SQLite's `wal_autocheckpoint`, set
/// on every connection by the caller). A backstop: under writes that never pause, the
/// passive checkpoints copy the log but SQLite starts it over only when one has copied all of
/// it with no reader behind, so the log grows to this size (about 40 MB) before a commit's own
/// checkpoint starts it over; it also covers writes made outside the gate.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// One SQLite file of the process: its write gate (every connection to a file shares its
/// writer) and its checkpoints. SQLite's own checkpoint runs inside the commit that passes
/// its threshold, with the gate held: every write queued behind it waits for the copy and two
/// fsyncs (tens of ms here, several times a second under load). So the commits are counted
/// here, and every [`CHECKPOINT_EVERY_COMMITS`] a passive checkpoint runs on another
/// connection, beside the writer, outside the gate.
struct SqliteFile {
    gate: Arc<tokio::sync::Mutex<()>>,
    commits: AtomicU64,
    checkpointing: AtomicBool,
}

impl SqliteFile {
    fn committed(self: Arc<Self>, db: DatabaseConnection) {
        if self.commits.fetch_add(1, Ordering::Relaxed) + 1 < CHECKPOINT_EVERY_COMMITS
            || self.checkpointing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.commits.store(0, Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.checkpointing.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = self.checkpoint(&db).await {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the next commits retry");
            }
            self.checkpointing.store(false, Ordering::Release);
        });
    }

    async fn checkpoint(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        // PASSIVE copies what it can without waiting for, or blocking, readers and writers.
        db.query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?;
        Ok(())
    }
}

fn sqlite_file(db: &DatabaseConnection) -> Arc<SqliteFile> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Arc<SqliteFile>>>> = OnceLock::new();
    let path = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut files = FILES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    files
        .entry(path)
        .or_insert_with(|| {
            Arc::new(SqliteFile {
                gate: Arc::default(),
                commits: AtomicU64::new(0),
                checkpointing: AtomicBool::new(false),
            })
        })
        .clone()
}
