//! The comments fact table: one row per comment on a session's transcript, from CommentAdded
//! and CommentDeleted. A deletion leaves the row marked deleted, so an addition that arrives
//! after its deletion (redelivery, reordering) cannot bring the comment back.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbErr, Value};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

use super::{get_i64, get_opt_i64, get_str, stmt};
use crate::domain::{coaching::CommentFact, summary::Range};

/// The comments table.
pub struct CommentFacts;

impl sea_orm_migration::MigrationName for CommentFacts {
    fn name(&self) -> &str {
        "m0006_analytics_comments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CommentFacts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE analytics_comments (
                comment TEXT NOT NULL PRIMARY KEY,
                org TEXT NOT NULL,
                session TEXT NOT NULL,
                trainee TEXT NOT NULL,
                author TEXT NOT NULL,
                by_trainee BIGINT NOT NULL DEFAULT 0,
                reply_to TEXT NOT NULL DEFAULT '',
                create_us BIGINT NULL,
                deleted BIGINT NOT NULL DEFAULT 0
            )",
        )
        .await?;
        // Coaching figures read an organization's (or a trainee's) comments by create time.
        db.execute_unprepared(
            "CREATE INDEX analytics_comments_org_time ON analytics_comments (org, create_us)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX analytics_comments_trainee_time ON analytics_comments \
             (org, trainee, create_us)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS analytics_comments")
            .await?;
        Ok(())
    }
}

/// Records a comment added or deleted (inside the caller's transaction).
pub async fn apply_comment<C: ConnectionTrait>(
    db: &C,
    org: &str,
    f: &CommentFact,
) -> Result<(), DbErr> {
    // An addition never overwrites (the row may already carry its deletion); a deletion
    // marks the row, creating it if its addition has not arrived yet.
    let on_conflict = if f.deleted {
        "DO UPDATE SET deleted = 1"
    } else {
        "DO NOTHING"
    };
    db.execute_raw(stmt(
        db.get_database_backend(),
        &format!(
            "INSERT INTO analytics_comments (comment, org, session, trainee, author, by_trainee, \
             reply_to, create_us, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (comment) {on_conflict}"
        ),
        vec![
            f.comment.clone().into(),
            org.into(),
            f.session.clone().into(),
            f.trainee.clone().into(),
            f.author.clone().into(),
            i64::from(f.by_trainee).into(),
            f.reply_to.clone().into(),
            f.create_us.into(),
            i64::from(f.deleted).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The condition (and its value) narrowing comments to one trainee's sessions, if given.
fn trainee_filter(values: &mut Vec<Value>, trainee: Option<&str>) -> &'static str {
    match trainee {
        Some(t) => {
            values.push(t.into());
            " AND trainee = ?"
        }
        None => "",
    }
}

/// The live comments of an organization written in `range` (on sessions of one trainee, if
/// given).
pub async fn comments_in_range<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    trainee: Option<&str>,
) -> Result<Vec<CommentFact>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let extra = trainee_filter(&mut values, trainee);
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT comment, session, trainee, author, by_trainee, reply_to, create_us \
                 FROM analytics_comments WHERE org = ? AND create_us >= ? AND create_us < ? \
                 AND deleted = 0{extra}"
            ),
            values,
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CommentFact {
                comment: get_str(r, "comment")?,
                session: get_str(r, "session")?,
                trainee: get_str(r, "trainee")?,
                author: get_str(r, "author")?,
                by_trainee: get_i64(r, "by_trainee")? == 1,
                reply_to: get_str(r, "reply_to")?,
                create_us: get_opt_i64(r, "create_us")?,
                deleted: false,
            })
        })
        .collect()
}

/// The comments a session's trainee has answered (a live reply of theirs points at them),
/// among comments written from `since` on (a reply never precedes what it answers).
pub async fn answered_comments<C: ConnectionTrait>(
    db: &C,
    org: &str,
    since_us: i64,
    trainee: Option<&str>,
) -> Result<BTreeSet<String>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), since_us.into()];
    let extra = trainee_filter(&mut values, trainee);
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT DISTINCT reply_to FROM analytics_comments WHERE org = ? \
                 AND create_us >= ? AND by_trainee = 1 AND deleted = 0 AND reply_to <> ''{extra}"
            ),
            values,
        ))
        .await?;
    rows.iter().map(|r| get_str(r, "reply_to")).collect()
}
