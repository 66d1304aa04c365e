//! Redis Streams transport for the distributed mode.
//!
//! - A topic is a stream key; an event is one entry with the fields `event_id`, `event_type`,
//!   `organization`, `headers` (JSON), `payload` (bytes) and `occurred_at` (RFC 3339).
//! - A group is a Redis consumer group (`XGROUP CREATE ... MKSTREAM`), read with `XREADGROUP`;
//!   entries of consumers that died are taken over with `XAUTOCLAIM` once idle longer than the
//!   visibility timeout; `XACK` acknowledges.
//! - Publishing never trims. [`RedisStreamsTransport::trim_acked`] (also run periodically by
//!   subscriptions when [`RedisOptions::trim_interval`] is set) trims only entries that every
//!   group has both received and acked.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_redis::{Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingReply, StreamReadReply,
};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{BoxFuture, Delivery, QueueDepth, StartFrom, SubscribeOptions, Subscription};
use super::{SubscriptionSource, Transport};
use crate::{Envelope, Error, Result};

const F_EVENT_ID: &str = "event_id";
const F_EVENT_TYPE: &str = "event_type";
const F_ORGANIZATION: &str = "organization";
const F_HEADERS: &str = "headers";
const F_PAYLOAD: &str = "payload";
const F_OCCURRED_AT: &str = "occurred_at";
/// Keys of [`Transport::intact`]'s markers.
const MARKER_PREFIX: &str = "salestrainer:bus:marker:";
const WATERMARK_PREFIX: &str = "salestrainer:bus:watermark:";
/// KEYS[1] moves from ARGV[1] ('' for none) to ARGV[2] with a TTL of ARGV[3] ms; otherwise
/// the mark held ('' for none) comes back and nothing changes.
const ADVANCE_WATERMARK: &str = r"
local held = redis.call('GET', KEYS[1]) or ''
if held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return false
";

/// Transport-wide settings.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// How often each subscription trims entries that every group has acked; `None` never trims
    /// (the stream then grows until trimmed by other means).
    pub trim_interval: Option<Duration>,
    /// Longest pause between reconnection attempts of a subscription.
    pub max_reconnect_backoff: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            trim_interval: Some(Duration::from_secs(60)),
            max_reconnect_backoff: Duration::from_secs(5),
        }
    }
}

/// Redis Streams transport; cheap to clone.
#[derive(Clone)]
pub struct RedisStreamsTransport {
    pool: Pool,
    /// Blocking reads get connections of their own from this client, so that a subscription
    /// waiting in `XREADGROUP ... BLOCK` never holds (or stalls) a pooled connection.
    client: Client,
    opts: RedisOptions,
}

