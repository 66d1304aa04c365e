//! The override revision of a fact's grade, so a manager's override (EvaluationOverridden)
//! and the grade it replaces settle the same way in any order of arrival.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

pub struct FactOverrideRevision;

impl sea_orm_migration::MigrationName for FactOverrideRevision {
    fn name(&self) -> &str {
        "m0003_analytics_fact_override_rev"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FactOverrideRevision {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE analytics_facts ADD COLUMN override_rev BIGINT NOT NULL DEFAULT 0",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE analytics_facts DROP COLUMN override_rev")
            .await?;
        Ok(())
    }
}
