//! What certifications need from the read model: the graded attempts of the required
//! scenarios (current grades, overrides included) and the revocations, the only state a
//! certification keeps of its own.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

use super::{get_i64, get_str, marks, stmt};
use crate::domain::certifications::Attempt;

/// The revocations table.
pub struct CertificationRevocations;

impl sea_orm_migration::MigrationName for CertificationRevocations {
    fn name(&self) -> &str {
        "m0004_analytics_certification_revocations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CertificationRevocations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE analytics_certification_revocations (
                certification TEXT NOT NULL,
                trainee TEXT NOT NULL,
                org TEXT NOT NULL,
                revoked_us BIGINT NOT NULL,
                reason TEXT NOT NULL,
                revoked_by TEXT NOT NULL,
                PRIMARY KEY (certification, trainee)
            )",
        )
        .await?;
        // Graded attempts of a trainee per scenario.
        db.execute_unprepared(
            "CREATE INDEX analytics_facts_scenario_trainee ON analytics_facts \
             (org, scenario, trainee, start_us)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS analytics_facts_scenario_trainee")
            .await?;
        db.execute_unprepared("DROP TABLE IF EXISTS analytics_certification_revocations")
            .await?;
        Ok(())
    }
}

/// A revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub revoked_us: i64,
    pub reason: String,
    pub revoked_by: String,
}

/// Graded attempts of `scenarios` in organization `org` (an id), per trainee; only
/// `trainee`'s when given.
pub async fn attempts<C: ConnectionTrait>(
    db: &C,
    org: &str,
    scenarios: &[String],
    trainee: Option<&str>,
) -> Result<HashMap<String, Vec<Attempt>>, DbErr> {
    let mut out: HashMap<String, Vec<Attempt>> = HashMap::new();
    if scenarios.is_empty() {
        return Ok(out);
    }
    let mut sql = format!(
        "SELECT trainee, scenario, start_us, score_milli FROM analytics_facts \
         WHERE org = ? AND graded = 1 AND start_us IS NOT NULL AND trainee <> '' \
         AND scenario IN ({})",
        marks(scenarios.len())
    );
    let mut values: Vec<sea_orm::Value> = vec![org.into()];
    values.extend(scenarios.iter().map(|s| s.clone().into()));
    if let Some(t) = trainee {
        sql.push_str(" AND trainee = ?");
        values.push(t.into());
    }
    let rows = db
        .query_all_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    for r in &rows {
        out.entry(get_str(r, "trainee")?)
            .or_default()
            .push(Attempt {
                scenario: get_str(r, "scenario")?,
                at_us: get_i64(r, "start_us")?,
                score_milli: get_i64(r, "score_milli")?,
            });
    }
    Ok(out)
}

/// The last revocation of `certification` per trainee (only `trainee`'s when given).
pub async fn revocations<C: ConnectionTrait>(
    db: &C,
    certification: &str,
    trainee: Option<&str>,
) -> Result<HashMap<String, Revocation>, DbErr> {
    let mut sql = "SELECT trainee, revoked_us, reason, revoked_by \
                   FROM analytics_certification_revocations WHERE certification = ?"
        .to_owned();
    let mut values: Vec<sea_orm::Value> = vec![certification.into()];
    if let Some(t) = trainee {
        sql.push_str(" AND trainee = ?");
        values.push(t.into());
    }
    let rows = db
        .query_all_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    let mut out = HashMap::new();
    for r in &rows {
        out.insert(
            get_str(r, "trainee")?,
            Revocation {
                revoked_us: get_i64(r, "revoked_us")?,
                reason: get_str(r, "reason")?,
                revoked_by: get_str(r, "revoked_by")?,
            },
        );
    }
    Ok(out)
}

/// Records (or moves forward) the revocation of `trainee`'s award.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    org: &str,
    certification: &str,
    trainee: &str,
    r: &Revocation,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO analytics_certification_revocations \
         (certification, trainee, org, revoked_us, reason, revoked_by) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (certification, trainee) DO UPDATE SET revoked_us = excluded.revoked_us, \
         reason = excluded.reason, revoked_by = excluded.revoked_by",
        vec![
            certification.into(),
            trainee.into(),
            org.into(),
            r.revoked_us.into(),
            r.reason.clone().into(),
            r.revoked_by.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}
