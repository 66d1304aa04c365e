//! Reads of the read model. Rollup reads touch one row per day (and skill); fact reads are
//! for partial-day edges, filter combinations without a rollup, and recent evaluations.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{FACT_COLUMNS, fact_from_row, get_i64, get_opt_i64, get_str, marks, stmt};
use crate::domain::{DayStats, Dim, Fact, Grade, UsageStats, summary::Range};

/// Optional filters, as full resource names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    pub trainee: Option<String>,
    pub scenario: Option<String>,
    pub assignment: Option<String>,
    /// Real calls instead of practice calls (summaries never mix the two).
    pub real_call: bool,
}

impl Filters {
    /// The rollup that answers these filters, if one does (at most one filter).
    pub fn rollup(&self) -> Option<(Dim, String)> {
        let (dim, key) = match (&self.trainee, &self.scenario, &self.assignment) {
            (None, None, None) => (Dim::Org, String::new()),
            (Some(t), None, None) => (Dim::Trainee, t.clone()),
            (None, Some(s), None) => (Dim::Scenario, s.clone()),
            (None, None, Some(a)) => (Dim::Assignment, a.clone()),
            _ => return None,
        };
        Some((dim.of(self.real_call), key))
    }

    fn sql(&self, values: &mut Vec<Value>) -> String {
        let mut sql = format!(" AND real_call = {}", i64::from(self.real_call));
        for (col, v) in [
            ("trainee", &self.trainee),
            ("scenario", &self.scenario),
            ("assignment", &self.assignment),
        ] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                values.push(v.clone().into());
            }
        }
        sql
    }
}

fn day_stats(row: &sea_orm::QueryResult) -> Result<DayStats, DbErr> {
    Ok(DayStats {
        sessions: get_i64(row, "sessions")?,
        duration_ms_sum: get_i64(row, "duration_ms_sum")?,
        duration_n: get_i64(row, "duration_n")?,
        graded: get_i64(row, "graded")?,
        score_milli_sum: get_i64(row, "score_milli_sum")?,
        passed: get_i64(row, "passed")?,
        closed: get_i64(row, "closed")?,
    })
}

/// Daily rows of one rollup for days `[d0, d1)`.
pub async fn daily<C: ConnectionTrait>(
    db: &C,
    org: &str,
    dim: Dim,
    key: &str,
    (d0, d1): (i64, i64),
) -> Result<BTreeMap<i64, DayStats>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT day, sessions, duration_ms_sum, duration_n, graded, score_milli_sum, passed, \
             closed FROM analytics_daily WHERE org = ? AND dim = ? AND dim_key = ? \
             AND day >= ? AND day < ?",
            vec![
                org.into(),
                dim.code().into(),
                key.into(),
                d0.into(),
                d1.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((get_i64(r, "day")?, day_stats(r)?)))
        .collect()
}

/// Per-skill sums of one rollup for days `[d0, d1)`.
pub async fn skills<C: ConnectionTrait>(
    db: &C,
    org: &str,
    dim: Dim,
    key: &str,
    (d0, d1): (i64, i64),
) -> Result<BTreeMap<String, (i64, i64)>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT skill, CAST(SUM(score_milli_sum) AS BIGINT) AS s, \
             CAST(SUM(samples) AS BIGINT) AS n FROM analytics_skill_daily \
             WHERE org = ? AND dim = ? AND dim_key = ? AND day >= ? AND day < ? GROUP BY skill",
            vec![
                org.into(),
                dim.code().into(),
                key.into(),
                d0.into(),
                d1.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((get_str(r, "skill")?, (get_i64(r, "s")?, get_i64(r, "n")?))))
        .collect()
}

/// Per-trainee totals over days `[d0, d1)` of practice calls, or of real calls (leaderboard).
pub async fn trainee_totals<C: ConnectionTrait>(
    db: &C,
    org: &str,
    real_call: bool,
    (d0, d1): (i64, i64),
) -> Result<BTreeMap<String, DayStats>, DbErr> {
    let cols = [
        "sessions",
        "duration_ms_sum",
        "duration_n",
        "graded",
        "score_milli_sum",
        "passed",
        "closed",
    ]
    .iter()
    .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
    .collect::<Vec<_>>()
    .join(", ");
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT dim_key, {cols} FROM analytics_daily WHERE org = ? AND dim = ? \
                 AND day >= ? AND day < ? GROUP BY dim_key"
            ),
            vec![
                org.into(),
                Dim::Trainee.of(real_call).code().into(),
                d0.into(),
                d1.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((get_str(r, "dim_key")?, day_stats(r)?)))
        .collect()
}

