//! Comments on a session's transcript lines: create, list, delete. Managers and admins comment
//! on any session of their organization; the trainee who owns a session reads its comments and
//! may comment (answer) too; another trainee's session answers NOT_FOUND, as does another
//! organization's. A new or deleted comment wakes the session's watchers (`watch`), on every
//! replica, and puts CommentAdded or CommentDeleted in the outbox in the same transaction.

use salestrainer_proto::call as pb;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Role, Violations,
    db::begin_write,
    events::{enqueue, enqueue_many},
    names, paging,
    time::now_us,
};

use super::{CallApp, member_name};
use crate::store::{self, comment, session};

/// A page of comments, oldest first.
pub struct Page {
    pub comments: Vec<comment::Model>,
    pub next_page_token: String,
}

/// The session named by `name` (field `field`) as the caller may see it for comments.
async fn visible_session(
    core: &CallApp,
    p: &Principal,
    name: &str,
    field: &str,
) -> ApiResult<session::Model> {
    let m = super::load_in_organization(core, p, name, field).await?;
    // Another trainee's session does not exist for a trainee: its name says nothing.
    if p.role == Role::Trainee && m.trainee != member_name(p) {
        return Err(ApiError::NotFound(format!("session {name}")));
    }
    Ok(m)
}

/// CreateComment: a comment anchored to a transcript segment, or a reply to one.
pub async fn create(
    core: &CallApp,
    p: &Principal,
    r: pb::CreateCommentRequest,
) -> ApiResult<comment::Model> {
    if p.is_service() {
        return Err(ApiError::PermissionDenied(
            "comments are written by members of the organization".into(),
        ));
    }
    let s = visible_session(core, p, &r.parent, "parent").await?;
    let c = r.comment.unwrap_or_default();
    let body = c.body.trim();
    let mut v = Violations::new();
    v.check(body.is_empty(), "comment.body", "required");
    let reply_to = if c.reply_to.is_empty() {
        None
    } else {
        match names::parse_nested(&c.reply_to, "comments") {
            Some((parent, id)) if parent == r.parent => Some(id.to_owned()),
            _ => {
                v.add(
                    "comment.reply_to",
                    "must be a comment of the same session ({parent}/comments/{comment})",
                );
                None
            }
        }
    };
    v.check(
        c.segment_id.is_empty() && c.reply_to.is_empty(),
        "comment.segment_id",
        "required: the transcript line the comment is anchored to",
    );
    v.into_result()?;
    let max = core.settings.max_comment_bytes();
    if body.len() as u64 > max {
        return Err(ApiError::ResourceExhausted(format!(
            "comment.body is {} bytes, over max_comment_bytes = {max}; nothing was written",
            body.len()
        )));
    }
    let db = core.db()?;
    // A reply sits where its parent does.
    let mut segment_id = c.segment_id.clone();
    if let Some(parent) = &reply_to {
        let parent = store::comment(db, &s.id, parent).await?.ok_or_else(|| {
            ApiError::invalid("comment.reply_to", "no such comment on this session")
        })?;
        if segment_id.is_empty() {
            segment_id = parent.segment_id;
        } else if segment_id != parent.segment_id {
            return Err(ApiError::invalid(
                "comment.segment_id",
                "a reply is anchored where the comment it answers is; leave it empty",
            ));
        }
    }
    let Some(segment) = store::segment(db, &s.id, &segment_id).await? else {
        return Err(ApiError::invalid(
            "comment.segment_id",
            "no transcript segment with this id in the session",
        ));
    };
    let segment_index = store::segment_position(db, &segment).await?;
    let txn = begin_write(db).await?;
    let limit = core.settings.max_comments_per_session();
    if store::count_comments(&txn, &s.id).await? >= limit {
        return Err(ApiError::ResourceExhausted(format!(
            "the session already holds the most comments allowed \
             (max_comments_per_session = {limit}); nothing was written"
        )));
    }
    let m = store::insert_comment(
        &txn,
        comment::Model {
            id: names::generate_id("c"),
            session_id: s.id.clone(),
            organization: s.organization.clone(),
            author: member_name(p),
            body: body.to_owned(),
            segment_id,
            reply_to: reply_to.unwrap_or_default(),
            create_us: now_us(),
        },
    )
    .await?;
    enqueue(
        &txn,
        &store::comment_added_event(&s, &m, p.role, segment_index),
    )
    .await?;
    txn.commit().await?;
    core.changed(&s, true);
    Ok(m)
}

/// ListComments: a session's comments, oldest first.
pub async fn list(core: &CallApp, p: &Principal, r: pb::ListCommentsRequest) -> ApiResult<Page> {
    let s = visible_session(core, p, &r.parent, "parent").await?;
    let size = paging::page_size(r.page_size)?;
    let query = paging::fingerprint(&["comments", &r.parent]);
    let after = paging::decode(&r.page_token, query)?
        .map(|k| {
            k.split_once('.')
                .and_then(|(at, id)| Some((at.parse().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::invalid("page_token", "malformed page token"))
        })
        .transpose()?;
    let rows = store::comments_after(core.db()?, &s.id, after, size + 1).await?;
    let (comments, next_page_token) =
        paging::split_page(rows, size, query, |c| format!("{}.{}", c.create_us, c.id));
    Ok(Page {
        comments,
        next_page_token,
    })
}

/// DeleteComment: its author, or an admin, deletes it with the replies under it.
pub async fn delete(core: &CallApp, p: &Principal, r: pb::DeleteCommentRequest) -> ApiResult<()> {
    let (parent, id) = names::parse_nested(&r.name, "comments").ok_or_else(|| {
        ApiError::invalid(
            "name",
            "must be organizations/{organization}/sessions/{session}/comments/{comment}",
        )
    })?;
    let s = visible_session(core, p, parent, "name").await?;
    let db = core.db()?;
    let c = store::comment(db, &s.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("comment {}", r.name)))?;
    if p.role != Role::Admin && c.author != member_name(p) {
        return Err(ApiError::PermissionDenied(
            "only the comment's author or an admin may delete it".into(),
        ));
    }
    let txn = begin_write(db).await?;
    let deleted = store::delete_comment_thread(&txn, &s.id, &c.id).await?;
    let by = member_name(p);
    let events: Vec<_> = deleted
        .iter()
        .map(|d| store::comment_deleted_event(&s, d, &by))
        .collect();
    enqueue_many(&txn, &events).await?;
    txn.commit().await?;
    core.changed(&s, true);
    Ok(())
}
