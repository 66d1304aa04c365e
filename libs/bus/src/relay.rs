//! The relay publishes committed outbox rows through a transport.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use salestrainer_db_write::{begin_write, on_writer};

use crate::outbox::entity::{self, Column};
use crate::{Envelope, Error, Result, Transport};

/// Tuning of the [`Relay`].
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// Rows read and published per round.
    pub batch_size: u64,
    /// Sweep even without a notification, so rows committed before a crash (or by a process
    /// that forgot to notify) are sent.
    pub sweep_interval: Duration,
    /// Sent rows are kept this long (for inspection) and then deleted, keeping the table small.
    pub retention: Duration,
    /// How often the retention delete runs.
    pub cleanup_interval: Duration,
    /// First pause after a failed publish; it doubles per consecutive failure up to
    /// `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// On shutdown, how long the relay may spend publishing what is still unsent.
    pub shutdown_flush: Duration,
    /// With a transport that keeps nothing across restarts (in-process), rows sent this long
    /// before the start are sent again at the start: the process may have stopped before
    /// their consumers took them. Zero turns it off; durable transports never replay.
    pub replay_on_start: Duration,
    /// With a durable transport, the marker (e.g. the service name) by which the relay checks,
    /// every `sweep_interval`, that the transport still holds what was published
    /// ([`Transport::intact`]). When it lost its data (a Redis restarted without persistence),
    /// rows sent within `replay_after_loss` are sent again: consumers that had not taken them
    /// yet would never see them otherwise. The same check finds a lost tail (a failover to a
    /// replica that lagged keeps the marker and the older events): after each batch the relay
    /// sets a watermark of its own ([`Transport::set_watermark`]); an older one found later
    /// means what was sent after it is gone, and that goes out again (within
    /// `replay_after_loss`). A batch whose mark could not be set goes again, with what was
    /// sent since the last mark, at the transport's next answer. `None`: no check.
    pub loss_marker: Option<String>,
    pub replay_after_loss: Duration,
}

/// The default of [`RelayOptions::replay_after_loss`], in seconds: as long as sent rows are
/// kept, since a consumer may have been down that long. Each service's settings may change it
/// (`relay_replay_after_loss_secs`).
pub const REPLAY_AFTER_LOSS_SECS: u64 = 24 * 3600;

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            sweep_interval: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(60),
            min_backoff: Duration::from_millis(100),
            // A transport back after an outage is used again within seconds.
            max_backoff: Duration::from_secs(5),
            shutdown_flush: Duration::from_secs(2),
            // As long as sent rows are kept.
            replay_on_start: Duration::from_secs(24 * 3600),
            loss_marker: None,
            replay_after_loss: Duration::from_secs(REPLAY_AFTER_LOSS_SECS),
        }
    }
}

/// Wakes the relay: call [`RelayNotifier::notify`] after committing a transaction that
/// enqueued events. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RelayNotifier(Arc<Notify>);

impl RelayNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Never blocks; several notifications before the relay runs collapse into one round.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Publishes outbox rows in id order and marks them sent.
pub struct Relay {
    db: DatabaseConnection,
    transport: Arc<dyn Transport>,
    opts: RelayOptions,
    notifier: RelayNotifier,
}

impl Relay {
    pub fn new(db: DatabaseConnection, transport: Arc<dyn Transport>, opts: RelayOptions) -> Self {
        Self {
            db,
            transport,
            opts,
            notifier: RelayNotifier::new(),
        }
    }

    /// Uses a notifier created earlier (e.g. stored in the service state before the relay).
    pub fn with_notifier(mut self, notifier: RelayNotifier) -> Self {
        self.notifier = notifier;
        self
    }

    pub fn notifier(&self) -> RelayNotifier {
        self.notifier.clone()
    }

    /// Shorthand for `new` + `notifier` + `spawn`.
    pub fn start(
        db: DatabaseConnection,
        transport: Arc<dyn Transport>,
        opts: RelayOptions,
        shutdown: CancellationToken,
    ) -> (RelayNotifier, JoinHandle<()>) {
        let relay = Self::new(db, transport, opts);
        let notifier = relay.notifier();
        (notifier, relay.spawn(shutdown))
    }

