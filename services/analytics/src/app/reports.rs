//! Summaries assembled from the store: whole days from a rollup, partial days (and filter
//! combinations no rollup covers) from facts.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    domain::{
        DayStats, Fact,
        summary::{self, Range, Summary},
    },
    store::query::{self, Filters},
};

/// Adds facts to per-day numbers and per-skill sums.
pub fn accumulate(
    facts: &[Fact],
    days: &mut BTreeMap<i64, DayStats>,
    skills: &mut BTreeMap<String, (i64, i64)>,
) {
    for f in facts.iter().filter(|f| f.counted()) {
        let Some(day) = f.day() else { continue };
        days.entry(day).or_default().add(&f.stats());
        if let Some(g) = &f.grade {
            for (skill, score) in &g.skills {
                let e = skills.entry(skill.clone()).or_default();
                e.0 += score;
                e.1 += 1;
            }
        }
    }
}

pub async fn summary<C: ConnectionTrait>(
    db: &C,
    org: &str,
    filters: &Filters,
    range: &Range,
) -> Result<Summary, DbErr> {
    let mut days = BTreeMap::new();
    let mut skills = BTreeMap::new();
    match filters.rollup() {
        Some((dim, key)) => {
            let full = range.full_days();
            if full.0 < full.1 {
                let (d, s) = futures::try_join!(
                    query::daily(db, org, dim, &key, full),
                    query::skills(db, org, dim, &key, full)
                )?;
                days = d;
                skills = s;
            }
            // Partial days: aggregated from facts in SQL (start times are after 1970, so
            // integer division is the UTC day).
            for edge in range.edges() {
                let (d, s) = futures::try_join!(
                    query::fact_days(db, org, &edge, filters),
                    query::fact_skills(db, org, &edge, filters)
                )?;
                for (day, stats) in d {
                    days.entry(day).or_default().add(&stats);
                }
                for (skill, (sum, n)) in s {
                    let e = skills.entry(skill).or_default();
                    e.0 += sum;
                    e.1 += n;
                }
            }
        }
        None => {
            let facts = query::facts(db, org, range, filters).await?;
            accumulate(&facts, &mut days, &mut skills);
        }
    }
    Ok(summary::build(range, &days, &skills))
}

/// Per-trainee totals over `range` (leaderboard).
pub async fn per_trainee<C: ConnectionTrait>(
    db: &C,
    org: &str,
    filters: &Filters,
    range: &Range,
) -> Result<BTreeMap<String, DayStats>, DbErr> {
    let mut totals = BTreeMap::new();
    let add_facts = |facts: Vec<Fact>, totals: &mut BTreeMap<String, DayStats>| {
        for f in facts
            .iter()
            .filter(|f| f.counted() && !f.trainee.is_empty())
        {
            totals.entry(f.trainee.clone()).or_default().add(&f.stats());
        }
    };
    if filters
        .rollup()
        .is_some_and(|(dim, _)| dim == crate::domain::Dim::Org.of(filters.real_call))
    {
        let full = range.full_days();
        if full.0 < full.1 {
            totals = query::trainee_totals(db, org, filters.real_call, full).await?;
        }
        for edge in range.edges() {
            add_facts(query::facts(db, org, &edge, filters).await?, &mut totals);
        }
    } else {
        add_facts(query::facts(db, org, range, filters).await?, &mut totals);
    }
    Ok(totals)
}
