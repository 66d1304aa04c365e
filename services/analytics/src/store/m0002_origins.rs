//! Issue 14: a fact knows whether its session is a real call (which rolls up under the `r*`
//! dimensions, apart from practice) and which evaluation and criterion a drill session
//! practises again (GetDrillImpact reads those).

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

pub struct Origins;

impl sea_orm_migration::MigrationName for Origins {
    fn name(&self) -> &str {
        "m0002_analytics_origins"
    }
}

/// One column per ALTER (SQLite adds only one at a time).
const UP: &[&str] = &[
    "ALTER TABLE analytics_facts ADD COLUMN real_call BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE analytics_facts ADD COLUMN drill_evaluation TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE analytics_facts ADD COLUMN drill_criterion TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE analytics_facts ADD COLUMN drill_skill TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE analytics_facts ADD COLUMN drill_before_milli BIGINT NULL",
    // GetDrillImpact scans an organization's drill sessions.
    "CREATE INDEX analytics_facts_drills ON analytics_facts (org, drill_criterion, start_us)",
];

#[async_trait::async_trait]
impl MigrationTrait for Origins {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in UP {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS analytics_facts_drills")
            .await?;
        for col in [
            "drill_before_milli",
            "drill_skill",
            "drill_criterion",
            "drill_evaluation",
            "real_call",
        ] {
            db.execute_unprepared(&format!("ALTER TABLE analytics_facts DROP COLUMN {col}"))
                .await?;
        }
        Ok(())
    }
}
