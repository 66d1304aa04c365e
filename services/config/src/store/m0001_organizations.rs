use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    DisplayName,
    Settings,
    Etag,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
    OrganizationId,
    Subject,
    DisplayName,
    Email,
    Role,
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
                    .table(Organizations::Table)
                    .if_not_exists()
                    .col(string(Organizations::Id).primary_key())
                    .col(string(Organizations::DisplayName))
                    .col(json(Organizations::Settings))
                    .col(string(Organizations::Etag))
                    .col(timestamp_with_time_zone(Organizations::CreateTime))
                    .col(timestamp_with_time_zone(Organizations::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .if_not_exists()
                    .col(string(Members::Id).primary_key())
                    .col(string(Members::OrganizationId))
                    .col(string(Members::Subject))
                    .col(string(Members::DisplayName))
                    .col(string(Members::Email))
                    .col(string(Members::Role))
                    .col(string(Members::Etag))
                    .col(timestamp_with_time_zone(Members::CreateTime))
                    .col(timestamp_with_time_zone(Members::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Members::Table, Members::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A subject is a member of an organization at most once; it is how a token is matched.
        manager
            .create_index(
                Index::create()
                    .name("members_org_subject")
                    .table(Members::Table)
                    .col(Members::OrganizationId)
                    .col(Members::Subject)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Members::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Organizations::Table).to_owned())
            .await
    }
}
