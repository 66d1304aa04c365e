//! Sessions, transcript segments and webhook receipts. Times that are compared or ordered are
//! stored as Unix microseconds (i64) so SQLite and PostgreSQL sort and filter them alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum CallSessions {
    Table,
    Id,
    Organization,
    Trainee,
    Scenario,
    Assignment,
    Mode,
    State,
    RequestId,
    StartUs,
    EndUs,
    DurationMs,
    DeadlineUs,
    LastActivityUs,
    EndReason,
    EndReasonDetail,
    VoiceProvider,
    ProviderCallId,
    RecordingUri,
    Evaluation,
    OverallScore,
    Passed,
    Closed,
    TranscriptFinal,
    TranscriptVersion,
    PromptTokens,
    CompletionTokens,
    LlmRequests,
    LlmModel,
    Version,
    CreateUs,
    UpdateUs,
}

#[derive(DeriveIden)]
enum CallSegments {
    Table,
    SessionId,
    SegmentId,
    Seq,
    Speaker,
    Text,
    StartMs,
    EndMs,
    IsFinal,
    ReplyTo,
    CreateUs,
}

#[derive(DeriveIden)]
enum CallWebhookReceipts {
    Table,
    Id,
    Provider,
    IdempotencyKey,
    SessionId,
    EventType,
    ReceivedUs,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CallSessions::Table)
                    .if_not_exists()
                    .col(string(CallSessions::Id).primary_key())
                    .col(string(CallSessions::Organization))
                    .col(string(CallSessions::Trainee))
                    .col(string(CallSessions::Scenario))
                    .col(string(CallSessions::Assignment))
                    .col(integer(CallSessions::Mode))
                    .col(integer(CallSessions::State))
                    .col(string_null(CallSessions::RequestId))
                    .col(big_integer(CallSessions::StartUs))
                    .col(big_integer_null(CallSessions::EndUs))
                    .col(big_integer_null(CallSessions::DurationMs))
                    .col(big_integer_null(CallSessions::DeadlineUs))
                    .col(big_integer(CallSessions::LastActivityUs))
                    .col(integer(CallSessions::EndReason))
                    .col(string(CallSessions::EndReasonDetail))
                    .col(integer(CallSessions::VoiceProvider))
                    .col(string(CallSessions::ProviderCallId))
                    .col(string(CallSessions::RecordingUri))
                    .col(string(CallSessions::Evaluation))
                    .col(double(CallSessions::OverallScore))
                    .col(boolean(CallSessions::Passed))
                    .col(boolean(CallSessions::Closed))
                    .col(boolean(CallSessions::TranscriptFinal))
                    .col(big_integer(CallSessions::TranscriptVersion))
                    .col(big_integer(CallSessions::PromptTokens))
                    .col(big_integer(CallSessions::CompletionTokens))
                    .col(integer(CallSessions::LlmRequests))
                    .col(string(CallSessions::LlmModel))
                    .col(big_integer(CallSessions::Version))
                    .col(big_integer(CallSessions::CreateUs))
                    .col(big_integer(CallSessions::UpdateUs))
                    .to_owned(),
            )
            .await?;
        // ListSessions: newest first within an organization.
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_org_created")
                    .table(CallSessions::Table)
                    .col(CallSessions::Organization)
                    .col(CallSessions::CreateUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // StartSession idempotency: one session per (organization, trainee, request id).
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_request_id")
                    .table(CallSessions::Table)
                    .col(CallSessions::Organization)
                    .col(CallSessions::Trainee)
                    .col(CallSessions::RequestId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The idle sweeper scans active sessions by last activity.
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_state_activity")
                    .table(CallSessions::Table)
                    .col(CallSessions::State)
                    .col(CallSessions::LastActivityUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("call_sessions_provider_call")
                    .table(CallSessions::Table)
                    .col(CallSessions::ProviderCallId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CallSegments::Table)
                    .if_not_exists()
                    .col(string(CallSegments::SessionId))
                    .col(string(CallSegments::SegmentId))
                    .col(big_integer(CallSegments::Seq))
                    .col(integer(CallSegments::Speaker))
                    .col(text(CallSegments::Text))
                    .col(big_integer(CallSegments::StartMs))
                    .col(big_integer(CallSegments::EndMs))
                    .col(boolean(CallSegments::IsFinal))
                    .col(string_null(CallSegments::ReplyTo))
                    .col(big_integer(CallSegments::CreateUs))
                    .primary_key(
                        Index::create()
                            .col(CallSegments::SessionId)
                            .col(CallSegments::SegmentId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CallSegments::Table, CallSegments::SessionId)
                            .to(CallSessions::Table, CallSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CallWebhookReceipts::Table)
                    .if_not_exists()
                    .col(
                        big_integer(CallWebhookReceipts::Id)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string(CallWebhookReceipts::Provider))
                    .col(string(CallWebhookReceipts::IdempotencyKey))
                    .col(string(CallWebhookReceipts::SessionId))
                    .col(string(CallWebhookReceipts::EventType))
                    .col(big_integer(CallWebhookReceipts::ReceivedUs))
                    .to_owned(),
            )
            .await?;
        // A repeated delivery of the same provider event is recognised by this key.
        manager
            .create_index(
                Index::create()
                    .name("call_webhook_receipts_key")
                    .table(CallWebhookReceipts::Table)
                    .col(CallWebhookReceipts::Provider)
                    .col(CallWebhookReceipts::IdempotencyKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CallWebhookReceipts::Table.into_iden(),
            CallSegments::Table.into_iden(),
            CallSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
