//! WatchSession: the current state first, then every change until a terminal state.
//!
//! Changes come from this process's broadcast (its own writes and the grading events it
//! consumes). Another replica may have consumed an event or ended the session, so a slow
//! re-read of the row backs the broadcast up; the client still never polls.

use std::{sync::Arc, time::Duration};

use salestrainer_runtime::{ApiResult, Principal};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{CallApp, load_visible};
use crate::store::{self, session};

const RECHECK: Duration = Duration::from_secs(5);

/// No further change will come (see `domain::session`).
fn terminal(state: i32) -> bool {
    store::state_of(state).is_some_and(|s| s.is_terminal())
}

/// The session as it is now, then each change of its state, until a terminal state.
pub async fn open(
    core: Arc<CallApp>,
    p: &Principal,
    name: &str,
) -> ApiResult<ReceiverStream<Arc<session::Model>>> {
    // Subscribe before reading so no change between the read and the subscription is lost.
    let mut rx = core.hub.subscribe();
    let current = load_visible(&core, p, name, "name").await?;
    let (tx, out) = mpsc::channel::<Arc<session::Model>>(16);
    tokio::spawn(async move {
        let id = current.id.clone();
        let mut version = current.version;
        let mut state = current.state;
        if tx.send(Arc::new(current)).await.is_err() || terminal(state) {
            return;
        }
        let mut tick = tokio::time::interval(RECHECK);
        tick.tick().await;
        loop {
            let latest: Option<Arc<session::Model>> = tokio::select! {
                () = tx.closed() => return,
                () = core.shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(m) if m.id == id => Some(m),
                    Ok(_) => None,
                    // Missed some: the row has the truth.
                    Err(RecvError::Lagged(_)) => reload(&core, &id).await.map(Arc::new),
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => reload(&core, &id).await.map(Arc::new),
            };
            let Some(m) = latest else { continue };
            if m.version <= version {
                continue;
            }
            version = m.version;
            if m.state == state {
                continue;
            }
            state = m.state;
            if tx.send(m).await.is_err() || terminal(state) {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(out))
}

async fn reload(core: &CallApp, id: &str) -> Option<session::Model> {
    let db = core.db().ok()?;
    store::get(db, id).await.ok().flatten()
}