impl std::fmt::Debug for RedisStreamsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsTransport")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl RedisStreamsTransport {
    /// `pool` serves publishes, acks and metrics; `client` (same server) opens the dedicated
    /// connections of subscriptions.
    pub fn new(pool: Pool, client: Client, opts: RedisOptions) -> Self {
        Self { pool, client, opts }
    }

    /// Builds the pool and the client from one `redis://` URL. Does not connect yet.
    pub fn from_url(url: &str, opts: RedisOptions) -> Result<Self> {
        let client = Client::open(url)?;
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self::new(pool, client, opts))
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Entries delivered to `group` but not acked yet (`XPENDING`); 0 if the stream or group
    /// does not exist.
    pub async fn pending_count(&self, topic: &str, group: &str) -> Result<u64> {
        let mut conn = self.pool.get().await?;
        let reply: Result<StreamPendingReply, RedisError> = redis::cmd("XPENDING")
            .arg(topic)
            .arg(group)
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(r) => Ok(r.count() as u64),
            Err(e) if e.code() == Some("NOGROUP") => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Entries not yet delivered to any consumer of `group` (`XINFO GROUPS` lag); `None` when
    /// Redis cannot tell (it can't after some deletions) or the group does not exist.
    pub async fn lag(&self, topic: &str, group: &str) -> Result<Option<u64>> {
        let groups = self.groups(topic).await?;
        Ok(groups
            .groups
            .into_iter()
            .find(|g| g.name == group)
            .and_then(|g| g.lag.map(|l| l as u64)))
    }

    async fn groups(&self, topic: &str) -> Result<StreamInfoGroupsReply> {
        let mut conn = self.pool.get().await?;
        let reply: Result<StreamInfoGroupsReply, RedisError> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(topic)
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(r) => Ok(r),
            Err(e) if is_no_such_key(&e) => Ok(StreamInfoGroupsReply::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Trims `topic` below the oldest entry any group still needs (pending, or not delivered
    /// yet) and returns how many entries went. A stream without groups is left alone: nobody
    /// has read it yet.
    pub async fn trim_acked(&self, topic: &str) -> Result<u64> {
        let groups = self.groups(topic).await?;
        if groups.groups.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.get().await?;
        let mut min_id: Option<StreamIdValue> = None;
        for g in &groups.groups {
            // Everything after last-delivered-id is still unread by this group, and everything
            // in its pending list is unacked; keep both.
            let mut keep = StreamIdValue::parse(&g.last_delivered_id);
            if g.pending > 0 {
                let p: StreamPendingReply = redis::cmd("XPENDING")
                    .arg(topic)
                    .arg(&g.name)
                    .query_async(&mut conn)
                    .await?;
                if let StreamPendingReply::Data(d) = p {
                    keep = keep.min(StreamIdValue::parse(&d.start_id));
                }
            }
            min_id = Some(match min_id {
                Some(m) => m.min(keep),
                None => keep,
            });
        }
        let Some(min_id) = min_id else {
            return Ok(0);
        };
        if min_id == StreamIdValue::ZERO {
            return Ok(0);
        }
        // Exact (not `~`) so the result is predictable; MINID keeps `min_id` itself.
        let trimmed: u64 = redis::cmd("XTRIM")
            .arg(topic)
            .arg("MINID")
            .arg(min_id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(trimmed)
    }

    async fn dedicated_connection(&self, block: Duration) -> Result<MultiplexedConnection> {
        // The default response timeout (500 ms) would cut a longer BLOCK short; allow the block
        // time plus a margin, which still detects a dead server.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(block + Duration::from_secs(5)));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }
}

fn is_no_such_key(e: &RedisError) -> bool {
    e.detail()
        .is_some_and(|d| d.to_ascii_lowercase().contains("no such key"))
        || e.to_string().to_ascii_lowercase().contains("no such key")
}

/// A stream entry id (`<ms>-<seq>`) that compares numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct StreamIdValue(u64, u64);

impl StreamIdValue {
    const ZERO: Self = Self(0, 0);

    /// Unparseable ids count as zero, which makes trimming keep everything.
    fn parse(s: &str) -> Self {
        let mut it = s.splitn(2, '-');
        let ms = it.next().and_then(|v| v.parse().ok());
        let seq = it.next().unwrap_or("0").parse().ok();
        match (ms, seq) {
            (Some(ms), Some(seq)) => Self(ms, seq),
            _ => Self::ZERO,
        }
    }
}

impl std::fmt::Display for StreamIdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

async fn ensure_group(
    conn: &mut impl redis::aio::ConnectionLike,
    topic: &str,
    group: &str,
    start: StartFrom,
) -> Result<()> {
    let start_id = match start {
        StartFrom::Beginning => "0",
        StartFrom::Latest => "$",
    };
    let res: Result<Value, RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(topic)
        .arg(group)
        .arg(start_id)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match res {
        Ok(_) => Ok(()),
        // The group already exists: another consumer (or an earlier run) made it.
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The XADD of one event onto its topic's stream.
fn xadd(env: &Envelope) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&env.topic)
        .arg("*")
        .arg(F_EVENT_ID)
        .arg(&env.event_id)
        .arg(F_EVENT_TYPE)
        .arg(&env.event_type)
        .arg(F_ORGANIZATION)
        .arg(&env.organization)
        .arg(F_HEADERS)
        .arg(env.headers_json())
        .arg(F_PAYLOAD)
        .arg(env.payload.as_ref())
        .arg(F_OCCURRED_AT)
        .arg(env.occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    cmd
}

impl Transport for RedisStreamsTransport {
    fn publish<'a>(&'a self, env: &'a Envelope) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            let _id: String = xadd(env).query_async(&mut conn).await?;
            Ok(())
        })
    }

    /// One pipeline: a relay's batch costs one round trip, not one per event, while its
    /// outbox rows stay locked. Redis answers every command; on any error none is counted as
    /// published.
    fn publish_many<'a>(&'a self, envs: &'a [Envelope]) -> BoxFuture<'a, (usize, Option<Error>)> {
        Box::pin(async move {
            if envs.is_empty() {
                return (0, None);
            }
            let sent = async {
                let mut conn = self.pool.get().await?;
                let mut pipe = redis::pipe();
                for env in envs {
                    pipe.add_command(xadd(env));
                }
                let _ids: Vec<String> = pipe.query_async(&mut conn).await?;
                Ok::<_, Error>(())
            };
            match sent.await {
                Ok(()) => (envs.len(), None),
                Err(e) => (0, Some(e)),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        consumer: &'a str,
        opts: SubscribeOptions,
    ) -> BoxFuture<'a, Result<Subscription>> {
        Box::pin(async move {
            // Connect and create the group now, so a subscribe against an unreachable Redis
            // fails here instead of retrying silently in the background.
            let mut conn = self.dedicated_connection(opts.block).await?;
            ensure_group(&mut conn, topic, group, opts.start_from).await?;
            let cancel = CancellationToken::new();
            let (tx, rx) = mpsc::channel(opts.batch_size.max(1));
            let reader = Reader {
                transport: self.clone(),
                topic: topic.to_owned(),
                group: group.to_owned(),
                consumer: consumer.to_owned(),
                opts,
                cancel: cancel.clone(),
                tx,
            };
            tokio::spawn(reader.run(conn));
            Ok(Subscription::new(RedisSource {
                rx,
                _stop: cancel.drop_guard(),
            }))
        })
    }

    /// A marker key that lives as long as the data: set with NX, so finding it missing means
    /// Redis lost what it held (it restarted without persistence, or was flushed).
    fn intact<'a>(&'a self, marker: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{MARKER_PREFIX}{marker}"))
                .arg("1")
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            Ok(set.is_none())
        })
    }

    /// A plain key, moved by a script (compare and set): Redis replicates commands in the
    /// order it ran them, so a replica holding a mark holds every XADD that returned before it
    /// was set.
    fn advance_watermark<'a>(
        &'a self,
        key: &'a str,
        from: Option<i64>,
        to: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<std::result::Result<(), Option<i64>>>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            // Hashed once: every call after the first is an EVALSHA.
            static SCRIPT: std::sync::LazyLock<redis::Script> =
                std::sync::LazyLock::new(|| redis::Script::new(ADVANCE_WATERMARK));
            let held: Option<String> = SCRIPT
                .key(format!("{WATERMARK_PREFIX}{key}"))
                .arg(from.map(|m| m.to_string()).unwrap_or_default())
                .arg(to)
                .arg(ttl_ms)
                .invoke_async(&mut conn)
                .await?;
            Ok(match held {
                None => Ok(()),
                Some(h) => Err(h.parse().ok()),
            })
        })
    }

    fn watermark<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            Ok(redis::cmd("GET")
                .arg(format!("{WATERMARK_PREFIX}{key}"))
                .query_async(&mut conn)
                .await?)
        })
    }

    fn queue_depth<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<QueueDepth>> {
        Box::pin(async move {
            Ok(QueueDepth {
                pending: self.pending_count(topic, group).await?,
                lag: self.lag(topic, group).await?,
            })
        })
    }
}

