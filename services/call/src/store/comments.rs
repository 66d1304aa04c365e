//! The `call_comments` table: comments on a session's transcript lines, oldest first.

use salestrainer_runtime::names;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Condition,
};

use super::entities::{comment, segment};

/// The resource name of comment `id` of a session.
pub fn comment_name_of(organization: &str, session_id: &str, id: &str) -> String {
    format!(
        "{}/comments/{id}",
        names::child_name(organization, "sessions", session_id)
    )
}

/// The resource name of a stored comment.
pub fn comment_name(c: &comment::Model) -> String {
    comment_name_of(&c.organization, &c.session_id, &c.id)
}

/// The resource name of the comment `c` answers; empty for a new thread.
pub fn reply_to_name(c: &comment::Model) -> String {
    if c.reply_to.is_empty() {
        String::new()
    } else {
        comment_name_of(&c.organization, &c.session_id, &c.reply_to)
    }
}

pub async fn insert_comment<C: ConnectionTrait>(
    db: &C,
    m: comment::Model,
) -> Result<comment::Model, DbErr> {
    use sea_orm::IntoActiveModel;
    comment::Entity::insert(m.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(m)
}

pub async fn comment<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    id: &str,
) -> Result<Option<comment::Model>, DbErr> {
    comment::Entity::find_by_id(id.to_owned())
        .filter(comment::Column::SessionId.eq(session_id))
        .one(db)
        .await
}

pub async fn count_comments<C: ConnectionTrait>(db: &C, session_id: &str) -> Result<u64, DbErr> {
    comment::Entity::find()
        .filter(comment::Column::SessionId.eq(session_id))
        .count(db)
        .await
}

/// Up to `limit` comments of a session after the key `(create_us, id)` (exclusive), oldest
/// first: a page of ListComments, or what a watch has not pushed yet.
pub async fn comments_after<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<comment::Model>, DbErr> {
    let mut q = comment::Entity::find().filter(comment::Column::SessionId.eq(session_id));
    if let Some((at, id)) = after {
        q = q.filter(
            Condition::any().add(comment::Column::CreateUs.gt(at)).add(
                Condition::all()
                    .add(comment::Column::CreateUs.eq(at))
                    .add(comment::Column::Id.gt(id)),
            ),
        );
    }
    q.order_by(comment::Column::CreateUs, Order::Asc)
        .order_by(comment::Column::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
}

/// The keys `(create_us, id)` of a session's comments, oldest first: what a watch has seen
/// when it starts, and what is left after deletions.
pub async fn comment_keys<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
) -> Result<Vec<(i64, String)>, DbErr> {
    comment::Entity::find()
        .select_only()
        .column(comment::Column::CreateUs)
        .column(comment::Column::Id)
        .filter(comment::Column::SessionId.eq(session_id))
        .order_by(comment::Column::CreateUs, Order::Asc)
        .order_by(comment::Column::Id, Order::Asc)
        .into_tuple()
        .all(db)
        .await
}

/// The 0-based position of a segment in its session's transcript.
pub async fn segment_position<C: ConnectionTrait>(
    db: &C,
    s: &segment::Model,
) -> Result<u64, DbErr> {
    segment::Entity::find()
        .filter(segment::Column::SessionId.eq(s.session_id.clone()))
        .filter(segment::Column::Seq.lt(s.seq))
        .count(db)
        .await
}

/// Deletes a comment and every reply under it (replies of replies too). Returns the rows that
/// went, the comment first.
pub async fn delete_comment_thread<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    id: &str,
) -> Result<Vec<comment::Model>, DbErr> {
    // A session holds at most max_comments_per_session rows: walking them in memory is cheap.
    let all = comment::Entity::find()
        .filter(comment::Column::SessionId.eq(session_id))
        .all(db)
        .await?;
    let mut doomed: Vec<comment::Model> = all.iter().filter(|c| c.id == id).cloned().collect();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i].id.clone();
        doomed.extend(all.iter().filter(|c| c.reply_to == parent).cloned());
        i += 1;
    }
    comment::Entity::delete_many()
        .filter(comment::Column::SessionId.eq(session_id))
        .filter(comment::Column::Id.is_in(doomed.iter().map(|c| c.id.clone())))
        .exec(db)
        .await?;
    Ok(doomed)
}
