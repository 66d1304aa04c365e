//! RSS and CPU of named processes, sampled from /proc once a second.

use std::time::{Duration, Instant};

/// Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Clone, Debug, Default)]
pub struct Usage {
    pub name: String,
    pub pid: u32,
    pub rss_last_kib: u64,
    pub rss_peak_kib: u64,
    /// CPU seconds used while sampled.
    pub cpu_secs: f64,
    /// Highest one-second CPU use, in % of one core.
    pub cpu_peak_pct: f64,
    pub sampled: Duration,
    /// The process went away (or was never there) during sampling.
    pub lost: bool,
}

impl Usage {
    pub fn cpu_avg_pct(&self) -> f64 {
        let secs = self.sampled.as_secs_f64();
        if secs > 0.0 {
            100.0 * self.cpu_secs / secs
        } else {
            0.0
        }
    }
}

/// utime + stime in seconds. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted after its closing parenthesis.
fn cpu_secs(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn read(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((cpu_secs(&stat)?, rss_kib(&status)?))
}

/// Samples until `stop` resolves; returns one [`Usage`] per process.
pub async fn sample(
    pids: Vec<(String, u32)>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Usage> {
    let start = Instant::now();
    let mut usage: Vec<Usage> = pids
        .iter()
        .map(|(name, pid)| Usage {
            name: name.clone(),
            pid: *pid,
            ..Default::default()
        })
        .collect();
    let mut first: Vec<Option<f64>> = pids.iter().map(|(_, p)| read(*p).map(|r| r.0)).collect();
    let mut prev = first.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        for (i, u) in usage.iter_mut().enumerate() {
            match read(u.pid) {
                Some((cpu, rss)) => {
                    u.rss_last_kib = rss;
                    u.rss_peak_kib = u.rss_peak_kib.max(rss);
                    if let Some(p) = prev[i] {
                        u.cpu_peak_pct = u.cpu_peak_pct.max(100.0 * (cpu - p));
                    }
                    if first[i].is_none() {
                        first[i] = Some(cpu);
                    }
                    prev[i] = Some(cpu);
                    u.cpu_secs = cpu - first[i].unwrap_or(cpu);
                }
                None => u.lost = true,
            }
        }
    }
    for u in &mut usage {
        u.sampled = start.elapsed();
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let (cpu, rss) = read(std::process::id()).unwrap();
        assert!(cpu >= 0.0);
        assert!(rss > 0);
        // A name with spaces and parentheses does not shift the fields.
        let stat = "1 (a (b) c) S 0 0 0 0 0 0 0 0 0 0 250 50 0 0";
        assert_eq!(cpu_secs(stat), Some(3.0));
    }
}
