//! The transactional outbox: events are written to `bus_outbox` in the producer's own
//! transaction and published later by the [`crate::Relay`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::Envelope;

/// The `bus_outbox` table (created by [`crate::CreateOutbox`]).
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bus_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub event_id: String,
        pub topic: String,
        pub event_type: String,
        pub organization: String,
        #[sea_orm(column_type = "Text")]
        pub headers: String,
        #[sea_orm(column_type = "Blob")]
        pub payload: Vec<u8>,
        pub occurred_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
        pub attempts: i32,
        #[sea_orm(column_type = "Text", nullable)]
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes `env` to the outbox through `conn`.
///
/// Pass the caller's own `&DatabaseTransaction`, so the state change and the event commit (or
/// roll back) together; after the commit, call [`crate::RelayNotifier::notify`] so the relay
/// publishes at once instead of at its next sweep.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, env: &Envelope) -> Result<(), DbErr> {
    enqueue_many(conn, std::slice::from_ref(env)).await
}

/// Writes `envs` to the outbox in one statement, in order (see [`enqueue`]).
pub async fn enqueue_many<C: ConnectionTrait>(conn: &C, envs: &[Envelope]) -> Result<(), DbErr> {
    if envs.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = envs.iter().map(|env| entity::ActiveModel {
        event_id: Set(env.event_id.clone()),
        topic: Set(env.topic.clone()),
        event_type: Set(env.event_type.clone()),
        organization: Set(env.organization.clone()),
        headers: Set(env.headers_json()),
        payload: Set(env.payload.to_vec()),
        occurred_at: Set(env.occurred_at),
        created_at: Set(now),
        sent_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        ..Default::default()
    });
    // Without RETURNING: we do not need the ids, and it keeps the statement identical on both
    // backends.
    entity::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Marks rows sent within `window` before now as unsent again, so the relay sends them once
/// more; returns how many. For a transport that keeps nothing across restarts: any of them may
/// have been held in memory, not yet consumed, when the process stopped. Consumers are
/// idempotent (the inbox), so what they had handled changes nothing.
pub async fn resend_sent_within<C: ConnectionTrait>(
    conn: &C,
    window: Duration,
) -> Result<u64, DbErr> {
    resend_sent_since(conn, window_start(window)).await
}

/// `window` before now (the oldest representable time for a window longer than that).
pub fn window_start(window: Duration) -> DateTime<Utc> {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    Utc::now()
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Marks rows sent at or after `cutoff` as unsent again; returns how many. For a transport
/// that lost what it was handed after some moment but kept what came before.
pub async fn resend_sent_since<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = entity::Entity::update_many()
        .col_expr(
            entity::Column::SentAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(entity::Column::SentAt.is_not_null())
        .filter(entity::Column::SentAt.gte(cutoff))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// Deletes rows sent more than `retention` ago and returns how many went. The relay calls it
/// every [`crate::RelayOptions::cleanup_interval`]; unsent rows are never deleted.
pub async fn purge_sent<C: ConnectionTrait>(conn: &C, retention: Duration) -> Result<u64, DbErr> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let Some(cutoff) = Utc::now().checked_sub_signed(retention) else {
        return Ok(0);
    };
    let res = entity::Entity::delete_many()
        .filter(entity::Column::SentAt.is_not_null())
        .filter(entity::Column::SentAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}