struct RedisSource {
    rx: mpsc::Receiver<Delivery>,
    /// Dropping the subscription cancels the reader at once, even mid-`BLOCK`.
    _stop: DropGuard,
}

impl SubscriptionSource for RedisSource {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(self.rx.recv())
    }

    fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

/// The background task of one subscription: reads with its own connection and feeds the
/// subscription's channel (whose small capacity is the back-pressure).
struct Reader {
    transport: RedisStreamsTransport,
    topic: String,
    group: String,
    consumer: String,
    opts: SubscribeOptions,
    cancel: CancellationToken,
    tx: mpsc::Sender<Delivery>,
}

/// Why the read loop stopped.
enum Stop {
    Cancelled,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

impl From<RedisError> for Stop {
    fn from(e: RedisError) -> Self {
        Stop::Failed(e.into())
    }
}

impl Reader {
    async fn run(self, conn: MultiplexedConnection) {
        let mut conn = Some(conn);
        let mut backoff = Duration::from_millis(100);
        // Entries this consumer name had not acked before (a restart with the same name) are
        // re-read first, from its own pending list, before new ones.
        let mut own_cursor = Some("0".to_owned());
        let mut claim_cursor = "0-0".to_owned();
        loop {
            let mut c = match conn.take() {
                Some(c) => c,
                None => match self.reconnect().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, group = %self.group, error = %e,
                            "bus: redis reconnect failed");
                        if self.pause(&mut backoff).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            match self
                .read_loop(&mut c, &mut own_cursor, &mut claim_cursor, &mut backoff)
                .await
            {
                Stop::Cancelled => return,
                Stop::Failed(e) => {
                    tracing::warn!(topic = %self.topic, group = %self.group,
                        consumer = %self.consumer, error = %e, "bus: redis read failed, retrying");
                    // Drop the connection: it may be broken. Re-reading our own pending list
                    // after reconnecting is harmless and catches anything half-delivered.
                    own_cursor = Some("0".to_owned());
                    if self.pause(&mut backoff).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sleeps for the current backoff and doubles it; true if cancelled meanwhile.
    async fn pause(&self, backoff: &mut Duration) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(self.transport.opts.max_reconnect_backoff);
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep(wait) => false,
        }
    }

    async fn reconnect(&self) -> Result<MultiplexedConnection> {
        let mut c = self.transport.dedicated_connection(self.opts.block).await?;
        // The stream or group may have been deleted while we were away.
        ensure_group(&mut c, &self.topic, &self.group, self.opts.start_from).await?;
        Ok(c)
    }

    async fn read_loop(
        &self,
        conn: &mut MultiplexedConnection,
        own_cursor: &mut Option<String>,
        claim_cursor: &mut String,
        backoff: &mut Duration,
    ) -> Stop {
        let mut next_claim = Instant::now();
        let mut next_trim = self
            .transport
            .opts
            .trim_interval
            .map(|i| Instant::now() + i);
        let count = self.opts.batch_size.max(1);
        loop {
            if self.cancel.is_cancelled() {
                return Stop::Cancelled;
            }
            if Instant::now() >= next_claim {
                match self.claim(conn, claim_cursor, count).await {
                    Ok(()) => {}
                    Err(stop) => return stop,
                }
                next_claim = Instant::now() + self.opts.claim_interval;
            }
            if let Some(at) = next_trim
                && Instant::now() >= at
            {
                // Best effort: a failed trim only means a longer stream for a while.
                if let Err(e) = self.transport.trim_acked(&self.topic).await {
                    tracing::debug!(topic = %self.topic, error = %e, "bus: trim failed");
                }
                next_trim = self
                    .transport
                    .opts
                    .trim_interval
                    .map(|i| Instant::now() + i);
            }

            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(&self.group)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(count);
            let reading_own = own_cursor.is_some();
            if !reading_own {
                // Wake up in time for the next XAUTOCLAIM.
                let until_claim = next_claim.saturating_duration_since(Instant::now());
                let block = self
                    .opts
                    .block
                    .min(until_claim)
                    .max(Duration::from_millis(1));
                cmd.arg("BLOCK").arg(block.as_millis() as u64);
            }
            cmd.arg("STREAMS")
                .arg(&self.topic)
                .arg(own_cursor.as_deref().unwrap_or(">"));
            let reply: Option<StreamReadReply> = tokio::select! {
                _ = self.cancel.cancelled() => return Stop::Cancelled,
                r = cmd.query_async(conn) => match r {
                    Ok(r) => r,
                    Err(e) => return e.into(),
                },
            };
            *backoff = Duration::from_millis(100);
            let entries: Vec<StreamId> = reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default();
            if reading_own {
                match entries.last() {
                    // Page through our own pending list by id.
                    Some(last) => *own_cursor = Some(last.id.clone()),
                    None => *own_cursor = None,
                }
            }
            for entry in entries {
                if let Err(stop) = self.deliver(entry, reading_own).await {
                    return stop;
                }
            }
        }
    }

    /// Takes over entries that have been pending longer than the visibility timeout in any
    /// consumer of the group (one that died, hung, or was dropped before acking).
    async fn claim(
        &self,
        conn: &mut MultiplexedConnection,
        cursor: &mut String,
        count: usize,
    ) -> Result<(), Stop> {
        let min_idle = self.opts.visibility_timeout.as_millis() as u64;
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.topic)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(min_idle)
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(count);
        let reply: StreamAutoClaimReply = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Stop::Cancelled),
            r = cmd.query_async(conn) => r?,
        };
        // The cursor walks the pending list across calls; "0-0" means it went round.
        *cursor = reply.next_stream_id;
        for entry in reply.claimed {
            self.deliver(entry, true).await?;
        }
        Ok(())
    }