    /// Runs the relay until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, shutdown: CancellationToken) {
        if !self.transport.durable() && !self.opts.replay_on_start.is_zero() {
            match self.resend_within(self.opts.replay_on_start).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    events = n,
                    "bus relay: sending recent events again (the in-process bus kept nothing across the restart)"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "bus relay: cannot mark recent events for resending")
                }
            }
        }
        // Only a durable transport can lose a tail and keep the rest.
        let mut tail = (self.transport.durable())
            .then_some(self.opts.loss_marker.as_deref())
            .flatten()
            .map(TailCheck::new);
        let mut backoff = self.opts.min_backoff;
        // Clean up soon after start, then every cleanup_interval.
        let mut next_cleanup = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut next_loss_check = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if let Some(marker) = &self.opts.loss_marker
                && tokio::time::Instant::now() >= next_loss_check
            {
                next_loss_check = tokio::time::Instant::now() + self.opts.sweep_interval;
                // An unreachable transport says nothing: publishing fails and is retried.
                match self.transport.intact(marker).await {
                    Ok(false) => {
                        self.replay_after_loss().await;
                        // Everything within the window goes again: the mark goes on from
                        // whatever the transport holds (none, after a real loss).
                        if let Some(t) = &mut tail {
                            t.mark = self.transport.watermark(&t.key).await.unwrap_or(None);
                            t.unmarked = Unmarked::No;
                        }
                    }
                    Ok(true) => {
                        if let Some(t) = &mut tail {
                            self.check_tail(t).await;
                        }
                    }
                    Err(_) => {}
                }
            }
            let sent = relay_once(&self.db, self.transport.as_ref(), self.opts.batch_size).await;
            if let (Ok(n), Some(t)) = (&sent, &mut tail)
                && *n > 0
            {
                self.set_mark(t).await;
            }
            match sent {
                // A full batch: there may be more, go again at once.
                Ok(n) if n as u64 >= self.opts.batch_size => {
                    backoff = self.opts.min_backoff;
                    continue;
                }
                Ok(_) => backoff = self.opts.min_backoff,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "bus relay: publish failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.opts.max_backoff);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            }
            if tokio::time::Instant::now() >= next_cleanup {
                match self.purge().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deleted = n, "bus relay: purged sent outbox rows"),
                    Err(e) => tracing::warn!(error = %e, "bus relay: purge failed"),
                }
                next_cleanup = tokio::time::Instant::now() + self.opts.cleanup_interval;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.notifier.0.notified() => {}
                _ = tokio::time::sleep(self.opts.sweep_interval) => {}
            }
        }
        // Best effort: publish what was committed just before shutdown; whatever is left goes
        // out after the next start.
        let flush = async {
            while let Ok(n) =
                relay_once(&self.db, self.transport.as_ref(), self.opts.batch_size).await
            {
                if (n as u64) < self.opts.batch_size {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.opts.shutdown_flush, flush).await;
    }
}

impl Relay {
    /// [`crate::outbox::resend_sent_within`] as a write queued with the service's own.
    async fn resend_within(&self, window: Duration) -> std::result::Result<u64, sea_orm::DbErr> {
        self.resend_since(crate::outbox::window_start(window)).await
    }

    /// [`crate::outbox::resend_sent_since`] as a write queued with the service's own.
    async fn resend_since(
        &self,
        since: chrono::DateTime<Utc>,
    ) -> std::result::Result<u64, sea_orm::DbErr> {
        let txn = begin_write(&self.db).await?;
        let n = crate::outbox::resend_sent_since(&txn, since).await?;
        txn.commit().await?;
        Ok(n)
    }

    /// [`crate::outbox::purge_sent`] as a write queued with the service's own.
    async fn purge(&self) -> std::result::Result<u64, sea_orm::DbErr> {
        let txn = begin_write(&self.db).await?;
        let n = crate::outbox::purge_sent(&txn, self.opts.retention).await?;
        txn.commit().await?;
        Ok(n)
    }

