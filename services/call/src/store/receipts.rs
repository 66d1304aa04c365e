//! The `call_webhook_receipts` table: which provider deliveries were already applied.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};

use salestrainer_runtime::time::now_us;

use super::receipt;

/// Records a webhook delivery; false when this (provider, key) was already recorded.
pub async fn record_receipt<C: ConnectionTrait>(
    txn: &C,
    provider: &str,
    key: &str,
    session_id: &str,
    event_type: &str,
) -> Result<bool, DbErr> {
    let rows = receipt::Entity::insert(receipt::ActiveModel {
        provider: Set(provider.to_owned()),
        idempotency_key: Set(key.to_owned()),
        session_id: Set(session_id.to_owned()),
        event_type: Set(event_type.to_owned()),
        received_us: Set(now_us()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([receipt::Column::Provider, receipt::Column::IdempotencyKey])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(rows > 0)
}

pub async fn has_receipt<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    key: &str,
) -> Result<bool, DbErr> {
    Ok(receipt::Entity::find()
        .filter(receipt::Column::Provider.eq(provider))
        .filter(receipt::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
        .is_some())
}
