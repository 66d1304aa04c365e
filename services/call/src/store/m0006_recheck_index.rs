//! Issue 13: the reconciler pages sessions of one state by their last change: the unsettled
//! ones (ENDED, GRADING) and, re-checked for a lost override or regrade, the GRADED ones.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallSessions {
    Table,
    State,
    UpdateUs,
    Id,
}

const NAME: &str = "call_sessions_state_update";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(CallSessions::Table)
                    .col(CallSessions::State)
                    .col(CallSessions::UpdateUs)
                    .col(CallSessions::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).if_exists().to_owned())
            .await
    }
}
