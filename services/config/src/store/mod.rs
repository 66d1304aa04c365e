//! Tables owned by the config service, their queries and migrations.

pub mod content;
pub mod credentials;
pub mod entities;
mod m0001_organizations;
mod m0002_content;
mod m0003_time_micros;
mod m0004_credential_public_key;
pub mod organizations;
pub mod templates;

use salestrainer_proto::events as ev;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Set};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub use credentials::reencrypt_credentials;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_organizations::Migration),
            Box::new(m0002_content::Migration),
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(m0003_time_micros::Migration),
            Box::new(m0004_credential_public_key::Migration),
        ]
    }
}

/// One change to a config resource, written to the outbox with the change itself.
pub struct Change<'a> {
    pub organization: &'a str,
    /// Resource name, e.g. `organizations/acme/rubrics/default`.
    pub resource: &'a str,
    /// Resource type, e.g. `salestrainer.io/Rubric`.
    pub resource_type: &'a str,
    pub kind: ev::ChangeKind,
    pub display_name: &'a str,
    /// New etag; empty for deletions.
    pub etag: &'a str,
}

/// Writes a ConfigChanged event to the outbox. Pass the transaction of the change so both
/// commit or neither does.
pub async fn record_change<C: ConnectionTrait>(conn: &C, change: Change<'_>) -> Result<(), DbErr> {
    let event = salestrainer_runtime::events::new_event(
        &format!("organizations/{}", change.organization),
        crate::SERVICE,
        ev::event::Payload::ConfigChanged(ev::ConfigChanged {
            resource: change.resource.to_owned(),
            resource_type: change.resource_type.to_owned(),
            change_kind: change.kind as i32,
            display_name: change.display_name.to_owned(),
            etag: change.etag.to_owned(),
        }),
    );
    salestrainer_runtime::events::enqueue(conn, &event).await
}

/// Whether the error is a unique-key violation (a client-chosen id already taken).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
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
    let now = salestrainer_runtime::time::now_us();
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let org = organization::ActiveModel {
        id: Set(id.to_owned()),
        display_name: Set(display_name.to_owned()),
        settings: Set(serde_json::json!({})),
        etag: Set(uuid::Uuid::new_v4().simple().to_string()),
        create_us: Set(now),
        update_us: Set(now),
    }
    .insert(&txn)
    .await?;
    let member = member::ActiveModel {
        id: Set(salestrainer_runtime::names::generate_id("member")),
        organization_id: Set(id.to_owned()),
        subject: Set(admin_subject.to_owned()),
        display_name: Set("Administrator".to_owned()),
        email: Set(String::new()),
        role: Set("admin".to_owned()),
        etag: Set(uuid::Uuid::new_v4().simple().to_string()),
        create_us: Set(now),
        update_us: Set(now),
    }
    .insert(&txn)
    .await?;
    templates::seed_builtins(&txn, id, now).await?;
    let org_name = salestrainer_runtime::names::organization_name(id);
    record_change(
        &txn,
        Change {
            organization: id,
            resource: &org_name,
            resource_type: "salestrainer.io/Organization",
            kind: ev::ChangeKind::Created,
            display_name,
            etag: &org.etag,
        },
    )
    .await?;
    let member_name = salestrainer_runtime::names::child_name(id, "members", &member.id);
    record_change(
        &txn,
        Change {
            organization: id,
            resource: &member_name,
            resource_type: "salestrainer.io/Member",
            kind: ev::ChangeKind::Created,
            display_name: &member.display_name,
            etag: &member.etag,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Writes `am` (every column) where `cond` holds, typically "this key and this etag": an
/// atomic compare-and-swap. Returns false when no row matched (someone else changed it).
pub async fn compare_and_swap<A, C>(
    conn: &C,
    am: A,
    cond: sea_orm::Condition,
) -> Result<bool, DbErr>
where
    A: ActiveModelTrait + Send,
    C: ConnectionTrait,
{
    use sea_orm::QueryFilter;
    let res = <A::Entity as EntityTrait>::update_many()
        .set(am.reset_all())
        .filter(cond)
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// One page of rows ordered by key, fetched with one extra row to know whether more follow.
pub struct Page<T> {
    pub items: Vec<T>,
    /// Key of the last item when more rows follow.
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    pub fn from_rows(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_after = if more { rows.last().map(&key) } else { None };
        Self {
            items: rows,
            next_after,
        }
    }

    /// The page token that continues after this page (empty on the last page).
    pub fn next_token(&self, query: u64) -> String {
        self.next_after
            .as_deref()
            .map(|k| salestrainer_runtime::paging::encode(k, query))
            .unwrap_or_default()
    }
}
