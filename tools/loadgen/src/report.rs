//! Latency histograms and error counts per RPC (or per step of a stream), and the printed
//! report.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

use crate::procs::Usage;

pub struct Rpc {
    /// Microseconds of the calls that succeeded.
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Rpc {
    fn new() -> Self {
        Self {
            // 1 µs to 10 min at 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant, valid histogram bounds"),
            errors: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
pub struct Stats {
    rpcs: Mutex<BTreeMap<&'static str, Rpc>>,
}

impl Stats {
    pub fn ok(&self, rpc: &'static str, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let r = rpcs.entry(rpc).or_insert_with(Rpc::new);
        r.hist.saturating_record(us);
    }

    pub fn err(&self, rpc: &'static str, code: &str) {
        let mut rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let r = rpcs.entry(rpc).or_insert_with(Rpc::new);
        *r.errors.entry(code.to_owned()).or_default() += 1;
    }

    /// Records `result` of a call that started at `start`.
    pub fn record<T>(
        &self,
        rpc: &'static str,
        start: Instant,
        result: Result<T, tonic::Status>,
    ) -> Option<T> {
        match result {
            Ok(v) => {
                self.ok(rpc, start.elapsed());
                Some(v)
            }
            Err(s) => {
                self.err(rpc, &format!("{:?}", s.code()));
                None
            }
        }
    }

    /// Successful calls (or steps) of `rpc`.
    pub fn count(&self, rpc: &str) -> u64 {
        let rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        rpcs.get(rpc).map_or(0, |r| r.hist.len())
    }

    pub fn total_errors(&self) -> u64 {
        let rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        rpcs.values().flat_map(|r| r.errors.values()).sum()
    }
}

pub struct Report {
    pub stats: std::sync::Arc<Stats>,
    pub procs: Vec<Usage>,
    pub elapsed: Duration,
    pub sessions_started: u64,
    pub sessions_completed: u64,
    /// Session starts that were due while `--trainees` sessions were already running.
    pub sessions_skipped: u64,
    pub peak_active: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:.1} s; sessions started {}, completed {}, not started (all trainees busy) {}, peak concurrent {}",
            self.elapsed.as_secs_f64(),
            self.sessions_started,
            self.sessions_completed,
            self.sessions_skipped,
            self.peak_active
        );
        let _ = writeln!(
            out,
            "{:<34} {:>8} {:>9} {:>9} {:>9} {:>7}  errors by code",
            "rpc / step", "ok", "p50 ms", "p99 ms", "max ms", "errors"
        );
        let rpcs = self.stats.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        for (name, r) in rpcs.iter() {
            let errors: u64 = r.errors.values().sum();
            let by_code = r
                .errors
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                out,
                "{:<34} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>7}  {}",
                name,
                r.hist.len(),
                ms(r.hist.value_at_quantile(0.5)),
                ms(r.hist.value_at_quantile(0.99)),
                ms(r.hist.max()),
                errors,
                by_code
            );
        }
        if !self.procs.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<12} {:>8} {:>14} {:>14} {:>12} {:>12}",
                "process", "pid", "RSS last MiB", "RSS peak MiB", "CPU avg %", "CPU peak %"
            );
            for u in &self.procs {
                let _ = writeln!(
                    out,
                    "{:<12} {:>8} {:>14.1} {:>14.1} {:>12.1} {:>12.1}{}",
                    u.name,
                    u.pid,
                    u.rss_last_kib as f64 / 1024.0,
                    u.rss_peak_kib as f64 / 1024.0,
                    u.cpu_avg_pct(),
                    u.cpu_peak_pct,
                    if u.lost {
                        "  (gone during the run)"
                    } else {
                        ""
                    }
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_latencies_and_errors() {
        let s = Stats::default();
        for ms in 1..=100 {
            s.ok("Get", Duration::from_millis(ms));
        }
        s.err("Get", "Unavailable");
        s.err("Get", "Unavailable");
        assert_eq!(s.total_errors(), 2);
        let rpcs = s.rpcs.lock().unwrap();
        let r = &rpcs["Get"];
        assert_eq!(r.hist.len(), 100);
        let p50 = r.hist.value_at_quantile(0.5);
        assert!((49_000..=51_000).contains(&p50), "p50 {p50}");
        assert_eq!(r.errors["Unavailable"], 2);
    }
}