/// Facts whose session started in `range`, narrowed by `filters`.
pub async fn facts<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    filters: &Filters,
) -> Result<Vec<Fact>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let extra = filters.sql(&mut values);
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE org = ? AND start_us >= ? \
                 AND start_us < ?{extra}"
            ),
            values,
        ))
        .await?;
    rows.iter().map(fact_from_row).collect()
}

/// Per-day numbers of the facts in `range` (a partial day), aggregated by the database so
/// only one row per day travels; the same rule as `Fact::counted`/`Fact::stats`.
pub async fn fact_days<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    filters: &Filters,
) -> Result<BTreeMap<i64, DayStats>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let extra = filters.sql(&mut values);
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT start_us / {day} AS day, CAST(COUNT(*) AS BIGINT) AS sessions, \
                 CAST(SUM(COALESCE(duration_ms, 0)) AS BIGINT) AS duration_ms_sum, \
                 CAST(COUNT(duration_ms) AS BIGINT) AS duration_n, \
                 CAST(SUM(graded) AS BIGINT) AS graded, \
                 CAST(SUM(CASE WHEN graded = 1 THEN score_milli ELSE 0 END) AS BIGINT) AS score_milli_sum, \
                 CAST(SUM(CASE WHEN graded = 1 THEN passed ELSE 0 END) AS BIGINT) AS passed, \
                 CAST(SUM(CASE WHEN graded = 1 THEN closed ELSE 0 END) AS BIGINT) AS closed \
                 FROM analytics_facts WHERE org = ? AND start_us >= ? AND start_us < ? \
                 AND (graded = 1 OR cancelled = 0){extra} GROUP BY start_us / {day}",
                day = crate::domain::MICROS_PER_DAY
            ),
            values,
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((get_i64(r, "day")?, day_stats(r)?)))
        .collect()
}

/// Per-skill sums of the graded facts in `range` (a partial day).
pub async fn fact_skills<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    filters: &Filters,
) -> Result<BTreeMap<String, (i64, i64)>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let extra = filters.sql(&mut values);
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT skills FROM analytics_facts WHERE org = ? AND start_us >= ? \
                 AND start_us < ? AND graded = 1{extra}"
            ),
            values,
        ))
        .await?;
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let skills: Vec<(String, i64)> = serde_json::from_str(&get_str(r, "skills")?)
            .map_err(|e| DbErr::Custom(format!("analytics_facts json: {e}")))?;
        for (skill, score) in skills {
            let e = out.entry(skill).or_default();
            e.0 += score;
            e.1 += 1;
        }
    }
    Ok(out)
}

/// A trainee's newest graded sessions in `range`, newest grade first.
pub async fn recent_graded<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    filters: &Filters,
    limit: u64,
) -> Result<Vec<Fact>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let extra = filters.sql(&mut values);
    values.push((limit as i64).into());
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE org = ? AND start_us >= ? \
                 AND start_us < ? AND graded = 1{extra} ORDER BY graded_us DESC, session \
                 LIMIT ?"
            ),
            values,
        ))
        .await?;
    rows.iter().map(fact_from_row).collect()
}

/// The graded drill sessions started in `range` (of one trainee, if given).
pub async fn graded_drills<C: ConnectionTrait>(
    db: &C,
    org: &str,
    range: &Range,
    trainee: Option<&str>,
) -> Result<Vec<Fact>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), range.start_us.into(), range.end_us.into()];
    let mut extra = String::new();
    if let Some(t) = trainee {
        extra.push_str(" AND trainee = ?");
        values.push(t.into());
    }
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE org = ? AND start_us >= ? \
                 AND start_us < ? AND drill_criterion <> '' AND graded = 1{extra}"
            ),
            values,
        ))
        .await?;
    rows.iter().map(fact_from_row).collect()
}

/// The grades of those `evaluations` that are still their session's current grade.
pub async fn current_grades<C: ConnectionTrait>(
    db: &C,
    org: &str,
    evaluations: &[String],
) -> Result<HashMap<String, Grade>, DbErr> {
    let mut out = HashMap::new();
    let mut unique: Vec<&String> = evaluations.iter().collect();
    unique.sort();
    unique.dedup();
    for chunk in unique.chunks(200) {
        let mut values: Vec<Value> = vec![org.into()];
        values.extend(chunk.iter().map(|e| Value::from((*e).clone())));
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE org = ? AND graded = 1 \
                     AND evaluation IN ({})",
                    marks(chunk.len())
                ),
                values,
            ))
            .await?;
        for r in &rows {
            if let Some(g) = fact_from_row(r)?.grade {
                out.insert(g.evaluation.clone(), g);
            }
        }
    }
    Ok(out)
}

