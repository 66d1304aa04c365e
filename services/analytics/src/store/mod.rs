//! Tables owned by the analytics service, their migrations, and the SQL that reads and
//! writes them. Plain SQL that SQLite and PostgreSQL both accept; `?` placeholders are
//! renumbered for PostgreSQL by [`stmt`].

pub mod certifications;
pub mod coaching;
pub mod ingest;
mod m0002_origins;
mod m0003_override_rev;
mod m0005_criteria;
mod m0007_reconcile;
mod m0008_unended;
pub mod query;
pub mod reconcile;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager, async_trait};

use crate::domain::{Drill, Fact, Grade, Origin};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // The outbox carries this service's events; the inbox makes its consumers idempotent.
        vec![
            Box::new(salestrainer_bus::CreateOutbox),
            Box::new(salestrainer_bus::CreateInbox),
            Box::new(ReadModel),
            Box::new(m0002_origins::Origins),
            Box::new(m0003_override_rev::FactOverrideRevision),
            Box::new(certifications::CertificationRevocations),
            Box::new(m0005_criteria::FactCriteria),
            Box::new(coaching::CommentFacts),
            Box::new(m0007_reconcile::ReconcileIndexes),
            Box::new(m0008_unended::UnendedIndex),
        ]
    }
}

/// The read model: facts, daily rollups per dimension, skills, usage, assignment progress,
/// display names. Counts and sums only (never averages), so any range adds up.
pub struct ReadModel;

impl sea_orm_migration::MigrationName for ReadModel {
    fn name(&self) -> &str {
        "m0001_analytics_read_model"
    }
}

/// Types both backends understand (SQLite maps them by affinity).
const DDL: &[&str] = &[
    "CREATE TABLE analytics_facts (
        session TEXT NOT NULL PRIMARY KEY,
        org TEXT NOT NULL,
        trainee TEXT NOT NULL DEFAULT '',
        scenario TEXT NOT NULL DEFAULT '',
        assignment TEXT NOT NULL DEFAULT '',
        start_us BIGINT NULL,
        duration_ms BIGINT NULL,
        ended BIGINT NOT NULL DEFAULT 0,
        cancelled BIGINT NOT NULL DEFAULT 0,
        grading_failed BIGINT NOT NULL DEFAULT 0,
        graded BIGINT NOT NULL DEFAULT 0,
        evaluation TEXT NOT NULL DEFAULT '',
        score_milli BIGINT NULL,
        passed BIGINT NOT NULL DEFAULT 0,
        closed BIGINT NOT NULL DEFAULT 0,
        graded_us BIGINT NULL,
        skills TEXT NOT NULL DEFAULT '[]',
        superseded TEXT NOT NULL DEFAULT '[]'
    )",
    // Partial-day edges and multi-filter summaries scan facts by start time.
    "CREATE INDEX analytics_facts_org_start ON analytics_facts (org, start_us)",
    "CREATE INDEX analytics_facts_trainee_start ON analytics_facts (org, trainee, start_us)",
    "CREATE INDEX analytics_facts_scenario_start ON analytics_facts (org, scenario, start_us)",
    // Assignment progress recomputation.
    "CREATE INDEX analytics_facts_assignment ON analytics_facts (org, assignment, trainee)",
    // Recent evaluations of a trainee, newest first.
    "CREATE INDEX analytics_facts_trainee_graded ON analytics_facts (org, trainee, graded_us)",
    // dim: o = organization (dim_key ''), t = trainee, s = scenario, a = assignment.
    "CREATE TABLE analytics_daily (
        org TEXT NOT NULL,
        dim TEXT NOT NULL,
        dim_key TEXT NOT NULL,
        day BIGINT NOT NULL,
        sessions BIGINT NOT NULL DEFAULT 0,
        duration_ms_sum BIGINT NOT NULL DEFAULT 0,
        duration_n BIGINT NOT NULL DEFAULT 0,
        graded BIGINT NOT NULL DEFAULT 0,
        score_milli_sum BIGINT NOT NULL DEFAULT 0,
        passed BIGINT NOT NULL DEFAULT 0,
        closed BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (org, dim, dim_key, day)
    )",
    // The leaderboard reads every trainee of an organization over a day range.
    "CREATE INDEX analytics_daily_org_dim_day ON analytics_daily (org, dim, day)",
    "CREATE TABLE analytics_skill_daily (
        org TEXT NOT NULL,
        dim TEXT NOT NULL,
        dim_key TEXT NOT NULL,
        day BIGINT NOT NULL,
        skill TEXT NOT NULL,
        score_milli_sum BIGINT NOT NULL DEFAULT 0,
        samples BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (org, dim, dim_key, day, skill)
    )",
    "CREATE TABLE analytics_usage_daily (
        org TEXT NOT NULL,
        day BIGINT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        cost_micros BIGINT NOT NULL DEFAULT 0,
        requests BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (org, day, provider, model)
    )",
    "CREATE TABLE analytics_assignment_progress (
        org TEXT NOT NULL,
        assignment TEXT NOT NULL,
        trainee TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        best_milli BIGINT NOT NULL,
        passed_any BIGINT NOT NULL,
        last_attempt_us BIGINT NULL,
        PRIMARY KEY (org, assignment, trainee)
    )",
    // Display names from ConfigChanged; members also as soon as an event names them, which
    // is how an unknown trainee is told apart from one without sessions in a range.
    "CREATE TABLE analytics_names (
        resource TEXT NOT NULL PRIMARY KEY,
        org TEXT NOT NULL,
        kind TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT ''
    )",
];

