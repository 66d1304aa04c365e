//! The audit marks a removed override (ClearEvaluationOverride): the row's score is then the
//! grader's again. Earlier rows are overrides set, never cleared.

use sea_orm_migration::prelude::*;

pub struct OverrideCleared;

impl MigrationName for OverrideCleared {
    fn name(&self) -> &str {
        "m0006_evaluation_override_cleared"
    }
}

#[derive(DeriveIden)]
enum EvaluationOverrides {
    Table,
    Cleared,
}

#[async_trait::async_trait]
impl MigrationTrait for OverrideCleared {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(EvaluationOverrides::Table)
                    .add_column(
                        ColumnDef::new(EvaluationOverrides::Cleared)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(EvaluationOverrides::Table)
                    .drop_column(EvaluationOverrides::Cleared)
                    .to_owned(),
            )
            .await
    }
}
