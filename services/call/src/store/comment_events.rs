//! The events a comment's creation and deletion put in the outbox (in the same transaction as
//! the write): who commented on whose session and where, never the text.

use salestrainer_proto::events as ev;
use salestrainer_runtime::{Role, events::new_event, names, time::timestamp};

use super::{PRODUCER, comment, comment_name, reply_to_name, session, session_name};

/// The role an event reports for a member's role.
fn member_role(role: Role) -> ev::MemberRole {
    match role {
        Role::Admin => ev::MemberRole::Admin,
        Role::Manager => ev::MemberRole::Manager,
        Role::Trainee => ev::MemberRole::Trainee,
        Role::Service => ev::MemberRole::Unspecified,
    }
}

/// CommentAdded for `c`, written by a member with `role`, anchored at transcript position
/// `segment_index`.
pub fn comment_added_event(
    s: &session::Model,
    c: &comment::Model,
    role: Role,
    segment_index: u64,
) -> ev::Event {
    new_event(
        &names::organization_name(&s.organization),
        PRODUCER,
        ev::event::Payload::CommentAdded(ev::CommentAdded {
            comment: comment_name(c),
            session: session_name(s),
            trainee: s.trainee.clone(),
            author: c.author.clone(),
            author_role: member_role(role) as i32,
            by_trainee: c.author == s.trainee,
            segment_id: c.segment_id.clone(),
            segment_index: i64::try_from(segment_index).unwrap_or(i64::MAX),
            reply_to: reply_to_name(c),
            create_time: Some(timestamp(c.create_us)),
        }),
    )
}

/// CommentDeleted for `c`, deleted (directly, or with the comment it answers) by `deleted_by`.
pub fn comment_deleted_event(
    s: &session::Model,
    c: &comment::Model,
    deleted_by: &str,
) -> ev::Event {
    new_event(
        &names::organization_name(&s.organization),
        PRODUCER,
        ev::event::Payload::CommentDeleted(ev::CommentDeleted {
            comment: comment_name(c),
            session: session_name(s),
            trainee: s.trainee.clone(),
            author: c.author.clone(),
            by_trainee: c.author == s.trainee,
            reply_to: reply_to_name(c),
            create_time: Some(timestamp(c.create_us)),
            deleted_by: deleted_by.to_owned(),
        }),
    )
}
