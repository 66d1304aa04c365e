//! Applying a batch of events to the read model in one transaction: the inbox marks, the
//! facts, every rollup the facts feed, and the comments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use salestrainer_runtime::{backoff::Backoff, db::begin_write};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};

use super::{
    FACT_COLUMN_COUNT, FACT_COLUMNS, fact_from_row, fact_values, get_i64, get_opt_i64, marks, stmt,
};
use crate::domain::{
    Delta, Fact, SessionEvent, day_of,
    events::{Body, Parsed},
};

/// The consumer name in the inbox.
pub const CONSUMER: &str = "analytics";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Accepted session events that changed their fact (a copy of what it had changes none).
    pub changed: usize,
    /// Organizations whose numbers (or names) changed: their cache version must move.
    pub orgs: BTreeSet<String>,
}

/// The inbox's consumer name for evaluations whose LLM usage was counted.
pub const USAGE_CONSUMER: &str = "analytics.usage";

/// The evaluation of a SessionGraded that reports LLM usage.
fn graded_usage(e: &Parsed) -> Option<&str> {
    match &e.body {
        Body::Session {
            event,
            usage: Some(_),
        } => match event.as_ref() {
            SessionEvent::Graded { grade, .. } => Some(grade.evaluation.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Applies `events` atomically; retries the transaction (up to four times) on lock
/// conflicts, which PostgreSQL can still report between concurrent batches.
pub async fn apply(db: &DatabaseConnection, events: &[Parsed]) -> Result<Outcome, DbErr> {
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(160));
    loop {
        match apply_once(db, events).await {
            Err(err) if backoff.attempts() < 4 && super::is_retryable(&err) => {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
    }
}

/// Rows per multi-row statement (well under both backends' parameter limits).
const CHUNK: usize = 200;

async fn apply_once(db: &DatabaseConnection, events: &[Parsed]) -> Result<Outcome, DbErr> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let mut out = Outcome::default();

    // Lock every session of the batch up front, in name order: a placeholder row first so
    // that two batches creating the same session serialize on it instead of both counting it.
    let sessions: BTreeMap<&str, &str> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Session { event, .. } => Some((event.info().session.as_str(), e.org.as_str())),
            _ => None,
        })
        .collect();
    let mut facts: HashMap<String, Fact> = HashMap::new();
    let list: Vec<(&str, &str)> = sessions.into_iter().collect();
    for chunk in list.chunks(CHUNK) {
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(s, o)| [(*s).into(), (*o).into()])
            .collect();
        let rows = vec!["(?, ?)"; chunk.len()].join(", ");
        txn.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_facts (session, org) VALUES {rows} \
                 ON CONFLICT (session) DO NOTHING"
            ),
            values,
        ))
        .await?;
        let lock = if backend == DbBackend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let found = txn
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM analytics_facts WHERE session IN ({}) \
                     ORDER BY session{lock}",
                    marks(chunk.len())
                ),
                chunk.iter().map(|(s, _)| (*s).into()).collect(),
            ))
            .await?;
        for row in &found {
            let fact = fact_from_row(row)?;
            facts.insert(fact.session.clone(), fact);
        }
    }

    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let fresh = salestrainer_bus::inbox::mark_handled_many(&txn, CONSUMER, &ids).await?;
    // An evaluation's LLM usage counts once: the reconciler's copy of a SessionGraded and the
    // real event carry the same usage under different event ids. Marked in the inbox under a
    // consumer of its own, keyed by the evaluation.
    let graded: Vec<&str> = events
        .iter()
        .filter(|e| fresh.contains(e.event_id.as_str()))
        .filter_map(graded_usage)
        .collect();
    let mut usage_fresh = if graded.is_empty() {
        BTreeSet::new()
    } else {
        salestrainer_bus::inbox::mark_handled_many(&txn, USAGE_CONSUMER, &graded).await?
    };
    let mut delta = Delta::default();
    let mut dirty: BTreeSet<String> = BTreeSet::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        // New to the inbox, and the first of its copies within this batch.
        if !fresh.contains(e.event_id.as_str()) || !seen.insert(e.event_id.as_str()) {
            out.duplicates += 1;
            continue;
        }
        out.accepted += 1;
        match &e.body {
            Body::Session { event, usage } => {
                let session = &event.info().session;
                let fact = facts
                    .entry(session.clone())
                    .or_insert_with(|| Fact::new(session, &e.org));
                let before = fact.clone();
                fact.apply(event);
                if *fact != before {
                    out.changed += 1;
                }
                delta.replace(&before, fact);
                dirty.insert(session.clone());
                let counts = match graded_usage(e) {
                    Some(evaluation) => usage_fresh.remove(evaluation),
                    None => true,
                };
                if let (Some(u), true) = (usage, counts) {
                    delta.add_usage(&e.org, day_of(e.occur_us), &u.provider, &u.model, &u.stats);
                }
            }
            Body::Name {
                resource,
                kind,
                display_name,
            } => {
                txn.execute_raw(stmt(
                    backend,
                    "INSERT INTO analytics_names (resource, org, kind, display_name) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (resource) DO UPDATE SET \
                     display_name = excluded.display_name, kind = excluded.kind",
                    vec![
                        resource.clone().into(),
                        e.org.clone().into(),
                        kind.clone().into(),
                        display_name.clone().into(),
                    ],
                ))
                .await?;
                out.orgs.insert(e.org.clone());
            }
            Body::Comment(f) => {
                super::coaching::apply_comment(&txn, &e.org, f).await?;
                out.orgs.insert(e.org.clone());
            }
            Body::Ignored => {}
        }
    }

    let dirty: Vec<&Fact> = dirty.iter().filter_map(|s| facts.get(s)).collect();
    for chunk in dirty.chunks(CHUNK) {
        let rows = vec![format!("({})", marks(FACT_COLUMN_COUNT)); chunk.len()].join(", ");
        let values = chunk.iter().flat_map(|f| fact_values(f)).collect();
        let set = FACT_COLUMNS
            .split(", ")
            .filter(|c| *c != "session")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        txn.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_facts ({FACT_COLUMNS}) VALUES {rows} \
                 ON CONFLICT (session) DO UPDATE SET {set}"
            ),
            values,
        ))
        .await?;
    }

    write_rollups(&txn, &mut delta).await?;
    out.orgs.extend(delta.orgs.iter().cloned());
    txn.commit().await?;
    Ok(out)
}

