//! Training content, prompt templates and provider credentials.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Personas, scenarios, rubrics and assignments share one table: they have the same
/// lifecycle and standard methods. The fields queries filter or join on are columns; the rest
/// of each resource is its encoded protobuf (`spec`).
#[derive(DeriveIden)]
enum Resources {
    Table,
    OrganizationId,
    Collection,
    Id,
    DisplayName,
    Spec,
    PersonaId,
    RubricId,
    ScenarioId,
    OpenToAll,
    Difficulty,
    State,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum AssignmentAssignees {
    Table,
    OrganizationId,
    AssignmentId,
    MemberId,
}

#[derive(DeriveIden)]
enum PromptTemplates {
    Table,
    OrganizationId,
    Id,
    Purpose,
    DisplayName,
    Builtin,
    Revision,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum PromptTemplateRevisions {
    Table,
    OrganizationId,
    TemplateId,
    Revision,
    DisplayName,
    Body,
    Etag,
    CreateTime,
}

#[derive(DeriveIden)]
enum ProviderCredentials {
    Table,
    OrganizationId,
    Id,
    Kind,
    DisplayName,
    BaseUrl,
    Model,
    ApiKeyCiphertext,
    WebhookSecretCiphertext,
    KeyId,
    MaskedApiKey,
    RequestsPerMinute,
    TokensPerMinute,
    LastTestOutcome,
    LastTestHttpStatus,
    LastTestDetail,
    LastTestTime,
    LastTestLatencyMs,
    Etag,
    CreateTime,
    UpdateTime,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Resources::Table)
                    .if_not_exists()
                    .col(string(Resources::OrganizationId))
                    .col(string(Resources::Collection))
                    .col(string(Resources::Id))
                    .col(string(Resources::DisplayName))
                    .col(blob(Resources::Spec))
                    .col(string_null(Resources::PersonaId))
                    .col(string_null(Resources::RubricId))
                    .col(string_null(Resources::ScenarioId))
                    .col(boolean(Resources::OpenToAll).default(false))
                    .col(string_null(Resources::Difficulty))
                    .col(string_null(Resources::State))
                    .col(string(Resources::Etag))
                    .col(timestamp_with_time_zone(Resources::CreateTime))
                    .col(timestamp_with_time_zone(Resources::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(Resources::OrganizationId)
                            .col(Resources::Collection)
                            .col(Resources::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Delete protection looks up "who references this".
        for (name, col) in [
            ("resources_persona", Resources::PersonaId),
            ("resources_rubric", Resources::RubricId),
            ("resources_scenario", Resources::ScenarioId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Resources::Table)
                        .col(Resources::OrganizationId)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AssignmentAssignees::Table)
                    .if_not_exists()
                    .col(string(AssignmentAssignees::OrganizationId))
                    .col(string(AssignmentAssignees::AssignmentId))
                    .col(string(AssignmentAssignees::MemberId))
                    .primary_key(
                        Index::create()
                            .col(AssignmentAssignees::OrganizationId)
                            .col(AssignmentAssignees::AssignmentId)
                            .col(AssignmentAssignees::MemberId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("assignment_assignees_member")
                    .table(AssignmentAssignees::Table)
                    .col(AssignmentAssignees::OrganizationId)
                    .col(AssignmentAssignees::MemberId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PromptTemplates::Table)
                    .if_not_exists()
                    .col(string(PromptTemplates::OrganizationId))
                    .col(string(PromptTemplates::Id))
                    .col(string(PromptTemplates::Purpose))
                    .col(string(PromptTemplates::DisplayName))
                    .col(boolean(PromptTemplates::Builtin))
                    .col(big_integer(PromptTemplates::Revision))
                    .col(string(PromptTemplates::Etag))
                    .col(timestamp_with_time_zone(PromptTemplates::CreateTime))
                    .col(timestamp_with_time_zone(PromptTemplates::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(PromptTemplates::OrganizationId)
                            .col(PromptTemplates::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PromptTemplateRevisions::Table)
                    .if_not_exists()
                    .col(string(PromptTemplateRevisions::OrganizationId))
                    .col(string(PromptTemplateRevisions::TemplateId))
                    .col(big_integer(PromptTemplateRevisions::Revision))
                    .col(string(PromptTemplateRevisions::DisplayName))
                    .col(text(PromptTemplateRevisions::Body))
                    .col(string(PromptTemplateRevisions::Etag))
                    .col(timestamp_with_time_zone(
                        PromptTemplateRevisions::CreateTime,
                    ))
                    .primary_key(
                        Index::create()
                            .col(PromptTemplateRevisions::OrganizationId)
                            .col(PromptTemplateRevisions::TemplateId)
                            .col(PromptTemplateRevisions::Revision),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProviderCredentials::Table)
                    .if_not_exists()
                    .col(string(ProviderCredentials::OrganizationId))
                    .col(string(ProviderCredentials::Id))
                    .col(string(ProviderCredentials::Kind))
                    .col(string(ProviderCredentials::DisplayName))
                    .col(string(ProviderCredentials::BaseUrl))
                    .col(string(ProviderCredentials::Model))
                    // nonce || AES-256-GCM ciphertext; never plaintext.
                    .col(blob(ProviderCredentials::ApiKeyCiphertext))
                    .col(blob_null(ProviderCredentials::WebhookSecretCiphertext))
                    // Which key-encryption key sealed the secrets (for rotation).
                    .col(string(ProviderCredentials::KeyId))
                    .col(string(ProviderCredentials::MaskedApiKey))
                    .col(integer(ProviderCredentials::RequestsPerMinute))
                    .col(big_integer(ProviderCredentials::TokensPerMinute))
                    .col(string_null(ProviderCredentials::LastTestOutcome))
                    .col(integer_null(ProviderCredentials::LastTestHttpStatus))
                    .col(string_null(ProviderCredentials::LastTestDetail))
                    .col(timestamp_with_time_zone_null(
                        ProviderCredentials::LastTestTime,
                    ))
                    .col(big_integer_null(ProviderCredentials::LastTestLatencyMs))
                    .col(string(ProviderCredentials::Etag))
                    .col(timestamp_with_time_zone(ProviderCredentials::CreateTime))
                    .col(timestamp_with_time_zone(ProviderCredentials::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(ProviderCredentials::OrganizationId)
                            .col(ProviderCredentials::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ProviderCredentials::Table.into_iden(),
            PromptTemplateRevisions::Table.into_iden(),
            PromptTemplates::Table.into_iden(),
            AssignmentAssignees::Table.into_iden(),
            Resources::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
