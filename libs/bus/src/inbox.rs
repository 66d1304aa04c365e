//! The inbox makes consumers idempotent: a consumer records each event id it handles in the same
//! transaction as its state change, so a redelivered event changes nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// The `bus_inbox` table (created by [`crate::CreateInbox`]).
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bus_inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub handled_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records that `consumer` handled `event_id`. Returns `true` the first time and `false` if it
/// was already recorded, in which case the caller should skip its work (and still ack).
///
/// Call it inside the consumer's own transaction, before or after its state change: if that
/// transaction rolls back the mark goes with it and the redelivery is handled afresh.
///
/// Race-safe on SQLite and PostgreSQL: it is a single `INSERT ... ON CONFLICT DO NOTHING` on the
/// (consumer, event_id) primary key, so of two concurrent duplicates exactly one inserts (on
/// PostgreSQL the second waits for the first transaction and then sees the conflict).
pub async fn mark_handled<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    event_id: &str,
) -> Result<bool, DbErr> {
    let mut stmt = Query::insert();
    stmt.into_table(entity::Entity)
        .columns([
            entity::Column::Consumer,
            entity::Column::EventId,
            entity::Column::HandledAt,
        ])
        .values([consumer.into(), event_id.into(), Utc::now().into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::columns([entity::Column::Consumer, entity::Column::EventId])
                .do_nothing()
                .to_owned(),
        );
    let res = conn.execute(&stmt).await?;
    Ok(res.rows_affected() == 1)
}

/// [`mark_handled`] for a batch of event ids, one statement per chunk instead of one per event.
/// Returns the ids recorded now; the others were handled before (skip them, still ack).
pub async fn mark_handled_many<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    event_ids: &[&str],
) -> Result<BTreeSet<String>, DbErr> {
    // Rows per statement: well under both backends' bound-parameter limits.
    const CHUNK: usize = 200;
    let ids: BTreeSet<&str> = event_ids.iter().copied().collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let now = Utc::now();
    let mut fresh = BTreeSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut stmt = Query::insert();
        stmt.into_table(entity::Entity).columns([
            entity::Column::Consumer,
            entity::Column::EventId,
            entity::Column::HandledAt,
        ]);
        for id in chunk {
            stmt.values([consumer.into(), (*id).into(), now.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        stmt.on_conflict(
            OnConflict::columns([entity::Column::Consumer, entity::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .returning_col(entity::Column::EventId);
        for row in conn.query_all(&stmt).await? {
            fresh.insert(row.try_get::<String>("", "event_id")?);
        }
    }
    Ok(fresh)
}

/// Deletes inbox records older than `cutoff` and returns how many went. Keep the cutoff well
/// beyond the longest time an event can still be redelivered (e.g. 7 days): an event whose
/// record was purged would be handled again.
pub async fn purge_handled_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = entity::Entity::delete_many()
        .filter(entity::Column::HandledAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}
