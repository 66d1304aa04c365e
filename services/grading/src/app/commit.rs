//! The group commit of the workers' lease-fenced writes.

use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;

use crate::store;

/// A queued write and where its result goes.
type QueuedWrite = (store::WriteOp, oneshot::Sender<Result<bool, String>>);

/// Group commit of the workers' lease-fenced writes: a writer queues its op, then whoever takes
/// the lock next commits everything queued so far in one transaction. On SQLite (one writer at
/// a time) this turns one commit per job into one per batch; on PostgreSQL it saves round trips.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: std::sync::Mutex<Vec<QueuedWrite>>,
    turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    pub(super) async fn write(
        &self,
        db: &DatabaseConnection,
        op: store::WriteOp,
    ) -> Result<bool, String> {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, tx));
        let turn = self.turn.lock().await;
        // A writer before us may have committed our op with its batch.
        if let Ok(done) = rx.try_recv() {
            return done;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let (ops, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        metrics::histogram!("grading_write_batch_size").record(ops.len() as f64);
        let results = store::write_batch(db, &ops).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result.map_err(|e| e.to_string()));
        }
        drop(turn);
        rx.await
            .unwrap_or_else(|_| Err("the batch holding this write was abandoned".into()))
    }
}
