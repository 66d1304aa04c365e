//! Personas, scenarios, rubrics and assignments (one table, see `m0002_content`).

use std::collections::HashSet;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::{
    Page,
    entities::{assignee, resource},
};

pub const PERSONAS: &str = "personas";
pub const SCENARIOS: &str = "scenarios";
pub const RUBRICS: &str = "rubrics";
pub const ASSIGNMENTS: &str = "assignments";
pub const CERTIFICATIONS: &str = "certifications";

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    collection: &str,
    id: &str,
) -> Result<Option<resource::Model>, DbErr> {
    resource::Entity::find_by_id((org.to_owned(), collection.to_owned(), id.to_owned()))
        .one(conn)
        .await
}

/// Typed list filters; `None` means no constraint.
#[derive(Default)]
pub struct Filter {
    pub persona_id: Option<String>,
    pub rubric_id: Option<String>,
    pub scenario_id: Option<String>,
    pub difficulty: Option<String>,
    pub state: Option<String>,
    /// Only assignments including this member.
    pub assignee: Option<String>,
    /// Only these ids (what a trainee may see).
    pub ids: Option<HashSet<String>>,
}

pub async fn list<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    collection: &str,
    f: &Filter,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<resource::Model>, DbErr> {
    use resource::Column as Col;
    let mut q = resource::Entity::find()
        .filter(Col::OrganizationId.eq(org))
        .filter(Col::Collection.eq(collection));
    for (col, value) in [
        (Col::PersonaId, &f.persona_id),
        (Col::RubricId, &f.rubric_id),
        (Col::ScenarioId, &f.scenario_id),
        (Col::Difficulty, &f.difficulty),
        (Col::State, &f.state),
    ] {
        if let Some(v) = value {
            q = q.filter(col.eq(v.as_str()));
        }
    }
    if let Some(member) = &f.assignee {
        let ids = assignments_of(conn, org, member).await?;
        q = q.filter(Col::Id.is_in(ids));
    }
    if let Some(ids) = &f.ids {
        q = q.filter(Col::Id.is_in(ids.iter().cloned()));
    }
    if let Some(after) = after {
        q = q.filter(Col::Id.gt(after));
    }
    let rows = q.order_by_asc(Col::Id).limit(limit + 1).all(conn).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: resource::Model) -> Result<(), DbErr> {
    resource::ActiveModel::from(row)
        .reset_all()
        .insert(conn)
        .await?;
    Ok(())
}

pub fn key(org: &str, collection: &str, id: &str, etag: &str) -> Condition {
    Condition::all()
        .add(resource::Column::OrganizationId.eq(org))
        .add(resource::Column::Collection.eq(collection))
        .add(resource::Column::Id.eq(id))
        .add(resource::Column::Etag.eq(etag))
}

/// Deletes the row if its etag is still `etag`.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    collection: &str,
    id: &str,
    etag: &str,
) -> Result<bool, DbErr> {
    let res = resource::Entity::delete_many()
        .filter(key(org, collection, id, etag))
        .exec(conn)
        .await?;
    if collection == ASSIGNMENTS {
        set_assignees(conn, org, id, &[]).await?;
    }
    Ok(res.rows_affected == 1)
}

/// The first resource of `collection` whose `column` refers to `id` (and, for assignments,
/// that is still open): what blocks deleting `id`.
pub async fn first_reference<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    collection: &str,
    column: resource::Column,
    id: &str,
) -> Result<Option<String>, DbErr> {
    let mut q = resource::Entity::find()
        .filter(resource::Column::OrganizationId.eq(org))
        .filter(resource::Column::Collection.eq(collection))
        .filter(column.eq(id));
    if collection == ASSIGNMENTS {
        q = q.filter(resource::Column::State.eq("open"));
    }
    Ok(q.order_by_asc(resource::Column::Id)
        .one(conn)
        .await?
        .map(|r| r.id))
}

pub async fn set_assignees<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    assignment: &str,
    members: &[String],
) -> Result<(), DbErr> {
    assignee::Entity::delete_many()
        .filter(assignee::Column::OrganizationId.eq(org))
        .filter(assignee::Column::AssignmentId.eq(assignment))
        .exec(conn)
        .await?;
    if members.is_empty() {
        return Ok(());
    }
    let rows = members.iter().map(|m| assignee::ActiveModel {
        organization_id: Set(org.to_owned()),
        assignment_id: Set(assignment.to_owned()),
        member_id: Set(m.clone()),
    });
    assignee::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The first open assignment that includes `member`: what blocks deleting the member.
pub async fn open_assignment_of<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    member: &str,
) -> Result<Option<String>, DbErr> {
    let ids = assignments_of(conn, org, member).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(resource::Entity::find()
        .filter(resource::Column::OrganizationId.eq(org))
        .filter(resource::Column::Collection.eq(ASSIGNMENTS))
        .filter(resource::Column::State.eq("open"))
        .filter(resource::Column::Id.is_in(ids))
        .order_by_asc(resource::Column::Id)
        .one(conn)
        .await?
        .map(|r| r.id))
}

/// Ids of the assignments that include `member`.
pub async fn assignments_of<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    member: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(assignee::Entity::find()
        .filter(assignee::Column::OrganizationId.eq(org))
        .filter(assignee::Column::MemberId.eq(member))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.assignment_id)
        .collect())
}

/// What a trainee may read: the scenarios of their assignments and those open to all, and
/// the personas and rubrics those scenarios use.
#[derive(Default, Debug)]
pub struct Visible {
    pub scenarios: HashSet<String>,
    pub personas: HashSet<String>,
    pub rubrics: HashSet<String>,
}

pub async fn visible_to<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    member: &str,
) -> Result<Visible, DbErr> {
    use resource::Column as Col;
    let assignment_ids = assignments_of(conn, org, member).await?;
    let assigned: Vec<String> = if assignment_ids.is_empty() {
        Vec::new()
    } else {
        resource::Entity::find()
            .filter(Col::OrganizationId.eq(org))
            .filter(Col::Collection.eq(ASSIGNMENTS))
            .filter(Col::Id.is_in(assignment_ids))
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|a| a.scenario_id)
            .collect()
    };
    let scenarios = resource::Entity::find()
        .filter(Col::OrganizationId.eq(org))
        .filter(Col::Collection.eq(SCENARIOS))
        .filter(
            Condition::any()
                .add(Col::OpenToAll.eq(true))
                .add(Col::Id.is_in(assigned)),
        )
        .all(conn)
        .await?;
    let mut v = Visible::default();
    for s in scenarios {
        v.personas.extend(s.persona_id);
        v.rubrics.extend(s.rubric_id);
        v.scenarios.insert(s.id);
    }
    Ok(v)
}