    /// Moves this relay's watermark after a batch: the rows sent so far are marked sent before
    /// `now`, so a later loss is repaired by sending again what was sent after the mark. A
    /// transport that holds another mark than the last one set lost the tail.
    async fn set_mark(&self, t: &mut TailCheck) {
        let now = Utc::now().timestamp_micros();
        let ttl = self.opts.replay_after_loss.max(Duration::from_secs(60));
        match self
            .transport
            .advance_watermark(&t.key, t.mark, now, ttl)
            .await
        {
            Ok(Ok(())) => {
                t.mark = Some(now);
                t.unmarked = Unmarked::No;
            }
            Ok(Err(held)) => self.resend_tail(t, held, held).await,
            // The transport took the batch and then failed (it may be going down): whether it
            // keeps the batch is unknown, so what was sent since the last mark goes again once
            // it answers (`check_tail`). Once per failure streak: a transport that keeps
            // refusing the mark but takes events would otherwise get everything again and again.
            Err(e) => {
                tracing::warn!(error = %e, "bus relay: cannot set its watermark");
                if t.unmarked == Unmarked::No {
                    t.unmarked = Unmarked::Pending;
                }
            }
        }
    }

    /// Whether the transport lost the tail of what this relay sent while it sent nothing new:
    /// the mark it holds is not the last one set. After a batch whose mark could not be set,
    /// the first answer sends again what was sent since the last mark set.
    async fn check_tail(&self, t: &mut TailCheck) {
        let pending = t.unmarked == Unmarked::Pending;
        if t.mark.is_none() && !pending {
            return;
        }
        let Ok(held) = self.transport.watermark(&t.key).await else {
            return;
        };
        if pending {
            t.unmarked = Unmarked::Resent;
            // From the older of the two marks: none held means the whole window.
            let since = held.zip(t.mark).map(|(h, m)| Ord::min(h, m));
            self.resend_tail(t, since, held).await;
        } else if t.mark.is_some() && held != t.mark {
            self.resend_tail(t, held, held).await;
        }
    }

    /// What was sent after mark `since` (none: the whole window; within `replay_after_loss`
    /// either way) goes out again, and the mark goes on from `held`, the one the transport
    /// holds.
    async fn resend_tail(&self, t: &mut TailCheck, since: Option<i64>, held: Option<i64>) {
        if self.opts.replay_after_loss.is_zero() {
            t.mark = held;
            return;
        }
        let oldest = crate::outbox::window_start(self.opts.replay_after_loss);
        let since = since
            .and_then(chrono::DateTime::<Utc>::from_timestamp_micros)
            .map_or(oldest, |h| Ord::max(h, oldest));
        match self.resend_since(since).await {
            Ok(n) => {
                t.mark = held;
                if n > 0 {
                    tracing::warn!(
                        events = n,
                        "bus relay: the transport lost the events sent after its watermark; sending them again"
                    );
                    metrics::counter!("bus_relay_replayed_events_total").increment(n);
                }
            }
            // The mark stays: the next check finds the loss again.
            Err(e) => tracing::warn!(error = %e, "bus relay: cannot mark events for resending"),
        }
    }

    /// The transport lost what it held: rows sent within `replay_after_loss` go out again
    /// (consumers' inboxes make a second copy harmless).
    async fn replay_after_loss(&self) {
        match self.resend_within(self.opts.replay_after_loss).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    events = n,
                    "bus relay: the transport lost its data; sending recent events again"
                );
                metrics::counter!("bus_relay_replayed_events_total").increment(n);
            }
            Err(e) => tracing::warn!(error = %e, "bus relay: cannot mark events for resending"),
        }
    }
}

/// This relay's watermark: its key (unique to the relay, under the loss marker) and the mark
/// the transport should hold.
struct TailCheck {
    key: String,
    mark: Option<i64>,
    /// Batches that went out without their mark, since the last mark set.
    unmarked: Unmarked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unmarked {
    /// Every batch since the last check has its mark.
    No,
    /// A batch's mark could not be set: what was sent since the last mark goes again at the
    /// transport's next answer.
    Pending,
    /// That was sent again already in this failure streak; it goes again only after a mark is
    /// set and another one fails.
    Resent,
}

impl TailCheck {
    fn new(marker: &str) -> Self {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            key: format!(
                "{marker}:{}-{}-{n}",
                std::process::id(),
                Utc::now().timestamp_micros()
            ),
            mark: None,
            unmarked: Unmarked::No,
        }
    }
}

