//! The graded session's source (practice or an imported real call) on its job, so
//! SessionGraded can say it: a consumer that missed the session's own events (lost with a
//! Redis that restarted empty, the session then reconciled through SubmitSession) still
//! counts a real call apart.

use sea_orm_migration::{prelude::*, schema::*};

pub struct GradingSessionSource;

impl MigrationName for GradingSessionSource {
    fn name(&self) -> &str {
        "m0005_grading_session_source"
    }
}

#[derive(DeriveIden)]
enum GradingJobs {
    Table,
    SessionSource,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for GradingSessionSource {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GradingJobs::Table)
                    .add_column(integer(GradingJobs::SessionSource).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(GradingJobs::Table)
                    .drop_column(GradingJobs::SessionSource)
                    .to_owned(),
            )
            .await
    }
}
