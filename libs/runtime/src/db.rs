//! Database connection and migrations, SQLite or PostgreSQL chosen by URL.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use sea_orm_migration::MigratorTrait;

/// The URL with any password replaced, for log lines.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => {
                    format!("{}://{}:***{}", &url[..scheme], &creds[..colon], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Creates the parent directory of a SQLite file, or the PostgreSQL database, if missing.
async fn ensure_exists(url: &str) -> anyhow::Result<()> {
    if is_sqlite(url) {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default();
        if path != ":memory:"
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        return Ok(());
    }
    // postgres://user@host:port/dbname?params → connect to the maintenance db to create dbname.
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let Some(slash) = base.rfind('/') else {
        return Ok(());
    };
    let name = &base[slash + 1..];
    if name.is_empty() || base[..slash].ends_with('/') {
        return Ok(());
    }
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be letters, digits and underscores"
    );
    let mut admin_url = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        admin_url.push('?');
        admin_url.push_str(q);
    }
    let mut opts = ConnectOptions::new(admin_url);
    opts.max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let admin = Database::connect(opts).await?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?
        .is_some();
    if !exists {
        let created = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await;
        // Another replica may have created it between our check and our CREATE.
        if let Err(err) = created
            && !err.to_string().contains("already exists")
        {
            return Err(err.into());
        }
    }
    admin.close().await?;
    Ok(())
}

/// Connects (creating the database if needed) with pool settings suited to each backend.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    ensure_exists(url).await?;
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if is_sqlite(url) {
        // WAL lets readers run beside the single writer; the busy timeout queues writers
        // instead of failing them.
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    // Checkpoints run beside the writer (salestrainer_db_write), not inside
                    // a commit; SQLite's own stays as a far backstop.
                    .pragma(
                        "wal_autocheckpoint",
                        salestrainer_db_write::WAL_AUTOCHECKPOINT_PAGES.to_string(),
                    )
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Ok(Database::connect(opts).await?)
}

pub use salestrainer_db_write::{WriteTxn, begin_write, on_writer};

/// Connects and applies every pending migration.
pub async fn connect_and_migrate<M: MigratorTrait>(
    url: &str,
) -> anyhow::Result<DatabaseConnection> {
    let db = connect(url).await?;
    M::up(&db, None).await?;
    Ok(db)
}

/// Like [`connect_and_migrate`], but keeps trying with capped exponential backoff, saying
/// clearly what is wrong, until it succeeds. The server meanwhile reports NOT_SERVING.
pub async fn connect_and_migrate_with_retry<M: MigratorTrait>(
    service: &str,
    url: &str,
) -> DatabaseConnection {
    let mut backoff = crate::backoff::Backoff::reconnect();
    loop {
        match connect_and_migrate::<M>(url).await {
            Ok(db) => {
                tracing::info!(service, database = %redact_url(url), "database ready, migrations applied");
                return db;
            }
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    service,
                    database = %redact_url(url),
                    attempt = backoff.attempts(),
                    retry_in_ms = delay.as_millis() as u64,
                    error = %err,
                    "database unavailable; staying NOT_SERVING and retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
