//! Issue 14: comments on a session's transcript lines (`call_comments`), listed oldest first
//! per session (the index is the list's key).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallComments {
    Table,
    Id,
    SessionId,
    Organization,
    Author,
    Body,
    SegmentId,
    ReplyTo,
    CreateUs,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CallComments::Table)
                    .if_not_exists()
                    .col(string(CallComments::Id).primary_key())
                    .col(string(CallComments::SessionId))
                    .col(string(CallComments::Organization))
                    .col(string(CallComments::Author))
                    .col(text(CallComments::Body))
                    .col(string(CallComments::SegmentId))
                    .col(string(CallComments::ReplyTo).default(""))
                    .col(big_integer(CallComments::CreateUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("call_comments_session_time")
                    .table(CallComments::Table)
                    .col(CallComments::SessionId)
                    .col(CallComments::CreateUs)
                    .col(CallComments::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(CallComments::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
