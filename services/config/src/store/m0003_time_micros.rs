//! Issue 10: instants as microseconds since the Unix epoch (`i64`), like the rest of the suite.
//!
//! Every `*_time` timestamp column becomes a `*_us` BIGINT: the new column is added, filled
//! from the old one (the same instant, to the microsecond) and the old column dropped. No index
//! or keyset ordering used these columns; `first_of_kind`'s `ORDER BY create_time, id` reads
//! `create_us` now.
//!
//! How the old columns hold an instant:
//! - PostgreSQL: `timestamptz`, microsecond precision;
//! - SQLite: TEXT as sqlx writes a `DateTime<Utc>`, RFC 3339 with 0, 3, 6 or 9 fraction digits
//!   and a `+00:00` offset, e.g. `2025-01-02T03:04:05.123456+00:00`. `strftime('%s')` gives
//!   the whole seconds (it honours the offset); the fraction is read from the text, because
//!   SQLite's date functions keep only milliseconds.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (old column, new column, nullable).
type Column = (&'static str, &'static str, bool);

/// Each table and its instants.
const COLUMNS: &[(&str, &[Column])] = &[
    (
        "organizations",
        &[
            ("create_time", "create_us", false),
            ("update_time", "update_us", false),
        ],
    ),
    (
        "members",
        &[
            ("create_time", "create_us", false),
            ("update_time", "update_us", false),
        ],
    ),
    (
        "resources",
        &[
            ("create_time", "create_us", false),
            ("update_time", "update_us", false),
        ],
    ),
    (
        "prompt_templates",
        &[
            ("create_time", "create_us", false),
            ("update_time", "update_us", false),
        ],
    ),
    (
        "prompt_template_revisions",
        &[("create_time", "create_us", false)],
    ),
    (
        "provider_credentials",
        &[
            ("last_test_time", "last_test_us", true),
            ("create_time", "create_us", false),
            ("update_time", "update_us", false),
        ],
    ),
];

/// The SQL expression turning the timestamp column `col` into microseconds since the epoch
/// (NULL stays NULL).
fn micros_of(backend: DbBackend, col: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("(EXTRACT(EPOCH FROM \"{col}\") * 1000000)::BIGINT"),
        // Whole seconds, plus the fraction digits between '.' and the offset ('+', 'Z' or the
        // end), padded or cut to six.
        _ => {
            let c = format!("\"{col}\"");
            let dot = format!("instr({c}, '.')");
            let end = format!(
                "(CASE WHEN instr({c}, '+') > 0 THEN instr({c}, '+') \
                 WHEN instr({c}, 'Z') > 0 THEN instr({c}, 'Z') \
                 ELSE length({c}) + 1 END)"
            );
            format!(
                "(CAST(strftime('%s', {c}) AS INTEGER) * 1000000 + \
                 CASE WHEN {dot} > 0 THEN \
                 CAST(substr(substr({c}, {dot} + 1, {end} - {dot} - 1) || '000000', 1, 6) AS INTEGER) \
                 ELSE 0 END)"
            )
        }
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for (table, columns) in COLUMNS {
            // One column per ALTER: SQLite changes only one at a time. NOT NULL columns need a
            // default to be added to a table with rows; every row is filled below.
            for (_, new, nullable) in *columns {
                let col = if *nullable {
                    big_integer_null(Alias::new(*new))
                } else {
                    big_integer(Alias::new(*new)).default(0).to_owned()
                };
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(*table))
                            .add_column(col)
                            .to_owned(),
                    )
                    .await?;
            }
            let sets: Vec<String> = columns
                .iter()
                .map(|(old, new, _)| format!("\"{new}\" = {}", micros_of(backend, old)))
                .collect();
            manager
                .get_connection()
                .execute_unprepared(&format!("UPDATE \"{table}\" SET {}", sets.join(", ")))
                .await?;
            for (old, _, _) in *columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(*table))
                            .drop_column(Alias::new(*old))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Back to timestamp columns, with the same instants; they come back nullable (SQLite cannot
    /// add a NOT NULL column without a constant default).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for (table, columns) in COLUMNS {
            for (old, _, _) in *columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(*table))
                            .add_column(timestamp_with_time_zone_null(Alias::new(*old)))
                            .to_owned(),
                    )
                    .await?;
            }
            let sets: Vec<String> = columns
                .iter()
                .map(|(old, new, _)| {
                    let back = match backend {
                        DbBackend::Postgres => {
                            format!("TIMESTAMPTZ 'epoch' + \"{new}\" * INTERVAL '1 microsecond'")
                        }
                        _ => format!(
                            "strftime('%Y-%m-%dT%H:%M:%S', \"{new}\" / 1000000, 'unixepoch') \
                             || printf('.%06d', \"{new}\" % 1000000) || '+00:00'"
                        ),
                    };
                    format!("\"{old}\" = CASE WHEN \"{new}\" IS NULL THEN NULL ELSE {back} END")
                })
                .collect();
            manager
                .get_connection()
                .execute_unprepared(&format!("UPDATE \"{table}\" SET {}", sets.join(", ")))
                .await?;
            for (_, new, _) in *columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(*table))
                            .drop_column(Alias::new(*new))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
