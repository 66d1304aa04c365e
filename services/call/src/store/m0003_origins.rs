//! Issue 14: where a session comes from.
//!
//! - `source`: `SessionSource` number (1 practice, 2 real call; existing rows are practice);
//! - `rubric`: the rubric a real call is graded with (empty: the scenario's);
//! - `title`: a real call's title;
//! - `drill_*`: for a drill session, the evaluation, criterion, skill, score and the customer's
//!   words it practises again (the persona opens with `drill_objection`);
//! - an index for ListSessions' source filter.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallSessions {
    Table,
    Organization,
    Source,
    CreateUs,
    Rubric,
    Title,
    DrillEvaluation,
    DrillCriterion,
    DrillSkill,
    DrillScore,
    DrillObjection,
}

const TEXT_COLUMNS: [CallSessions; 6] = [
    CallSessions::Rubric,
    CallSessions::Title,
    CallSessions::DrillEvaluation,
    CallSessions::DrillCriterion,
    CallSessions::DrillSkill,
    CallSessions::DrillObjection,
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds only one at a time.
        let alter = |col: ColumnDef| {
            Table::alter()
                .table(CallSessions::Table)
                .add_column(col)
                .to_owned()
        };
        manager
            .alter_table(alter(integer(CallSessions::Source).default(1).to_owned()))
            .await?;
        for col in TEXT_COLUMNS {
            manager
                .alter_table(alter(string(col).default("").to_owned()))
                .await?;
        }
        manager
            .alter_table(alter(
                double(CallSessions::DrillScore).default(0.0).to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_org_source")
                    .table(CallSessions::Table)
                    .col(CallSessions::Organization)
                    .col(CallSessions::Source)
                    .col(CallSessions::CreateUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("call_sessions_org_source")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        let cols = [CallSessions::Source, CallSessions::DrillScore]
            .into_iter()
            .chain(TEXT_COLUMNS);
        for col in cols {
            manager
                .alter_table(
                    Table::alter()
                        .table(CallSessions::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
