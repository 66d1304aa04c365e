//! Prompt templates and their revisions.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{
    Page,
    entities::{prompt_template as tpl, prompt_template_revision as rev},
};
use crate::domain::templates as dt;

/// Inserts the built-in template of every purpose (revision 1) for a new organization.
pub async fn seed_builtins<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    now_us: i64,
) -> Result<(), DbErr> {
    for purpose in dt::PURPOSES {
        let etag = crate::domain::new_etag();
        let id = dt::builtin_id(purpose);
        insert(
            conn,
            tpl::Model {
                organization_id: org.to_owned(),
                id: id.clone(),
                purpose: dt::purpose_key(purpose).to_owned(),
                display_name: dt::builtin_display_name(purpose).to_owned(),
                builtin: true,
                revision: 1,
                etag: etag.clone(),
                create_us: now_us,
                update_us: now_us,
            },
            rev::Model {
                organization_id: org.to_owned(),
                template_id: id,
                revision: 1,
                display_name: dt::builtin_display_name(purpose).to_owned(),
                body: dt::builtin_body(purpose).to_owned(),
                etag,
                create_us: now_us,
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    template: tpl::Model,
    revision: rev::Model,
) -> Result<(), DbErr> {
    tpl::ActiveModel::from(template)
        .reset_all()
        .insert(conn)
        .await?;
    rev::ActiveModel::from(revision)
        .reset_all()
        .insert(conn)
        .await?;
    Ok(())
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
) -> Result<Option<tpl::Model>, DbErr> {
    tpl::Entity::find_by_id((org.to_owned(), id.to_owned()))
        .one(conn)
        .await
}

pub async fn get_revision<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    revision: i64,
) -> Result<Option<rev::Model>, DbErr> {
    rev::Entity::find_by_id((org.to_owned(), id.to_owned(), revision))
        .one(conn)
        .await
}

pub async fn list<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    purpose: Option<&str>,
    builtin_only: bool,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<tpl::Model>, DbErr> {
    let mut q = tpl::Entity::find().filter(tpl::Column::OrganizationId.eq(org));
    if let Some(p) = purpose {
        q = q.filter(tpl::Column::Purpose.eq(p));
    }
    if builtin_only {
        q = q.filter(tpl::Column::Builtin.eq(true));
    }
    if let Some(after) = after {
        q = q.filter(tpl::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(tpl::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

/// Revisions newest first, those below `before` when given.
pub async fn list_revisions<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<Page<rev::Model>, DbErr> {
    let mut q = rev::Entity::find()
        .filter(rev::Column::OrganizationId.eq(org))
        .filter(rev::Column::TemplateId.eq(id));
    if let Some(b) = before {
        q = q.filter(rev::Column::Revision.lt(b));
    }
    let rows = q
        .order_by_desc(rev::Column::Revision)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.revision.to_string()))
}

pub fn key(org: &str, id: &str, etag: &str) -> Condition {
    Condition::all()
        .add(tpl::Column::OrganizationId.eq(org))
        .add(tpl::Column::Id.eq(id))
        .add(tpl::Column::Etag.eq(etag))
}

/// Moves the template to a new revision if its etag is still `etag`.
pub async fn add_revision<C: ConnectionTrait>(
    conn: &C,
    template: tpl::Model,
    revision: rev::Model,
    etag: &str,
) -> Result<bool, DbErr> {
    let cond = key(&template.organization_id, &template.id, etag);
    if !super::compare_and_swap(conn, tpl::ActiveModel::from(template), cond).await? {
        return Ok(false);
    }
    rev::ActiveModel::from(revision)
        .reset_all()
        .insert(conn)
        .await?;
    Ok(true)
}

/// Deletes a template and its revisions if its etag is still `etag`.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    etag: &str,
) -> Result<bool, DbErr> {
    let res = tpl::Entity::delete_many()
        .filter(key(org, id, etag))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 {
        rev::Entity::delete_many()
            .filter(rev::Column::OrganizationId.eq(org))
            .filter(rev::Column::TemplateId.eq(id))
            .exec(conn)
            .await?;
    }
    Ok(res.rows_affected == 1)
}
