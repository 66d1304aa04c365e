//! loadgen: drives the suite like its users do, through the generated clients.
//!
//! - Trainees in text roleplay: new sessions start at `--rate` per second for `--duration`
//!   seconds, at most `--trainees` at once (each one a distinct member, so per-trainee stream
//!   limits are real). A session is StartSession, then a Converse stream: start (the persona
//!   greets), `--turns` turns one every `--turn-interval-ms` (±25% jitter), then end.
//! - Managers (`--managers`) read dashboards every `--manager-interval-ms`:
//!   GetOrganizationSummary, GetLeaderboard and ListSessions.
//!
//! It first seeds what it needs in `--org` (an existing organization) as an admin: the
//! trainee and manager members, a persona and a scenario. Tokens are minted with the
//! deployment's HS256 development secret (`--secret-file` or SALESTRAINER_AUTH__DEV_SECRET).
//!
//! It prints per RPC the count, p50/p99/max latency and errors by code, the time from sending
//! a turn to the persona's first reply chunk, and for every `--pid NAME=PID` the process's
//! RSS (last and peak) and CPU use (average and peak, in % of one core) sampled from /proc.

pub mod bare;
pub mod procs;
pub mod report;
pub mod run;
pub mod seed;

use std::{path::PathBuf, time::Duration};

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "loadgen", about = "Salestrainer load generator")]
pub struct Args {
    /// The gRPC endpoint (Envoy's listener, or `salestrainer up`'s address).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// File holding the HS256 development secret the deployment verifies tokens with.
    #[arg(long, env = "LOADGEN_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Expected `iss` of user tokens, when the deployment sets one.
    #[arg(long, default_value = "")]
    pub issuer: String,
    /// An existing organization id; the load's members and content are created in it.
    #[arg(long, default_value = "demo")]
    pub org: String,
    /// An admin member of the organization, who seeds (as `demo-admin` is in the demo
    /// organization).
    #[arg(long, default_value = "demo-admin")]
    pub admin: String,
    /// Most trainees in a session at once.
    #[arg(long, default_value_t = 1000)]
    pub trainees: usize,
    /// New sessions per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds during which new sessions start (running ones then finish).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Trainee turns per session.
    #[arg(long, default_value_t = 6)]
    pub turns: u32,
    /// Mean time between a trainee's turns.
    #[arg(long, default_value_t = 3000)]
    pub turn_interval_ms: u64,
    /// Managers reading dashboards.
    #[arg(long, default_value_t = 5)]
    pub managers: usize,
    /// Mean time between a manager's dashboard reads.
    #[arg(long, default_value_t = 2000)]
    pub manager_interval_ms: u64,
    /// HTTP/2 connections shared by all calls (round robin).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Deadline of every unary call and of each step of a stream.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Processes to sample, as NAME=PID (repeatable).
    #[arg(long = "pid", value_parser = parse_pid)]
    pub pids: Vec<(String, u32)>,
    /// Skip seeding (the members and content exist from an earlier run).
    #[arg(long)]
    pub no_seed: bool,
}

fn parse_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=PID"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{s:?}: {pid:?} is not a process id"))?;
    Ok((name.to_owned(), pid))
}

impl Args {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    fn secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(path) = &self.secret_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            return Ok(text.trim().as_bytes().to_vec());
        }
        match std::env::var("SALESTRAINER_AUTH__DEV_SECRET") {
            Ok(s) if !s.is_empty() => Ok(s.into_bytes()),
            _ => {
                anyhow::bail!("no secret: pass --secret-file or set SALESTRAINER_AUTH__DEV_SECRET")
            }
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.trainees >= 1, "--trainees must be at least 1");
        anyhow::ensure!(
            self.rate > 0.0 && self.rate.is_finite(),
            "--rate must be positive"
        );
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(self.turn_interval_ms >= 1 && self.manager_interval_ms >= 1);
        Ok(())
    }
}

/// Seeds (unless `--no-seed`), runs the load and returns its report.
pub async fn run(args: &Args) -> anyhow::Result<report::Report> {
    args.check()?;
    let minter = salestrainer_runtime::auth::TokenMinter::new(&args.secret()?, &args.issuer);
    let channels = run::connect(args).await?;
    let plan = seed::Plan::new(args);
    if !args.no_seed {
        let t = std::time::Instant::now();
        seed::seed(args, &plan, &minter, &channels[0]).await?;
        eprintln!("seeded {} in {:.1?}", plan.describe(), t.elapsed());
    }
    run::run(args, &plan, &minter, channels).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn flags_parse_and_are_checked() {
        let a = Args::try_parse_from([
            "loadgen",
            "--trainees",
            "10",
            "--rate",
            "2.5",
            "--pid",
            "call=42",
            "--pid",
            "envoy=7",
        ])
        .unwrap();
        assert_eq!(a.trainees, 10);
        assert_eq!(a.pids, vec![("call".into(), 42), ("envoy".into(), 7)]);
        assert!(a.check().is_ok());
        assert!(Args::try_parse_from(["loadgen", "--pid", "call"]).is_err());
        assert!(Args::try_parse_from(["loadgen", "--pid", "call=x"]).is_err());
        let zero = Args::try_parse_from(["loadgen", "--rate", "0"]).unwrap();
        assert!(zero.check().is_err());
    }
}
