//! `salestrainer up` runs the whole suite on embedded defaults; `salestrainer token` mints
//! development tokens; `salestrainer grader-eval` measures a grader on the labelled set.

// jemalloc: GetPersona +12–14% req/s against glibc's malloc in the same rounds
// (bench/README.md, "Fourth set").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::{net::SocketAddr, path::PathBuf, time::Instant};

use clap::{Parser, Subcommand};
use salestrainer_runtime::{
    Context, Role, Settings, app,
    auth::{TokenMinter, dev_secret},
    server::{ServerBuilder, shutdown_signal},
};

#[derive(Parser)]
#[command(
    name = "salestrainer",
    version,
    about = "Salestrainer: AI sales-training backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all four services in one process on one port (SQLite, in-process bus and cache).
    Up {
        /// Where the SQLite files and generated keys live.
        #[arg(long, env = "SALESTRAINER_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// gRPC / gRPC-Web listen address.
        #[arg(long, env = "SALESTRAINER_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Mint a development token signed with the data directory's secret.
    Token {
        #[arg(long, default_value = salestrainer::DEMO_ORGANIZATION)]
        org: String,
        /// admin, manager, trainee or service.
        #[arg(long, default_value = "admin")]
        role: String,
        #[arg(long, default_value = salestrainer::DEMO_ADMIN_SUBJECT)]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        ttl: u64,
        #[arg(long, env = "SALESTRAINER_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Create the demo organization and its admin in the configured config database.
    SeedDemo,
    /// Re-encrypt every stored provider credential under a new key-encryption key.
    /// Keys are standard base64 of 32 bytes, read from the named environment variables so they
    /// never appear in a process list; then point SALESTRAINER_CONFIG__CREDENTIAL_KEK
    /// (`[config] credential_kek`) at the new one.
    ReencryptCredentials {
        /// Variable holding the current key.
        #[arg(long, default_value = "SALESTRAINER_CONFIG__CREDENTIAL_KEK")]
        old_key_env: String,
        /// Variable holding the new key.
        #[arg(long, default_value = "SALESTRAINER_NEW_CREDENTIAL_KEK")]
        new_key_env: String,
    },
    /// Measure a grader on the labelled set of calls: pair ranking, Spearman correlation with
    /// the labels, criterion scores inside their band, closed accuracy, and every miss.
    GraderEval {
        /// The set's directory (rubric.json, scenarios.json, calls/); the built-in set if unset.
        #[arg(long)]
        set: Option<PathBuf>,
        /// An OpenAI-compatible server to measure the LLM grader instead of the built-in one.
        #[arg(long, requires = "model")]
        llm_base_url: Option<String>,
        /// The model to ask.
        #[arg(long, requires = "llm_base_url")]
        model: Option<String>,
        /// Variable holding the API key (empty or unset for servers without one).
        #[arg(long, default_value = "OPENAI_API_KEY")]
        api_key_env: String,
        /// Also print every call's scores and reasons.
        #[arg(long)]
        verbose: bool,
    },
    /// Wait until the server at ADDR reports SERVING for every service (exit 1 on timeout).
    Wait {
        addr: String,
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
}

fn settings_with(
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<Settings> {
    let mut settings = Settings::load()?;
    if let Some(dir) = data_dir {
        settings.data_dir = dir;
    }
    if let Some(addr) = listen {
        settings.listen = addr;
    }
    Ok(settings)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    match Cli::parse().command {
        Command::Up { data_dir, listen } => up(settings_with(data_dir, listen)?, started).await,
        Command::Token {
            org,
            role,
            subject,
            ttl,
            data_dir,
        } => {
            let settings = settings_with(data_dir, None)?;
            let role =
                Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role:?}"))?;
            let secret = dev_secret(&settings.auth, &settings.data_dir)?;
            let token =
                TokenMinter::new(&secret, &settings.auth.issuer).mint(&subject, &org, role, ttl)?;
            println!("{token}");
            Ok(())
        }
        Command::SeedDemo => {
            let settings = Settings::load()?;
            let created = salestrainer::ensure_demo_organization(&settings).await?;
            println!(
                "organizations/{} {}",
                salestrainer::DEMO_ORGANIZATION,
                if created { "created" } else { "already exists" }
            );
            Ok(())
        }
        Command::ReencryptCredentials {
            old_key_env,
            new_key_env,
        } => {
            let settings = Settings::load()?;
            let read = |var: &str| -> anyhow::Result<salestrainer_config::domain::crypto::Kek> {
                let text = std::env::var(var).map_err(|_| anyhow::anyhow!("{var} is not set"))?;
                salestrainer_config::domain::crypto::Kek::from_base64(&text)
                    .map_err(|e| anyhow::anyhow!("{var}: {e}"))
            };
            let (old, new) = (read(&old_key_env)?, read(&new_key_env)?);
            let url = settings.database_url_for(salestrainer_config::SERVICE);
            let db = salestrainer_runtime::db::connect(&url).await?;
            let count = salestrainer_config::store::reencrypt_credentials(&db, &old, &new)
                .await
                .map_err(|e| anyhow::anyhow!("re-encryption failed, nothing changed: {e}"))?;
            println!(
                "re-encrypted {count} credential secret(s) under key {}",
                new.id()
            );
            Ok(())
        }
        Command::GraderEval {
            set,
            llm_base_url,
            model,
            api_key_env,
            verbose,
        } => {
            use salestrainer_grading::app::eval;
            let dir = set.unwrap_or_else(eval::default_set_dir);
            let labelled = eval::load_set(&dir)?;
            let grader = match (llm_base_url, model) {
                (Some(url), Some(model)) => {
                    let key = std::env::var(&api_key_env).unwrap_or_default();
                    eval::Grader::llm(&url, &model, &key)?
                }
                _ => eval::Grader::BuiltIn,
            };
            let report = eval::run(&labelled, &grader).await;
            if verbose {
                print!("{}", report.render_verbose());
            } else {
                print!("{}", report.render());
            }
            Ok(())
        }
        Command::Wait { addr, timeout_secs } => {
            let uri = if addr.contains("://") {
                addr
            } else {
                format!("http://{addr}")
            };
            salestrainer::wait_serving(&uri, std::time::Duration::from_secs(timeout_secs)).await
        }
    }
}

async fn up(mut settings: Settings, started: Instant) -> anyhow::Result<()> {
    // A newcomer needs the banner below, not every migration applied: unless a filter was
    // chosen, start-up chatter is kept to warnings.
    if settings.telemetry.log_filter == "info" {
        settings.telemetry.log_filter =
            "info,sea_orm_migration=warn,salestrainer_runtime::db=warn,salestrainer_config::app::keys=warn".into();
    }
    // `up` serves the console itself, with development sign-in (below); the config service's
    // own copy (`[config] serve_console`, for the gateway) would claim the same paths.
    settings.set_section(
        salestrainer_config::SERVICE,
        serde_json::json!({ "serve_console": false }),
    );
    let boot = app::bootstrap_with("salestrainer", settings)?;
    let settings = boot.settings;
    let console = settings.section::<salestrainer_console::ConsoleSettings>("console")?;
    console.check()?;
    let mut server = ServerBuilder::new(settings.server.clone(), boot.verifier.clone()).await;
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let address = listener.local_addr()?;
    let ctx = Context::new(settings.clone(), boot.minter.clone(), address)?;
    let starters = app::gate_on_redis(salestrainer::mount_all(&mut server, &ctx).await, &ctx);
    // Reach ourselves on loopback even when listening on every interface.
    let local = if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    };
    // Development sign-in only while no production identity provider is configured.
    let dev_sign_in =
        settings
            .auth
            .rs256_public_keys
            .is_empty()
            .then(|| salestrainer::console::DevSignIn {
                minter: boot.minter.clone(),
                organization: salestrainer::DEMO_ORGANIZATION.into(),
                config_uri: format!("http://{local}"),
            });
    let dev_on = dev_sign_in.is_some();
    server.add_public_http_routes(
        salestrainer::console::PUBLIC_PATHS,
        salestrainer::console::PUBLIC_PREFIXES,
        salestrainer::console::router(dev_sign_in, &console),
    );
    if let Some(admin) = settings.admin_listen {
        let admin = salestrainer_runtime::metrics::serve_admin(admin, shutdown_signal()).await?;
        tracing::info!(%admin, "metrics at http://{admin}/metrics");
    }

    let readiness = server.readiness();
    for start in starters {
        tokio::spawn(start(readiness.clone()));
    }
    let announce = {
        let readiness = readiness.clone();
        let minter = boot.minter.clone();
        let settings = settings.clone();
        let oidc = console.oidc();
        async move {
            readiness.wait_all().await;
            match salestrainer::ensure_demo_organization(&settings).await {
                Ok(true) => tracing::info!("created the demo organization"),
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "could not create the demo organization"),
            }
            match salestrainer::demo::ensure_demo_content(&format!("http://{local}"), &minter).await
            {
                Ok(true) => tracing::info!("created the demo content"),
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "could not create the demo content"),
            }
            let token = minter
                .mint(
                    salestrainer::DEMO_ADMIN_SUBJECT,
                    salestrainer::DEMO_ORGANIZATION,
                    Role::Admin,
                    7 * 24 * 3600,
                )
                .ok();
            println!();
            println!(
                "Salestrainer is ready after {} ms: open http://{local}/",
                started.elapsed().as_millis()
            );
            if dev_on {
                let users: Vec<String> = salestrainer::demo::DEMO_USERS
                    .iter()
                    .map(|(subject, _, role)| {
                        format!(
                            "{subject} ({})",
                            role.as_str_name()
                                .trim_start_matches("ROLE_")
                                .to_lowercase()
                        )
                    })
                    .collect();
                println!(
                    "  sign in as     : {} (admin), {} — pick one on the page, no password",
                    salestrainer::DEMO_ADMIN_SUBJECT,
                    users.join(", ")
                );
            } else if let Some(oidc) = &oidc {
                println!(
                    "  sign in with   : {} (the console redirects there), or a bearer token",
                    oidc.issuer
                );
            } else {
                println!("  sign in with   : a bearer token from your identity provider");
            }
            println!("  data directory : {}", settings.data_dir.display());
            println!(
                "  organization   : organizations/{} (a persona, a rubric, a scenario, an assignment)",
                salestrainer::DEMO_ORGANIZATION
            );
            if let Some(token) = token {
                println!("  admin token    : {token}");
            }
            println!(
                "  gRPC           : {address} (gRPC, gRPC-Web and reflection, for any gRPC client)"
            );
            println!();
        }
    };
    tokio::spawn(announce);
    let result = server.serve(listener, readiness, shutdown_signal()).await;
    ctx.shutdown.cancel();
    result
}
