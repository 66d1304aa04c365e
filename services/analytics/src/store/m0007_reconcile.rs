//! Indexes of the reconciler's two sweeps: the facts still waiting for their grade (ended,
//! not cancelled, neither graded nor failed: few, so a partial index keeps it small), and the
//! graded facts by grade time.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

pub struct ReconcileIndexes;

impl sea_orm_migration::MigrationName for ReconcileIndexes {
    fn name(&self) -> &str {
        "m0007_analytics_reconcile_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReconcileIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX analytics_facts_ungraded ON analytics_facts (start_us, session) \
             WHERE ended = 1 AND cancelled = 0 AND graded = 0 AND grading_failed = 0",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX analytics_facts_graded_at ON analytics_facts (graded_us, session)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for index in ["analytics_facts_ungraded", "analytics_facts_graded_at"] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        Ok(())
    }
}
