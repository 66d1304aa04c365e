//! Layered configuration: built-in defaults, then an optional TOML file
//! (`SALESTRAINER_CONFIG_FILE`), then `SALESTRAINER_*` environment variables
//! (nested keys with `__`, e.g. `SALESTRAINER_AUTH__DEV_SECRET`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// gRPC (and gRPC-Web, webhooks) listen address.
    pub listen: SocketAddr,
    /// Prometheus metrics; `None` disables the admin port.
    pub admin_listen: Option<SocketAddr>,
    /// Where embedded mode keeps its SQLite files and generated keys.
    pub data_dir: PathBuf,
    /// Database URL; `{service}` is replaced by the service name so one template serves all
    /// four (`sqlite://data/{service}.db`, `postgres://…/salestrainer_{service}`).
    /// Empty means a SQLite file per service under `data_dir`.
    pub database_url: String,
    /// `redis://…` for the bus, caches and limiter in distributed mode; empty = in-process.
    pub redis_url: String,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    /// Addresses of the other services (distributed mode). Empty = same process.
    pub endpoints: Endpoints,
    /// Where the sections of each service (`[call]`, `SALESTRAINER_CALL__*`) are read from.
    #[serde(skip)]
    pub sources: Option<Figment>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Deadline applied to a request that carries none (or a longer one).
    pub request_timeout_ms: u64,
    /// Requests in flight across all connections; beyond it new ones are shed.
    pub concurrency_limit: usize,
    /// Largest single gRPC message accepted (RESOURCE_EXHAUSTED above it).
    pub max_message_bytes: usize,
    /// How long SIGTERM waits for in-flight calls before open streams are cut.
    pub drain_deadline_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 secret for development tokens. Empty in embedded mode = generated into
    /// `data_dir/dev-jwt.secret` on first start.
    pub dev_secret: String,
    /// PEM-encoded RS256 public keys (inline PEM or file paths) accepted in production.
    pub rs256_public_keys: Vec<String>,
    /// Expected `iss` claim, if set (then required).
    pub issuer: String,
    /// Expected `aud` claim of user tokens, if set (then required).
    pub audience: String,
    /// HS256 key of service identities (at least 32 bytes). Empty: derived from `dev_secret`.
    /// Never give it to an identity provider: users must not be able to mint services.
    pub service_secret: String,
    /// With RS256 keys configured (production), development HS256 user tokens are refused
    /// unless this is set.
    pub allow_dev_tokens: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// OTLP gRPC endpoint (e.g. `http://127.0.0.1:4317`); empty disables export.
    pub otlp_endpoint: String,
    /// `text` or `json`.
    pub log_format: String,
    /// `RUST_LOG`-style filter used when `RUST_LOG` is not set.
    pub log_filter: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoints {
    pub config: String,
    pub call: String,
    pub grading: String,
    pub analytics: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            redis_url: String::new(),
            server: ServerSettings::default(),
            auth: AuthSettings::default(),
            telemetry: TelemetrySettings::default(),
            endpoints: Endpoints::default(),
            sources: None,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            request_timeout_ms: 30_000,
            concurrency_limit: 2_048,
            max_message_bytes: 4 * 1024 * 1024,
            drain_deadline_ms: 10_000,
        }
    }
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            log_format: "text".into(),
            log_filter: "info".into(),
        }
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn drain_deadline(&self) -> Duration {
        Duration::from_millis(self.drain_deadline_ms)
    }
}

impl Settings {
    /// Defaults < `SALESTRAINER_CONFIG_FILE` (if set) < `SALESTRAINER_*` variables.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let figment = Self::figment();
        let mut settings: Self = figment.extract().map_err(Box::new)?;
        settings.sources = Some(figment);
        Ok(settings)
    }

    /// A service's own section, e.g. `[call]` in the TOML file or `SALESTRAINER_CALL__*`, over
    /// its defaults. Settings built in code (tests) read only what [`Self::set_section`] put.
    pub fn section<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, Box<figment::Error>> {
        match &self.sources {
            Some(f) if f.contains(name) => f.extract_inner(name).map_err(Box::new),
            _ => Ok(T::default()),
        }
    }

    /// Sets values of a service's section, over whatever the sources said.
    pub fn set_section(&mut self, name: &str, values: impl Serialize) {
        let base = self.sources.take().unwrap_or_default();
        self.sources = Some(base.merge(Serialized::default(name, values)));
    }

    pub fn figment() -> Figment {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Ok(file) = std::env::var("SALESTRAINER_CONFIG_FILE") {
            fig = fig.merge(Toml::file(file));
        }
        fig.merge(
            Env::prefixed("SALESTRAINER_")
                .split("__")
                .ignore(&["config_file"]),
        )
    }

    /// The database URL of one service, with embedded SQLite as the fallback.
    pub fn database_url_for(&self, service: &str) -> String {
        if self.database_url.is_empty() {
            let path = self.data_dir.join(format!("{service}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            self.database_url.replace("{service}", service)
        }
    }

    pub fn redis_url(&self) -> Option<&str> {
        (!self.redis_url.is_empty()).then_some(self.redis_url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_template_and_fallback() {
        let mut s = Settings {
            data_dir: PathBuf::from("/tmp/x"),
            ..Settings::default()
        };
        assert_eq!(
            s.database_url_for("config"),
            "sqlite:///tmp/x/config.db?mode=rwc"
        );
        s.database_url = "postgres://u@h/salestrainer_{service}".into();
        assert_eq!(
            s.database_url_for("call"),
            "postgres://u@h/salestrainer_call"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // the closure signature is figment's
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SALESTRAINER_LISTEN", "127.0.0.1:6000");
            jail.set_env("SALESTRAINER_SERVER__MAX_MESSAGE_BYTES", "1024");
            let s = Settings::load().map_err(|e| *e)?;
            assert_eq!(s.listen.port(), 6000);
            assert_eq!(s.server.max_message_bytes, 1024);
            assert_eq!(s.server.concurrency_limit, 2_048);
            Ok(())
        });
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Section {
        workers: u32,
        name: String,
    }

    #[test]
    #[allow(clippy::result_large_err)] // the closure signature is figment's
    fn service_sections_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "[call]\nworkers = 3\nname = \"file\"\n")?;
            jail.set_env("SALESTRAINER_CONFIG_FILE", "s.toml");
            jail.set_env("SALESTRAINER_CALL__NAME", "env");
            let s = Settings::load().map_err(|e| *e)?;
            let call: Section = s.section("call").map_err(|e| *e)?;
            assert_eq!(
                call,
                Section {
                    workers: 3,
                    name: "env".into()
                }
            );
            let other: Section = s.section("grading").map_err(|e| *e)?;
            assert_eq!(other, Section::default());
            let mut coded = Settings::default();
            coded.set_section("grading", serde_json::json!({ "workers": 9 }));
            let grading: Section = coded.section("grading").map_err(|e| *e)?;
            assert_eq!(grading.workers, 9);
            // A value set in code wins over the sources and keeps the section's other keys
            // (`salestrainer up` turns config's own console off this way).
            let mut loaded = s.clone();
            loaded.set_section("call", serde_json::json!({ "workers": 1 }));
            let call: Section = loaded.section("call").map_err(|e| *e)?;
            assert_eq!(
                call,
                Section {
                    workers: 1,
                    name: "env".into()
                }
            );
            Ok(())
        });
    }
}
