//! WatchSession: the current state first, then every change until a terminal state (and,
//! when asked, every comment added or deleted, with the stream kept open past the terminal
//! state).
//!
//! The stream is woken by the service's change notifier (`CallApp::changes`: this process's
//! writes at once, other replicas' through Redis pub/sub) and reads the database only then:
//! an idle stream issues no query and holds no timer.

use std::{collections::BTreeSet, future::Future, sync::Arc};

use salestrainer_runtime::{ApiResult, Principal, backoff::Backoff, names, time::now_us};
use sea_orm::DbErr;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{CallApp, load_visible, member_name};
use crate::store::{self, comment, session};

/// Comments read per query when catching up after a wake.
const COMMENT_BATCH: u64 = 100;

/// One message of the stream.
pub enum Push {
    /// The session's state changed (or, first, the session as it is).
    State(Arc<session::Model>),
    /// A comment was added; the session as it is.
    Comment(Arc<session::Model>, comment::Model),
    /// The comment `id` was deleted (noticed at `at`, microseconds); the session as it is.
    CommentDeleted {
        session: Arc<session::Model>,
        id: String,
        at: i64,
    },
}

/// The comments a stream has announced (or found when it opened), so it can tell additions
/// (after `last`) and deletions (ids gone from `ids`).
#[derive(Default)]
struct Seen {
    last: Option<(i64, String)>,
    ids: BTreeSet<String>,
}

/// No further change will come (see `domain::session`).
fn terminal(state: i32) -> bool {
    store::state_of(state).is_some_and(|s| s.is_terminal())
}

/// The notifier key of a session (its id; the notifier is call's own).
pub fn key(session_id: &str) -> &str {
    session_id
}

/// The session as it is now, then each change of its state until a terminal state; with
/// `comments`, also each comment added, until the client leaves.
pub async fn open(
    core: Arc<CallApp>,
    p: &Principal,
    name: &str,
    comments: bool,
) -> ApiResult<ReceiverStream<Push>> {
    // Watch before reading so a change committed between the read and the watch is not lost.
    let id = names::parse_child(name, "sessions").map_or("", |(_, id)| id);
    let mut woken = core.changes.watch(key(id));
    let current = load_visible(&core, p, name, "name").await?;
    // Comments already there are the client's to list; the stream pushes newer ones and the
    // deletion of any of them.
    let mut seen = Seen::default();
    if comments {
        let keys = store::comment_keys(core.db()?, &current.id).await?;
        seen.ids = keys.iter().map(|(_, id)| id.clone()).collect();
        seen.last = keys.into_iter().next_back();
    }
    // Each open stream holds a task and a watch: capped per caller, released when the
    // stream ends (terminal state, client gone, shutdown).
    let permit = core.watchers.acquire(&caller_key(p))?;
    let (tx, out) = mpsc::channel::<Push>(16);
    tokio::spawn(async move {
        let _permit = permit;
        let id = current.id.clone();
        let mut version = current.version;
        let mut state = current.state;
        let done = |state| terminal(state) && !comments;
        if tx.send(Push::State(Arc::new(current))).await.is_err() || done(state) {
            return;
        }
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = core.shutdown.cancelled() => return,
                () = woken.changed() => {}
            }
            let Some(Some(m)) = read(&core, &tx, |db| {
                let id = id.clone();
                async move { store::get(&db, &id).await }
            })
            .await
            else {
                return;
            };
            let m = Arc::new(m);
            if m.version > version {
                version = m.version;
                if m.state != state {
                    state = m.state;
                    if tx.send(Push::State(m.clone())).await.is_err() || done(state) {
                        return;
                    }
                }
            }
            if comments && !push_comments(&core, &tx, &id, &mut seen, &m).await {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(out))
}

/// Pushes the session's comments newer than `seen`, oldest first, then the deletion of each
/// seen comment that is gone. `false` once the client left.
async fn push_comments(
    core: &CallApp,
    tx: &mpsc::Sender<Push>,
    id: &str,
    seen: &mut Seen,
    m: &Arc<session::Model>,
) -> bool {
    loop {
        let after = seen.last.clone();
        let Some(batch) = read(core, tx, |db| {
            let (id, after) = (id.to_owned(), after.clone());
            async move { store::comments_after(&db, &id, after, COMMENT_BATCH).await }
        })
        .await
        else {
            return false;
        };
        let full = batch.len() as u64 == COMMENT_BATCH;
        for c in batch {
            seen.last = Some((c.create_us, c.id.clone()));
            seen.ids.insert(c.id.clone());
            if tx.send(Push::Comment(m.clone(), c)).await.is_err() {
                return false;
            }
        }
        if !full {
            break;
        }
    }
    // A session holds at most max_comments_per_session comments: its ids are a small read.
    let Some(keys) = read(core, tx, |db| {
        let id = id.to_owned();
        async move { store::comment_keys(&db, &id).await }
    })
    .await
    else {
        return false;
    };
    let left: BTreeSet<String> = keys.into_iter().map(|(_, id)| id).collect();
    let gone: Vec<String> = seen.ids.difference(&left).cloned().collect();
    for id in gone {
        seen.ids.remove(&id);
        let push = Push::CommentDeleted {
            session: m.clone(),
            id,
            at: now_us(),
        };
        if tx.send(push).await.is_err() {
            return false;
        }
    }
    true
}

/// Who holds a stream: a member of an organization, or a service identity.
fn caller_key(p: &Principal) -> String {
    if p.is_service() {
        format!("service:{}", p.subject)
    } else {
        member_name(p)
    }
}

/// A read after a wake. A failed read is retried (with backoff) rather than skipped: the wake
/// will not come again. `None` when the client left or the service stops.
async fn read<T, R, F, Fut>(core: &CallApp, tx: &mpsc::Sender<T>, query: F) -> Option<R>
where
    F: Fn(sea_orm::DatabaseConnection) -> Fut,
    Fut: Future<Output = Result<R, DbErr>>,
{
    let mut backoff = Backoff::reconnect();
    loop {
        let result = match core.db() {
            Ok(db) => query(db.clone()).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(r) => return Some(r),
            Err(e) => tracing::warn!(error = %e, "watch: reading the session failed"),
        }
        tokio::select! {
            () = tx.closed() => return None,
            more = backoff.wait(&core.shutdown) => if !more { return None },
        }
    }
}
