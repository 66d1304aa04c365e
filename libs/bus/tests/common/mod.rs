//! Shared test helpers: real PostgreSQL, SQLite and Redis; no mocks. PostgreSQL and Redis must
//! be reachable (the tests fail, not skip, otherwise).
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use salestrainer_bus::{CreateInbox, CreateOutbox, Envelope};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a test body with a hard time limit so nothing hangs.
pub async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutbox), Box::new(CreateInbox)]
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("SALESTRAINER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("SALESTRAINER_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

/// A migrated database of one backend, removed by [`TestDb::cleanup`].
pub struct TestDb {
    pub db: DatabaseConnection,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn postgres() -> Self {
        let admin = Database::connect(postgres_admin_url())
            .await
            .expect("PostgreSQL must be reachable (SALESTRAINER_TEST_POSTGRES_URL)");
        let name = format!("bus_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let db = Database::connect(with_database(&postgres_admin_url(), &name))
            .await
            .unwrap();
        Migrator::up(&db, None).await.unwrap();
        Self {
            db,
            pg_name: Some(name),
            _dir: None,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.db");
        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        Migrator::up(&db, None).await.unwrap();
        Self {
            db,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    pub async fn cleanup(self) {
        self.db.close().await.unwrap();
        if let Some(name) = self.pg_name {
            let admin = Database::connect(postgres_admin_url()).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn envelope(topic: &str, n: u32) -> Envelope {
    Envelope::new(
        uuid::Uuid::now_v7().to_string(),
        topic,
        "session.ended",
        "org-1",
        format!("payload-{n}").into_bytes(),
    )
    .with_header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
}

pub fn payload_str(env: &Envelope) -> String {
    String::from_utf8(env.payload.to_vec()).unwrap()
}

/// A `redis-server` of a test's own on a free loopback port; killed when dropped. With `dir`
/// it loads and writes its snapshot there (only on SAVE), so a kill and start again brings
/// back exactly what the last SAVE held: a replica that lagged, promoted.
pub struct OwnRedis {
    child: Child,
    pub port: u16,
    password: Option<String>,
    dir: Option<PathBuf>,
}

impl OwnRedis {
    pub fn start(password: Option<&str>, dir: Option<&Path>) -> Self {
        let port = salestrainer_test_ports::free_port();
        let mut server = Self {
            child: Self::spawn(port, password, dir),
            port,
            password: password.map(str::to_owned),
            dir: dir.map(Path::to_path_buf),
        };
        server.wait_ready();
        server
    }

    fn spawn(port: u16, password: Option<&str>, dir: Option<&Path>) -> Child {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "yes"]);
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        if let Some(d) = dir {
            cmd.arg("--dir").arg(d).args(["--dbfilename", "dump.rdb"]);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then a new server on the same port and directory (what the last SAVE held).
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, self.password.as_deref(), self.dir.as_deref());
        self.wait_ready();
    }

    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