#[async_trait::async_trait]
impl MigrationTrait for ReadModel {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in DDL {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in [
            "analytics_names",
            "analytics_assignment_progress",
            "analytics_usage_daily",
            "analytics_skill_daily",
            "analytics_daily",
            "analytics_facts",
        ] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}

/// A statement with `?` placeholders, renumbered to `$n` on PostgreSQL.
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `?, ?, …` for `n` values.
pub fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) fn get_i64(row: &QueryResult, col: &str) -> Result<i64, DbErr> {
    row.try_get::<Option<i64>>("", col).map(|v| v.unwrap_or(0))
}

pub(crate) fn get_opt_i64(row: &QueryResult, col: &str) -> Result<Option<i64>, DbErr> {
    row.try_get::<Option<i64>>("", col)
}

pub(crate) fn get_str(row: &QueryResult, col: &str) -> Result<String, DbErr> {
    row.try_get::<Option<String>>("", col)
        .map(|v| v.unwrap_or_default())
}

pub(crate) const FACT_COLUMNS: &str = "session, org, trainee, scenario, assignment, start_us, \
     duration_ms, ended, cancelled, grading_failed, graded, evaluation, score_milli, passed, \
     closed, graded_us, skills, superseded, real_call, drill_evaluation, drill_criterion, \
     drill_skill, drill_before_milli, override_rev, criteria";

/// Columns in [`FACT_COLUMNS`] (one value each in [`fact_values`]).
pub(crate) const FACT_COLUMN_COUNT: usize = 25;

pub(crate) fn fact_from_row(row: &QueryResult) -> Result<Fact, DbErr> {
    let bad = |e: serde_json::Error| DbErr::Custom(format!("analytics_facts json: {e}"));
    let grade = if get_i64(row, "graded")? == 1 {
        Some(Grade {
            evaluation: get_str(row, "evaluation")?,
            score_milli: get_i64(row, "score_milli")?,
            passed: get_i64(row, "passed")? == 1,
            closed: get_i64(row, "closed")? == 1,
            graded_us: get_i64(row, "graded_us")?,
            skills: serde_json::from_str(&get_str(row, "skills")?).map_err(bad)?,
            override_rev: get_i64(row, "override_rev")?,
            criteria: serde_json::from_str(&get_str(row, "criteria")?).map_err(bad)?,
        })
    } else {
        None
    };
    Ok(Fact {
        session: get_str(row, "session")?,
        org: get_str(row, "org")?,
        trainee: get_str(row, "trainee")?,
        scenario: get_str(row, "scenario")?,
        assignment: get_str(row, "assignment")?,
        start_us: get_opt_i64(row, "start_us")?,
        duration_ms: get_opt_i64(row, "duration_ms")?,
        ended: get_i64(row, "ended")? == 1,
        cancelled: get_i64(row, "cancelled")? == 1,
        grading_failed: get_i64(row, "grading_failed")? == 1,
        grade,
        superseded: serde_json::from_str(&get_str(row, "superseded")?).map_err(bad)?,
        origin: Origin {
            real_call: get_i64(row, "real_call")? == 1,
            drill: match get_str(row, "drill_evaluation")? {
                e if e.is_empty() => None,
                evaluation => Some(Drill {
                    evaluation,
                    criterion: get_str(row, "drill_criterion")?,
                    skill: get_str(row, "drill_skill")?,
                    before_milli: get_i64(row, "drill_before_milli")?,
                }),
            },
        },
    })
}

pub(crate) fn fact_values(f: &Fact) -> Vec<Value> {
    let g = f.grade.as_ref();
    let skills = g
        .map(|g| serde_json::to_string(&g.skills).unwrap_or_else(|_| "[]".into()))
        .unwrap_or_else(|| "[]".into());
    let criteria = g
        .map(|g| serde_json::to_string(&g.criteria).unwrap_or_else(|_| "[]".into()))
        .unwrap_or_else(|| "[]".into());
    let superseded = serde_json::to_string(&f.superseded).unwrap_or_else(|_| "[]".into());
    let drill = f.origin.drill.as_ref();
    vec![
        f.session.clone().into(),
        f.org.clone().into(),
        f.trainee.clone().into(),
        f.scenario.clone().into(),
        f.assignment.clone().into(),
        f.start_us.into(),
        f.duration_ms.into(),
        i64::from(f.ended).into(),
        i64::from(f.cancelled).into(),
        i64::from(f.grading_failed).into(),
        i64::from(g.is_some()).into(),
        g.map(|g| g.evaluation.clone()).unwrap_or_default().into(),
        g.map(|g| g.score_milli).into(),
        i64::from(g.is_some_and(|g| g.passed)).into(),
        i64::from(g.is_some_and(|g| g.closed)).into(),
        g.map(|g| g.graded_us).into(),
        skills.into(),
        superseded.into(),
        i64::from(f.origin.real_call).into(),
        drill
            .map(|d| d.evaluation.clone())
            .unwrap_or_default()
            .into(),
        drill
            .map(|d| d.criterion.clone())
            .unwrap_or_default()
            .into(),
        drill.map(|d| d.skill.clone()).unwrap_or_default().into(),
        drill.map(|d| d.before_milli).into(),
        g.map_or(0, |g| g.override_rev).into(),
        criteria.into(),
    ]
}

/// Whether an error is worth retrying the whole transaction for (lock conflicts).
pub fn is_retryable(err: &DbErr) -> bool {
    let s = err.to_string();
    s.contains("deadlock")
        || s.contains("could not serialize")
        || s.contains("database is locked")
        || s.contains("40P01")
        || s.contains("40001")
}

#[allow(dead_code)]
pub(crate) async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(stmt(db.get_database_backend(), sql, values))
        .await?
        .rows_affected())
}
