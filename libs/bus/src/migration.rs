//! Schema for the outbox and inbox tables, as sea-orm-migration steps that every service adds to
//! its own `Migrator` (the bus has no database of its own):
//!
//! ```ignore
//! fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!     vec![
//!         Box::new(m0001_my_tables::Migration),
//!         Box::new(salestrainer_bus::CreateOutbox),
//!         Box::new(salestrainer_bus::CreateInbox),
//!     ]
//! }
//! ```
//!
//! Both run unchanged on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

/// Creates `bus_outbox`.
pub struct CreateOutbox;

/// Creates `bus_inbox`.
pub struct CreateInbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m0001_bus_outbox"
    }
}

impl MigrationName for CreateInbox {
    fn name(&self) -> &str {
        "m0001_bus_inbox"
    }
}

#[derive(DeriveIden)]
enum BusOutbox {
    Table,
    Id,
    EventId,
    Topic,
    EventType,
    Organization,
    Headers,
    Payload,
    OccurredAt,
    CreatedAt,
    SentAt,
    Attempts,
    LastError,
}

#[derive(DeriveIden)]
enum BusInbox {
    Table,
    Consumer,
    EventId,
    HandledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BusOutbox::Table)
                    .if_not_exists()
                    // BigInteger becomes `integer` on SQLite, which is what AUTOINCREMENT needs.
                    .col(
                        ColumnDef::new(BusOutbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(BusOutbox::EventId)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(BusOutbox::Topic).string().not_null())
                    .col(ColumnDef::new(BusOutbox::EventType).string().not_null())
                    .col(ColumnDef::new(BusOutbox::Organization).string().not_null())
                    // JSON object as text: portable, and the bus never queries inside it.
                    .col(ColumnDef::new(BusOutbox::Headers).text().not_null())
                    .col(ColumnDef::new(BusOutbox::Payload).blob().not_null())
                    .col(
                        ColumnDef::new(BusOutbox::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BusOutbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(BusOutbox::SentAt).timestamp_with_time_zone())
                    .col(
                        ColumnDef::new(BusOutbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(BusOutbox::LastError).text())
                    .to_owned(),
            )
            .await?;
        // The relay's query is `WHERE sent_at IS NULL ORDER BY id`, and the retention sweep is
        // `WHERE sent_at < cutoff`: both are served by (sent_at, id).
        manager
            .create_index(
                Index::create()
                    .name("idx_bus_outbox_sent_at_id")
                    .table(BusOutbox::Table)
                    .col(BusOutbox::SentAt)
                    .col(BusOutbox::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BusOutbox::Table).if_exists().to_owned())
            .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateInbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BusInbox::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(BusInbox::Consumer).string().not_null())
                    .col(ColumnDef::new(BusInbox::EventId).string().not_null())
                    .col(
                        ColumnDef::new(BusInbox::HandledAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // The primary key is what makes `mark_handled` race-safe.
                    .primary_key(
                        Index::create()
                            .name("pk_bus_inbox")
                            .col(BusInbox::Consumer)
                            .col(BusInbox::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        // For `inbox::purge_handled_before`.
        manager
            .create_index(
                Index::create()
                    .name("idx_bus_inbox_handled_at")
                    .table(BusInbox::Table)
                    .col(BusInbox::HandledAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BusInbox::Table).if_exists().to_owned())
            .await
    }
}
