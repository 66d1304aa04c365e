//! The reconciler's reads: keyset pages over the facts it checks with grading.

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{get_i64, get_opt_i64, get_str, stmt};

/// A fact the reconciler looks at: its session, the key it is paged by, and its grade as
/// analytics has it (empty evaluation: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub session: String,
    /// Organization id.
    pub org: String,
    /// `start_us` (ungraded and unended facts) or `graded_us` (graded ones).
    pub key: i64,
    /// When the session ended, when known (its start plus its duration).
    pub end_us: Option<i64>,
    pub evaluation: String,
    pub override_rev: i64,
}

/// A page position: the (key, session) of the last fact of the previous page.
pub type After = Option<(i64, String)>;

async fn page<C: ConnectionTrait>(
    db: &C,
    key: &str,
    filter: &str,
    mut values: Vec<Value>,
    after: After,
    limit: u64,
) -> Result<Vec<Checked>, DbErr> {
    let keyset = match after {
        Some((k, s)) => {
            values.extend([k.into(), k.into(), s.into()]);
            format!(" AND ({key} > ? OR ({key} = ? AND session > ?))")
        }
        None => String::new(),
    };
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT session, org, {key} AS k, start_us, duration_ms, evaluation, override_rev \
                 FROM analytics_facts WHERE {filter}{keyset} ORDER BY {key}, session LIMIT ?"
            ),
            values,
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let start = get_opt_i64(r, "start_us")?;
            let length = get_opt_i64(r, "duration_ms")?.unwrap_or(0);
            Ok(Checked {
                session: get_str(r, "session")?,
                org: get_str(r, "org")?,
                key: get_i64(r, "k")?,
                end_us: start.map(|s| s.saturating_add(length.saturating_mul(1000))),
                evaluation: get_str(r, "evaluation")?,
                override_rev: get_i64(r, "override_rev")?,
            })
        })
        .collect()
}

/// Facts ended (not cancelled) with neither a grade nor a failure, started before
/// `before_us`, by start time (the partial index `analytics_facts_ungraded`).
pub async fn ungraded<C: ConnectionTrait>(
    db: &C,
    before_us: i64,
    after: After,
    limit: u64,
) -> Result<Vec<Checked>, DbErr> {
    page(
        db,
        "start_us",
        "ended = 1 AND cancelled = 0 AND graded = 0 AND grading_failed = 0 AND start_us < ?",
        vec![before_us.into()],
        after,
        limit,
    )
    .await
}

/// Facts started before `before_us` that never ended (nor were graded, nor failed), by start
/// time (the partial index `analytics_facts_unended`): live sessions, and sessions whose
/// SessionEnded was lost.
pub async fn unended<C: ConnectionTrait>(
    db: &C,
    before_us: i64,
    after: After,
    limit: u64,
) -> Result<Vec<Checked>, DbErr> {
    page(
        db,
        "start_us",
        "ended = 0 AND cancelled = 0 AND graded = 0 AND grading_failed = 0 AND start_us < ?",
        vec![before_us.into()],
        after,
        limit,
    )
    .await
}

/// Graded facts whose grade dates from `[from_us, before_us)`, by grade time.
pub async fn graded_between<C: ConnectionTrait>(
    db: &C,
    from_us: i64,
    before_us: i64,
    after: After,
    limit: u64,
) -> Result<Vec<Checked>, DbErr> {
    page(
        db,
        "graded_us",
        "graded = 1 AND graded_us >= ? AND graded_us < ?",
        vec![from_us.into(), before_us.into()],
        after,
        limit,
    )
    .await
}
