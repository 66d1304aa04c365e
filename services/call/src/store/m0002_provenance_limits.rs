//! Issue 11: transcript provenance and O(1) transcript limits.
//!
//! - `call_segments.source`: who recorded each segment (`TranscriptSource` number; 0 for rows
//!   written before this migration);
//! - `call_sessions.segment_count` / `transcript_bytes`: running counters kept in the same
//!   transaction as every segment write, so a limit check never reloads the transcript
//!   (backfilled from the stored segments);
//! - `call_sessions.failure_reason`: why a session is FAILED without grading
//!   (`VOICE_REPORT_MISSING`);
//! - an index to find a speaker's latest partial without scanning the session's segments, and
//!   one for the sweeper's scan of voice sessions awaiting their provider report.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CallSessions {
    Table,
    SegmentCount,
    TranscriptBytes,
    FailureReason,
    State,
    EndUs,
}

#[derive(DeriveIden)]
enum CallSegments {
    Table,
    Source,
    SessionId,
    Speaker,
    IsFinal,
    Seq,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds only one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(CallSegments::Table)
                    .add_column(integer(CallSegments::Source).default(0))
                    .to_owned(),
            )
            .await?;
        for col in [CallSessions::SegmentCount, CallSessions::TranscriptBytes] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CallSessions::Table)
                        .add_column(big_integer(col).default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(CallSessions::Table)
                    .add_column(string(CallSessions::FailureReason).default(""))
                    .to_owned(),
            )
            .await?;
        // Counters of the sessions that already have segments.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE call_sessions SET \
                 segment_count = (SELECT COUNT(*) FROM call_segments s \
                   WHERE s.session_id = call_sessions.id), \
                 transcript_bytes = (SELECT COALESCE(SUM(LENGTH(s.text)), 0) FROM call_segments s \
                   WHERE s.session_id = call_sessions.id)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("call_segments_pending")
                    .table(CallSegments::Table)
                    .col(CallSegments::SessionId)
                    .col(CallSegments::Speaker)
                    .col(CallSegments::IsFinal)
                    .col(CallSegments::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_state_end")
                    .table(CallSessions::Table)
                    .col(CallSessions::State)
                    .col(CallSessions::EndUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["call_sessions_state_end", "call_segments_pending"] {
            manager
                .drop_index(Index::drop().name(name).if_exists().to_owned())
                .await?;
        }
        for col in [
            CallSessions::FailureReason,
            CallSessions::TranscriptBytes,
            CallSessions::SegmentCount,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CallSessions::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(CallSegments::Table)
                    .drop_column(CallSegments::Source)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