/// Adds the accumulated deltas to the rollup rows, in key order.
pub async fn write_rollups<C: ConnectionTrait>(db: &C, delta: &mut Delta) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    delta.prune();
    let daily: Vec<_> = delta.daily.iter().collect();
    for chunk in daily.chunks(CHUNK) {
        let rows = vec![format!("({})", marks(11)); chunk.len()].join(", ");
        let values = chunk
            .iter()
            .flat_map(|((org, dim, key, day), s)| {
                [
                    org.clone().into(),
                    dim.code().into(),
                    key.clone().into(),
                    (*day).into(),
                    s.sessions.into(),
                    s.duration_ms_sum.into(),
                    s.duration_n.into(),
                    s.graded.into(),
                    s.score_milli_sum.into(),
                    s.passed.into(),
                    s.closed.into(),
                ]
            })
            .collect::<Vec<Value>>();
        let sums = [
            "sessions",
            "duration_ms_sum",
            "duration_n",
            "graded",
            "score_milli_sum",
            "passed",
            "closed",
        ]
        .iter()
        .map(|c| format!("{c} = analytics_daily.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
        db.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_daily (org, dim, dim_key, day, sessions, duration_ms_sum, \
                 duration_n, graded, score_milli_sum, passed, closed) VALUES {rows} \
                 ON CONFLICT (org, dim, dim_key, day) DO UPDATE SET {sums}"
            ),
            values,
        ))
        .await?;
    }

    let skills: Vec<_> = delta.skills.iter().collect();
    for chunk in skills.chunks(CHUNK) {
        let rows = vec![format!("({})", marks(7)); chunk.len()].join(", ");
        let values = chunk
            .iter()
            .flat_map(|((org, dim, key, day, skill), (sum, n))| {
                [
                    org.clone().into(),
                    dim.code().into(),
                    key.clone().into(),
                    (*day).into(),
                    skill.clone().into(),
                    (*sum).into(),
                    (*n).into(),
                ]
            })
            .collect::<Vec<Value>>();
        db.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_skill_daily (org, dim, dim_key, day, skill, \
                 score_milli_sum, samples) VALUES {rows} \
                 ON CONFLICT (org, dim, dim_key, day, skill) DO UPDATE SET \
                 score_milli_sum = analytics_skill_daily.score_milli_sum + excluded.score_milli_sum, \
                 samples = analytics_skill_daily.samples + excluded.samples"
            ),
            values,
        ))
        .await?;
    }

    let usage: Vec<_> = delta.usage.iter().collect();
    for chunk in usage.chunks(CHUNK) {
        let rows = vec![format!("({})", marks(8)); chunk.len()].join(", ");
        let values = chunk
            .iter()
            .flat_map(|((org, day, provider, model), u)| {
                [
                    org.clone().into(),
                    (*day).into(),
                    provider.clone().into(),
                    model.clone().into(),
                    u.prompt_tokens.into(),
                    u.completion_tokens.into(),
                    u.cost_micros.into(),
                    u.requests.into(),
                ]
            })
            .collect::<Vec<Value>>();
        let sums = [
            "prompt_tokens",
            "completion_tokens",
            "cost_micros",
            "requests",
        ]
        .iter()
        .map(|c| format!("{c} = analytics_usage_daily.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
        db.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_usage_daily (org, day, provider, model, prompt_tokens, \
                 completion_tokens, cost_micros, requests) VALUES {rows} \
                 ON CONFLICT (org, day, provider, model) DO UPDATE SET {sums}"
            ),
            values,
        ))
        .await?;
    }

    // Best score is a maximum, which cannot be un-added; an assignee's attempts are few, so
    // the row is recomputed from its facts whenever one of them changes.
    for (org, assignment, trainee) in &delta.assignments {
        let key: Vec<Value> = vec![
            org.clone().into(),
            assignment.clone().into(),
            trainee.clone().into(),
        ];
        let row = db
            .query_one_raw(stmt(
                backend,
                "SELECT CAST(COUNT(*) AS BIGINT) AS attempts, MAX(score_milli) AS best, \
                 MAX(passed) AS passed_any, MAX(start_us) AS last_us FROM analytics_facts \
                 WHERE org = ? AND assignment = ? AND trainee = ? AND graded = 1",
                key.clone(),
            ))
            .await?;
        let (attempts, best, passed, last) = match &row {
            Some(r) => (
                get_i64(r, "attempts")?,
                get_i64(r, "best")?,
                get_i64(r, "passed_any")?,
                get_opt_i64(r, "last_us")?,
            ),
            None => (0, 0, 0, None),
        };
        if attempts == 0 {
            db.execute_raw(stmt(
                backend,
                "DELETE FROM analytics_assignment_progress \
                 WHERE org = ? AND assignment = ? AND trainee = ?",
                key,
            ))
            .await?;
        } else {
            let mut values = key;
            values.extend([attempts.into(), best.into(), passed.into(), last.into()]);
            db.execute_raw(stmt(
                backend,
                "INSERT INTO analytics_assignment_progress (org, assignment, trainee, attempts, \
                 best_milli, passed_any, last_attempt_us) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (org, assignment, trainee) DO UPDATE SET attempts = excluded.attempts, \
                 best_milli = excluded.best_milli, passed_any = excluded.passed_any, \
                 last_attempt_us = excluded.last_attempt_us",
                values,
            ))
            .await?;
        }
    }

    let members: Vec<_> = delta.members.iter().collect();
    for chunk in members.chunks(CHUNK) {
        let rows = vec!["(?, ?, 'member', '')"; chunk.len()].join(", ");
        let values = chunk
            .iter()
            .flat_map(|(org, m)| [m.clone().into(), org.clone().into()])
            .collect::<Vec<Value>>();
        db.execute_raw(stmt(
            backend,
            &format!(
                "INSERT INTO analytics_names (resource, org, kind, display_name) VALUES {rows} \
                 ON CONFLICT (resource) DO NOTHING"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}