    async fn deliver(&self, entry: StreamId, redelivered: bool) -> Result<(), Stop> {
        let id = entry.id.clone();
        let envelope = match parse_entry(&self.topic, entry) {
            Ok(env) => env,
            Err(e) => {
                // It can never be handled; ack it so it does not circulate forever.
                tracing::error!(topic = %self.topic, group = %self.group, entry_id = %id,
                    error = %e, "bus: dropping malformed stream entry");
                let mut conn = self.transport.pool.get().await.map_err(Error::from)?;
                xack(&mut conn, &self.topic, &self.group, &id).await?;
                return Ok(());
            }
        };
        let pool = self.transport.pool.clone();
        let topic = self.topic.clone();
        let group = self.group.clone();
        let ack = move || -> BoxFuture<'static, Result<()>> {
            Box::pin(async move {
                let mut conn = pool.get().await?;
                xack(&mut conn, &topic, &group, &id).await
            })
        };
        let delivery = Delivery::new(envelope, redelivered, ack);
        tokio::select! {
            _ = self.cancel.cancelled() => Err(Stop::Cancelled),
            r = self.tx.send(delivery) => match r {
                Ok(()) => Ok(()),
                // The subscription is gone; its token is cancelled as well.
                Err(_) => Err(Stop::Cancelled),
            },
        }
    }
}

