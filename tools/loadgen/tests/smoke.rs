//! A short run of the load generator against the suite in-process: every step of every
//! session succeeds and is measured.

use clap::Parser;
use salestrainer_runtime::Role;
use salestrainer_tests::{TEST_SECRET, seed_organization, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_has_no_errors_and_measures_every_step() {
    let app = spawn_app().await;
    seed_organization(&app, "lg", &[("lg-admin", Role::Admin)]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, TEST_SECRET).unwrap();
    let target = format!("http://{}", app.addr);
    let args = salestrainer_loadgen::Args::try_parse_from([
        "loadgen",
        "--target",
        target.as_str(),
        "--secret-file",
        secret.to_str().unwrap(),
        "--org",
        "lg",
        "--admin",
        "lg-admin",
        "--trainees",
        "3",
        "--rate",
        "4",
        "--duration",
        "2",
        "--turns",
        "2",
        "--turn-interval-ms",
        "100",
        "--managers",
        "1",
        "--manager-interval-ms",
        "200",
        "--connections",
        "2",
        "--pid",
        &format!("self={}", std::process::id()),
    ])
    .unwrap();
    let report = salestrainer_loadgen::run(&args).await.unwrap();
    let text = report.render();
    assert_eq!(report.stats.total_errors(), 0, "{text}");
    // 4/s for 2 s with 3 trainees: some starts find every trainee busy, none is lost.
    assert!(report.sessions_started >= 3, "{text}");
    assert_eq!(report.sessions_completed, report.sessions_started, "{text}");
    let sessions = report.sessions_started;
    assert_eq!(report.stats.count("StartSession"), sessions, "{text}");
    assert_eq!(report.stats.count("Converse end"), sessions, "{text}");
    assert_eq!(
        report.stats.count("Converse turn (first chunk)"),
        2 * sessions,
        "{text}"
    );
    assert!(report.stats.count("GetLeaderboard") >= 1, "{text}");
    assert_eq!(report.procs.len(), 1);
    assert!(report.procs[0].rss_peak_kib > 0, "{text}");
    app.stop().await;
}
