//! A text turn updates its session's activity time and running counters. With the activity
//! time indexed, every such update wrote a new entry into each of the table's indexes (on
//! PostgreSQL no update could be HOT: 9% were, measured under the 1,000-trainee load). The
//! sweeper, the index's only reader, finds the ACTIVE sessions by state instead (a few
//! thousand at most) and filters their activity and deadline; the table's pages keep room for
//! the updated row versions (PostgreSQL's fillfactor), so a turn touches no index.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallSessions {
    Table,
    State,
    LastActivityUs,
    DeadlineUs,
}

const OLD: &str = "call_sessions_state_activity";
const NEW: &str = "call_sessions_state_deadline";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NEW)
                    .table(CallSessions::Table)
                    .col(CallSessions::State)
                    .col(CallSessions::DeadlineUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(OLD).if_exists().to_owned())
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE call_sessions SET (fillfactor = 70)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE call_sessions RESET (fillfactor)")
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(OLD)
                    .table(CallSessions::Table)
                    .col(CallSessions::State)
                    .col(CallSessions::LastActivityUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(NEW).if_exists().to_owned())
            .await
    }
}
