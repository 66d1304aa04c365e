//! Index of the reconciler's third sweep: facts started that never ended (nor were graded,
//! nor failed) — live sessions and those whose SessionEnded was lost: few, so partial.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

pub struct UnendedIndex;

impl sea_orm_migration::MigrationName for UnendedIndex {
    fn name(&self) -> &str {
        "m0008_analytics_unended_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UnendedIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX analytics_facts_unended ON analytics_facts (start_us, session) \
                 WHERE ended = 0 AND cancelled = 0 AND graded = 0 AND grading_failed = 0",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS analytics_facts_unended")
            .await?;
        Ok(())
    }
}