/// The graded practice sessions (neither drills nor real calls) of `trainees` that started
/// after `since_us`: the candidates for a drill's next practice session.
pub async fn practice_after<C: ConnectionTrait>(
    db: &C,
    org: &str,
    trainees: &[&str],
    since_us: i64,
) -> Result<Vec<Fact>, DbErr> {
    let mut unique: Vec<&str> = trainees.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut out = Vec::new();
    for chunk in unique.chunks(200) {
        let mut values: Vec<Value> = vec![org.into(), since_us.into()];
        values.extend(chunk.iter().map(|t| Value::from(*t)));
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE org = ? AND graded = 1 \
                     AND start_us > ? AND drill_evaluation = '' AND real_call = 0 \
                     AND trainee IN ({})",
                    marks(chunk.len())
                ),
                values,
            ))
            .await?;
        for r in &rows {
            out.push(fact_from_row(r)?);
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressRow {
    pub trainee: String,
    pub attempts: i64,
    pub best_milli: i64,
    pub passed_any: bool,
    pub last_attempt_us: Option<i64>,
}

pub async fn assignment_progress<C: ConnectionTrait>(
    db: &C,
    org: &str,
    assignment: &str,
) -> Result<Vec<ProgressRow>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT trainee, attempts, best_milli, passed_any, last_attempt_us \
             FROM analytics_assignment_progress WHERE org = ? AND assignment = ? ORDER BY trainee",
            vec![org.into(), assignment.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ProgressRow {
                trainee: get_str(r, "trainee")?,
                attempts: get_i64(r, "attempts")?,
                best_milli: get_i64(r, "best_milli")?,
                passed_any: get_i64(r, "passed_any")? == 1,
                last_attempt_us: get_opt_i64(r, "last_attempt_us")?,
            })
        })
        .collect()
}

/// Usage rows for days `[d0, d1)`, ordered by day, provider, model.
pub async fn usage<C: ConnectionTrait>(
    db: &C,
    org: &str,
    (d0, d1): (i64, i64),
    provider: &str,
    model: &str,
) -> Result<Vec<(i64, String, String, UsageStats)>, DbErr> {
    let mut values: Vec<Value> = vec![org.into(), d0.into(), d1.into()];
    let mut extra = String::new();
    for (col, v) in [("provider", provider), ("model", model)] {
        if !v.is_empty() {
            extra.push_str(&format!(" AND {col} = ?"));
            values.push(v.into());
        }
    }
    let rows = db
        .query_all_raw(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT day, provider, model, prompt_tokens, completion_tokens, cost_micros, \
                 requests FROM analytics_usage_daily WHERE org = ? AND day >= ? AND day < ?{extra} \
                 ORDER BY day, provider, model"
            ),
            values,
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                get_i64(r, "day")?,
                get_str(r, "provider")?,
                get_str(r, "model")?,
                UsageStats {
                    prompt_tokens: get_i64(r, "prompt_tokens")?,
                    completion_tokens: get_i64(r, "completion_tokens")?,
                    cost_micros: get_i64(r, "cost_micros")?,
                    requests: get_i64(r, "requests")?,
                },
            ))
        })
        .collect()
}

/// Display names of `resources` (missing ones are left out).
pub async fn display_names<C: ConnectionTrait>(
    db: &C,
    resources: &[String],
) -> Result<HashMap<String, String>, DbErr> {
    let mut out = HashMap::new();
    for chunk in resources.chunks(500) {
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT resource, display_name FROM analytics_names WHERE resource IN ({})",
                    marks(chunk.len())
                ),
                chunk.iter().map(|r| r.clone().into()).collect(),
            ))
            .await?;
        for r in &rows {
            out.insert(get_str(r, "resource")?, get_str(r, "display_name")?);
        }
    }
    Ok(out)
}

/// Whether an event ever named this member (or config announced it).
pub async fn member_known<C: ConnectionTrait>(db: &C, member: &str) -> Result<bool, DbErr> {
    Ok(db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT 1 AS one FROM analytics_names WHERE resource = ?",
            vec![member.into()],
        ))
        .await?
        .is_some())
}
