use sea_orm::DbErr;

/// Everything the bus can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool error: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// The in-process transport refuses a publish rather than grow without bound; the relay
    /// keeps the event in the outbox and retries later.
    #[error("queue for topic {topic:?} group {group:?} is full ({capacity} events)")]
    QueueFull {
        topic: String,
        group: String,
        capacity: usize,
    },
    /// A stored or received event could not be decoded into an [`crate::Envelope`].
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A transport could not be configured (e.g. a bad URL).
    #[error("configuration error: {0}")]
    Config(String),
    /// The transport (or the subscription's background task) is gone.
    #[error("transport closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
