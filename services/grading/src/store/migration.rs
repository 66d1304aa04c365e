//! Schema of the grading tables; runs unchanged on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

pub struct CreateGradingTables;

impl MigrationName for CreateGradingTables {
    fn name(&self) -> &str {
        "m0002_grading_tables"
    }
}

#[derive(DeriveIden)]
enum GradingJobs {
    Table,
    Id,
    Organization,
    Session,
    Generation,
    RequestId,
    Regrade,
    Trainee,
    Scenario,
    Assignment,
    Rubric,
    SessionStartMs,
    SessionDurationMs,
    State,
    Attempts,
    MaxAttempts,
    NextAttemptAt,
    LeaseToken,
    LeaseUntil,
    CurrentStep,
    Checkpoint,
    DeadReason,
    LastError,
    AttemptLog,
    TraceContext,
    Evaluation,
    Started,
    EnqueuedAt,
    Version,
    CreateMs,
    UpdateMs,
}

#[derive(DeriveIden)]
enum Evaluations {
    Table,
    Id,
    Organization,
    Session,
    Trainee,
    Scenario,
    Assignment,
    JobId,
    OverallScore,
    Passed,
    Closed,
    Supersedes,
    SupersededBy,
    Body,
    CreateMs,
}

#[derive(DeriveIden)]
enum LlmUsage {
    Table,
    Id,
    JobId,
    Organization,
    Session,
    Attempt,
    Step,
    Provider,
    Model,
    PromptTokens,
    CompletionTokens,
    CostMicros,
    LatencyMs,
    Outcome,
    CreateMs,
}

fn s(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().not_null().to_owned()
}
fn i(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().to_owned()
}
fn b(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn flag(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).boolean().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateGradingTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use GradingJobs as J;
        manager
            .create_table(
                Table::create()
                    .table(J::Table)
                    .if_not_exists()
                    .col(s(J::Id).primary_key())
                    .col(s(J::Organization))
                    .col(s(J::Session))
                    .col(i(J::Generation))
                    .col(s(J::RequestId).unique_key())
                    .col(flag(J::Regrade))
                    .col(s(J::Trainee))
                    .col(s(J::Scenario))
                    .col(s(J::Assignment))
                    .col(s(J::Rubric))
                    .col(ColumnDef::new(J::SessionStartMs).big_integer())
                    .col(ColumnDef::new(J::SessionDurationMs).big_integer())
                    .col(i(J::State))
                    .col(i(J::Attempts))
                    .col(i(J::MaxAttempts))
                    .col(b(J::NextAttemptAt))
                    .col(ColumnDef::new(J::LeaseToken).string())
                    .col(ColumnDef::new(J::LeaseUntil).big_integer())
                    .col(i(J::CurrentStep))
                    .col(ColumnDef::new(J::Checkpoint).text().not_null())
                    .col(i(J::DeadReason))
                    .col(ColumnDef::new(J::LastError).text())
                    .col(ColumnDef::new(J::AttemptLog).text().not_null())
                    .col(
                        ColumnDef::new(J::TraceContext)
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .col(ColumnDef::new(J::Evaluation).string())
                    .col(flag(J::Started))
                    .col(ColumnDef::new(J::EnqueuedAt).big_integer())
                    .col(i(J::Version))
                    .col(b(J::CreateMs))
                    .col(b(J::UpdateMs))
                    .to_owned(),
            )
            .await?;
        // One job per (session, generation): a redelivered SessionEnded or a second submit
        // cannot create another.
        manager
            .create_index(
                Index::create()
                    .name("ux_grading_jobs_session_generation")
                    .table(J::Table)
                    .col(J::Session)
                    .col(J::Generation)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The claim query: due jobs by state and time.
        manager
            .create_index(
                Index::create()
                    .name("idx_grading_jobs_state_next")
                    .table(J::Table)
                    .col(J::State)
                    .col(J::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_grading_jobs_org_create")
                    .table(J::Table)
                    .col(J::Organization)
                    .col(J::CreateMs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        use Evaluations as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .if_not_exists()
                    .col(s(E::Id).primary_key())
                    .col(s(E::Organization))
                    .col(s(E::Session))
                    .col(s(E::Trainee))
                    .col(s(E::Scenario))
                    .col(s(E::Assignment))
                    .col(s(E::JobId).unique_key())
                    .col(ColumnDef::new(E::OverallScore).double().not_null())
                    .col(flag(E::Passed))
                    .col(flag(E::Closed))
                    .col(ColumnDef::new(E::Supersedes).string())
                    .col(ColumnDef::new(E::SupersededBy).string())
                    .col(ColumnDef::new(E::Body).blob().not_null())
                    .col(b(E::CreateMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_evaluations_org_create")
                    .table(E::Table)
                    .col(E::Organization)
                    .col(E::CreateMs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_evaluations_session")
                    .table(E::Table)
                    .col(E::Session)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        use LlmUsage as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(U::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(s(U::JobId))
                    .col(s(U::Organization))
                    .col(s(U::Session))
                    .col(i(U::Attempt))
                    .col(i(U::Step))
                    .col(s(U::Provider))
                    .col(s(U::Model))
                    .col(b(U::PromptTokens))
                    .col(b(U::CompletionTokens))
                    .col(b(U::CostMicros))
                    .col(b(U::LatencyMs))
                    .col(s(U::Outcome))
                    .col(b(U::CreateMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_llm_usage_job")
                    .table(U::Table)
                    .col(U::JobId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            LlmUsage::Table.into_iden(),
            Evaluations::Table.into_iden(),
            GradingJobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