async fn xack(
    conn: &mut impl redis::aio::ConnectionLike,
    topic: &str,
    group: &str,
    id: &str,
) -> Result<()> {
    let _n: u64 = redis::cmd("XACK")
        .arg(topic)
        .arg(group)
        .arg(id)
        .query_async(conn)
        .await?;
    Ok(())
}

fn parse_entry(topic: &str, entry: StreamId) -> Result<Envelope> {
    fn field<T: redis::FromRedisValue>(e: &StreamId, name: &str) -> Result<T> {
        e.get(name)
            .ok_or_else(|| Error::Malformed(format!("missing or invalid field {name:?}")))
    }
    let occurred_at: String = field(&entry, F_OCCURRED_AT)?;
    let occurred_at = DateTime::parse_from_rfc3339(&occurred_at)
        .map_err(|e| Error::Malformed(format!("occurred_at: {e}")))?
        .with_timezone(&Utc);
    let headers: String = field(&entry, F_HEADERS)?;
    let payload: Vec<u8> = field(&entry, F_PAYLOAD)?;
    Ok(Envelope {
        event_id: field(&entry, F_EVENT_ID)?,
        topic: topic.to_owned(),
        event_type: field(&entry, F_EVENT_TYPE)?,
        organization: field(&entry, F_ORGANIZATION)?,
        headers: Envelope::parse_headers(&headers)?,
        payload: payload.into(),
        occurred_at,
    })
}
