//! Organizations and members.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Page,
    entities::{member, organization},
};

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
}

/// Organizations ordered by id; `only` restricts to one (a user sees their own).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    only: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<organization::Model>, DbErr> {
    let mut q = organization::Entity::find();
    if let Some(id) = only {
        q = q.filter(organization::Column::Id.eq(id));
    }
    if let Some(after) = after {
        q = q.filter(organization::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(organization::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

pub async fn member_by_subject<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    subject: &str,
) -> Result<Option<member::Model>, DbErr> {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::Subject.eq(subject))
        .one(conn)
        .await
}

pub async fn get_member<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
) -> Result<Option<member::Model>, DbErr> {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::Id.eq(id))
        .one(conn)
        .await
}

/// Which of `ids` are members of `org`.
pub async fn existing_members<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    ids: &[String],
) -> Result<Vec<String>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::Id.is_in(ids.iter().cloned()))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|m| m.id).collect())
}

#[derive(Default)]
pub struct MemberFilter {
    pub role: Option<String>,
    pub subject: Option<String>,
}

pub async fn list_members<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    filter: &MemberFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<member::Model>, DbErr> {
    let mut q = member::Entity::find().filter(member::Column::OrganizationId.eq(org));
    if let Some(role) = &filter.role {
        q = q.filter(member::Column::Role.eq(role.as_str()));
    }
    if let Some(subject) = &filter.subject {
        q = q.filter(member::Column::Subject.eq(subject.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(member::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(member::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

/// Admins of `org` other than `except`; an organization must keep at least one.
pub async fn other_admins<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    except: &str,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::Role.eq("admin"))
        .filter(member::Column::Id.ne(except))
        .count(conn)
        .await
}

pub fn member_key(org: &str, id: &str, etag: &str) -> Condition {
    Condition::all()
        .add(member::Column::OrganizationId.eq(org))
        .add(member::Column::Id.eq(id))
        .add(member::Column::Etag.eq(etag))
}

pub fn organization_key(id: &str, etag: &str) -> Condition {
    Condition::all()
        .add(organization::Column::Id.eq(id))
        .add(organization::Column::Etag.eq(etag))
}

/// Deletes a member if its etag is still `etag`. (Open assignments naming the member block
/// this earlier; closed ones keep the name as history.)
pub async fn delete_member<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    etag: &str,
) -> Result<bool, DbErr> {
    let res = member::Entity::delete_many()
        .filter(member_key(org, id, etag))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
