//! The criterion scores of a fact's grade (JSON like `skills`), so drill impact compares the
//! drilled criterion itself. Facts graded before hold '[]': drill impact then falls back to
//! the criterion's skill.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

pub struct FactCriteria;

impl sea_orm_migration::MigrationName for FactCriteria {
    fn name(&self) -> &str {
        "m0005_analytics_fact_criteria"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FactCriteria {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE analytics_facts ADD COLUMN criteria TEXT NOT NULL DEFAULT '[]'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE analytics_facts DROP COLUMN criteria")
            .await?;
        Ok(())
    }
}
