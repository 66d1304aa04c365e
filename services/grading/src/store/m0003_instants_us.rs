//! Issue 10, one unit in the stores: grading's instants move from epoch milliseconds to epoch
//! microseconds, like every other service's, under names ending in `_us`. Durations stay
//! milliseconds (`session_duration_ms`, `latency_ms`).
//!
//! Each instant column is renamed (`ALTER TABLE … RENAME COLUMN`: PostgreSQL, SQLite ≥ 3.25;
//! the indexes on a renamed column follow it on both) and its values multiplied by 1000; NULL
//! stays NULL. The attempt log (JSON in `grading_jobs.attempt_log`) keeps two instants per
//! attempt, `start_ms`/`end_ms`: rewritten as `start_us`/`end_us`.

use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::prelude::*;

pub struct GradingInstantsInMicros;

impl MigrationName for GradingInstantsInMicros {
    fn name(&self) -> &str {
        "m0003_grading_instants_us"
    }
}

/// (table, column in milliseconds, its name in microseconds).
pub(super) const RENAMED: &[(&str, &str, &str)] = &[
    ("grading_jobs", "session_start_ms", "session_start_us"),
    ("grading_jobs", "next_attempt_at", "next_attempt_at_us"),
    ("grading_jobs", "lease_until", "lease_until_us"),
    ("grading_jobs", "enqueued_at", "enqueued_at_us"),
    ("grading_jobs", "create_ms", "create_us"),
    ("grading_jobs", "update_ms", "update_us"),
    ("evaluations", "create_ms", "create_us"),
    ("llm_usage", "create_ms", "create_us"),
];

/// The attempt log's instants: (key in milliseconds, key in microseconds).
const LOG_KEYS: [(&str, &str); 2] = [("start_ms", "start_us"), ("end_ms", "end_us")];

/// One attempt log (a JSON array of attempts) with its instants in microseconds (`to_us`) or
/// back in milliseconds; `None` when it is not an array of objects (left as it is: it reads as
/// an empty log either way).
fn convert_log(log: &str, to_us: bool) -> Option<String> {
    let mut entries: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(log).ok()?;
    for entry in &mut entries {
        for (ms_key, us_key) in LOG_KEYS {
            let (from, to) = if to_us {
                (ms_key, us_key)
            } else {
                (us_key, ms_key)
            };
            if let Some(v) = entry.remove(from) {
                let n = v.as_i64().unwrap_or(0);
                let n = if to_us {
                    n.saturating_mul(1000)
                } else {
                    n.div_euclid(1000)
                };
                entry.insert(to.to_owned(), n.into());
            }
        }
    }
    serde_json::to_string(&entries).ok()
}

/// Rewrites every non-empty attempt log with [`convert_log`].
async fn convert_logs(manager: &SchemaManager<'_>, to_us: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let logs = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, attempt_log FROM grading_jobs WHERE attempt_log <> '[]'",
        ))
        .await?;
    for row in logs {
        let id: String = row.try_get("", "id")?;
        let log: String = row.try_get("", "attempt_log")?;
        let Some(converted) = convert_log(&log, to_us) else {
            continue;
        };
        let update = Query::update()
            .table(Alias::new("grading_jobs"))
            .value(Alias::new("attempt_log"), converted)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        db.execute(&update).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for GradingInstantsInMicros {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (table, from, to) in RENAMED {
            db.execute_unprepared(&format!("ALTER TABLE {table} RENAME COLUMN {from} TO {to}"))
                .await?;
            db.execute_unprepared(&format!("UPDATE {table} SET {to} = {to} * 1000"))
                .await?;
        }
        convert_logs(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to milliseconds (sub-millisecond precision is dropped).
        let db = manager.get_connection();
        for (table, from, to) in RENAMED {
            db.execute_unprepared(&format!("UPDATE {table} SET {to} = {to} / 1000"))
                .await?;
            db.execute_unprepared(&format!("ALTER TABLE {table} RENAME COLUMN {to} TO {from}"))
                .await?;
        }
        convert_logs(manager, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::convert_log;

    #[test]
    fn attempt_logs_move_to_micros() {
        let log = r#"[{"attempt":2,"start_ms":1700000000123,"end_ms":1700000001000,"step":3,"error":"x","retryable":true}]"#;
        let v: serde_json::Value = serde_json::from_str(&convert_log(log, true).unwrap()).unwrap();
        assert_eq!(v[0]["start_us"], 1_700_000_000_123_000_i64);
        assert_eq!(v[0]["end_us"], 1_700_000_001_000_000_i64);
        assert_eq!(v[0]["attempt"], 2);
        assert!(v[0].get("start_ms").is_none());
        assert_eq!(convert_log("not json", true), None);
        let back = convert_log(&convert_log(log, true).unwrap(), false).unwrap();
        let v: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(v[0]["start_ms"], 1_700_000_000_123_i64);
        assert_eq!(v[0]["end_ms"], 1_700_000_001_000_i64);
    }
}