/// Publishes up to `batch_size` unsent outbox rows in id order and marks them sent. Returns how
/// many were published. On a publish failure it stops at that row (keeping the order), records
/// `attempts`/`last_error` on it, keeps the rows published before it marked sent, and returns
/// the error.
///
/// On PostgreSQL the batch is read with `FOR UPDATE SKIP LOCKED` inside a transaction, so
/// several replicas of a service never publish the same row at the same time. On SQLite (one
/// process) the batch is read outside any transaction and the outcome is written in one short
/// write transaction, queued with the service's own writers: a lock held while publishing
/// would block them, and an ungated write would meet them in SQLite's busy handler.
pub async fn relay_once(
    db: &DatabaseConnection,
    transport: &dyn Transport,
    batch_size: u64,
) -> Result<usize> {
    let outcome = match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            let rows = unsent(&txn, batch_size, true).await?;
            let outcome = publish_rows(rows, transport).await;
            outcome.record(&txn).await?;
            txn.commit().await?;
            outcome
        }
        _ => {
            let rows = unsent(db, batch_size, false).await?;
            let outcome = publish_rows(rows, transport).await;
            if outcome.is_empty() {
                outcome
            } else {
                let conn = db.clone();
                on_writer(db, async move {
                    let txn = begin_write(&conn).await?;
                    outcome.record(&txn).await?;
                    txn.commit().await?;
                    Ok::<_, Error>(outcome)
                })
                .await?
            }
        }
    };
    outcome.into_result()
}

struct Outcome {
    sent_ids: Vec<i64>,
    /// The row whose publish failed, and why.
    failure: Option<(i64, Error)>,
}

impl Outcome {
    fn is_empty(&self) -> bool {
        self.sent_ids.is_empty() && self.failure.is_none()
    }

    /// Marks the published rows sent and counts the failed attempt.
    async fn record<C: ConnectionTrait>(&self, conn: &C) -> Result<()> {
        if let Some((id, e)) = &self.failure {
            entity::Entity::update_many()
                .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
                .col_expr(
                    Column::LastError,
                    Expr::value(truncate(&e.to_string(), 1000)),
                )
                .filter(Column::Id.eq(*id))
                .exec(conn)
                .await?;
        }
        if !self.sent_ids.is_empty() {
            // If we crash before this commits the rows are published again: at least once.
            entity::Entity::update_many()
                .col_expr(Column::SentAt, Expr::value(Utc::now()))
                .filter(Column::Id.is_in(self.sent_ids.clone()))
                .exec(conn)
                .await?;
        }
        Ok(())
    }

    fn into_result(self) -> Result<usize> {
        match self.failure {
            Some((_, e)) => Err(e),
            None => Ok(self.sent_ids.len()),
        }
    }
}

async fn unsent<C: ConnectionTrait>(
    conn: &C,
    batch_size: u64,
    lock: bool,
) -> Result<Vec<entity::Model>> {
    let mut query = entity::Entity::find()
        .filter(Column::SentAt.is_null())
        .order_by_asc(Column::Id)
        .limit(batch_size);
    if lock {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(query.all(conn).await?)
}

/// Publishes `rows` in order, stopping at the first failure.
async fn publish_rows(rows: Vec<entity::Model>, transport: &dyn Transport) -> Outcome {
    let mut outcome = Outcome {
        sent_ids: Vec::with_capacity(rows.len()),
        failure: None,
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let envs: Vec<Envelope> = rows.into_iter().map(to_envelope).collect();
    let (published, error) = transport.publish_many(&envs).await;
    outcome.sent_ids = ids[..published.min(ids.len())].to_vec();
    if let (Some(e), Some(id)) = (error, ids.get(published)) {
        outcome.failure = Some((*id, e));
    }
    outcome
}

fn to_envelope(row: entity::Model) -> Envelope {
    let headers = Envelope::parse_headers(&row.headers).unwrap_or_else(|e| {
        // Only a hand-edited row gets here; losing the trace context beats blocking the outbox.
        tracing::warn!(event_id = %row.event_id, error = %e, "bus relay: bad outbox headers");
        Default::default()
    });
    Envelope {
        event_id: row.event_id,
        topic: row.topic,
        event_type: row.event_type,
        organization: row.organization,
        headers,
        payload: row.payload.into(),
        occurred_at: row.occurred_at,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}
