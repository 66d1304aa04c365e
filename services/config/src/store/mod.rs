//! Tables owned by the config service and their migrations.

pub mod entities;
mod m0001_organizations;

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_organizations::Migration)]
    }
}

/// Creates the organization and its first admin member unless the organization exists.
/// Returns whether it was created.
pub async fn ensure_organization(
    db: &DatabaseConnection,
    id: &str,
    display_name: &str,
    admin_subject: &str,
) -> Result<bool, sea_orm::DbErr> {
    use entities::{member, organization};
    if organization::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let now = chrono::Utc::now();
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    organization::ActiveModel {
        id: Set(id.to_owned()),
        display_name: Set(display_name.to_owned()),
        settings: Set(serde_json::json!({})),
        etag: Set(uuid::Uuid::new_v4().simple().to_string()),
        create_time: Set(now),
        update_time: Set(now),
    }
    .insert(&txn)
    .await?;
    member::ActiveModel {
        id: Set(uuid::Uuid::new_v4().simple().to_string()),
        organization_id: Set(id.to_owned()),
        subject: Set(admin_subject.to_owned()),
        display_name: Set("Administrator".to_owned()),
        email: Set(String::new()),
        role: Set("admin".to_owned()),
        etag: Set(uuid::Uuid::new_v4().simple().to_string()),
        create_time: Set(now),
        update_time: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(true)
}
