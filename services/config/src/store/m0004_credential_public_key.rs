//! Issue 15: a provider credential's public web key (VAPI's browser key), stored in clear
//! because it is not a secret; existing credentials have none.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("provider_credentials"))
                    .add_column(string(Alias::new("public_key")).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("provider_credentials"))
                    .drop_column(Alias::new("public_key"))
                    .to_owned(),
            )
            .await
    }
}
