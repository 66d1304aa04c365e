//! Issue 14: the override revision a session's copy of its score reflects, so an override
//! made in grading reaches session lists and a late, older override never undoes a newer one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallSessions {
    Table,
    ScoreRevision,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CallSessions::Table)
                    .add_column(big_integer(CallSessions::ScoreRevision).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CallSessions::Table)
                    .drop_column(CallSessions::ScoreRevision)
                    .to_owned(),
            )
            .await
    }
}
