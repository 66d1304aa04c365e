//! The `call_comments` table: comments on a session's transcript lines, oldest first.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Condition,
};

use super::entities::comment;

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

/// The key of a session's newest comment, where a watch starts pushing from.
pub async fn newest_comment_key<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
) -> Result<Option<(i64, String)>, DbErr> {
    Ok(comment::Entity::find()
        .filter(comment::Column::SessionId.eq(session_id))
        .order_by(comment::Column::CreateUs, Order::Desc)
        .order_by(comment::Column::Id, Order::Desc)
        .one(db)
        .await?
        .map(|c| (c.create_us, c.id)))
}

/// Deletes a comment and every reply under it (replies of replies too). Returns how many rows
/// went.
pub async fn delete_comment_thread<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    id: &str,
) -> Result<u64, DbErr> {
    // A session holds at most max_comments_per_session rows: walking them in memory is cheap.
    let all: Vec<(String, String)> = comment::Entity::find()
        .select_only()
        .column(comment::Column::Id)
        .column(comment::Column::ReplyTo)
        .filter(comment::Column::SessionId.eq(session_id))
        .into_tuple()
        .all(db)
        .await?;
    let mut doomed = vec![id.to_owned()];
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i].clone();
        doomed.extend(
            all.iter()
                .filter(|(_, reply_to)| *reply_to == parent)
                .map(|(child, _)| child.clone()),
        );
        i += 1;
    }
    let r = comment::Entity::delete_many()
        .filter(comment::Column::SessionId.eq(session_id))
        .filter(comment::Column::Id.is_in(doomed))
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}
