//! WatchSession: the current state first, then every change until a terminal state.
//!
//! Changes come from this process's broadcast (its own writes and the grading events it
//! consumes). Another replica may have consumed an event or ended the session, so a slow
//! re-read of the row backs the broadcast up; the client still never polls.

use std::{sync::Arc, time::Duration};

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiResult, Principal, app::BoxStream};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use crate::{
    core::{Core, load_visible},
    store::{self, session},
};

const RECHECK: Duration = Duration::from_secs(5);

fn terminal(state: i32) -> bool {
    use pb::SessionState as S;
    [S::Graded, S::Failed, S::Cancelled]
        .iter()
        .any(|s| *s as i32 == state)
}

fn message(m: &session::Model) -> pb::WatchSessionResponse {
    let t = m.update_us;
    pb::WatchSessionResponse {
        session: Some(store::to_pb(m)),
        state: m.state,
        change_time: Some(prost_types::Timestamp {
            seconds: t.div_euclid(1_000_000),
            nanos: (t.rem_euclid(1_000_000) * 1000) as i32,
        }),
    }
}

pub async fn open(
    core: Arc<Core>,
    req: Request<pb::WatchSessionRequest>,
) -> ApiResult<BoxStream<pb::WatchSessionResponse>> {
    let p = Principal::of(&req)?.clone();
    // Subscribe before reading so no change between the read and the subscription is lost.
    let mut rx = core.hub.subscribe();
    let current = load_visible(&core, &p, &req.get_ref().name, "name").await?;
    let (tx, out) = mpsc::channel::<Result<pb::WatchSessionResponse, Status>>(16);
    tokio::spawn(async move {
        let id = current.id.clone();
        let mut version = current.version;
        let mut state = current.state;
        if tx.send(Ok(message(&current))).await.is_err() || terminal(state) {
            return;
        }
        let mut tick = tokio::time::interval(RECHECK);
        tick.tick().await;
        loop {
            let latest: Option<session::Model> = tokio::select! {
                () = tx.closed() => return,
                () = core.shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(m) if m.id == id => Some((*m).clone()),
                    Ok(_) => None,
                    // Missed some: the row has the truth.
                    Err(RecvError::Lagged(_)) => reload(&core, &id).await,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => reload(&core, &id).await,
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
            if tx.send(Ok(message(&m))).await.is_err() || terminal(state) {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(out)))
}

async fn reload(core: &Core, id: &str) -> Option<session::Model> {
    let db = core.db().ok()?;
    store::get(db, id).await.ok().flatten()
}
