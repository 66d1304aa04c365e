//! Property: after a random stream of events with duplicates, reordering and regrades, fed
//! in random batches, every summary equals a brute-force recomputation from the facts.
//! A seeded generator (reproducible: the failing seed is printed) on both backends.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use salestrainer_proto::{analytics as pb, events as ev};
use salestrainer_runtime::Role;

/// A current grade: (score in thousandths, passed, closed, skills).
type TrueGrade = (i64, bool, bool, Vec<(String, i64)>);

/// The truth about one generated session.
#[derive(Clone, Debug)]
struct Truth {
    trainee: String,
    scenario: String,
    assignment: String,
    start_us: i64,
    duration_ms: i64,
    has_duration: bool,
    counted: bool,
    /// Current grade: (score milli, passed, closed, skills).
    grade: Option<TrueGrade>,
}

struct Case {
    org: String,
    events: Vec<ev::Event>,
    truths: Vec<Truth>,
    usage: (i64, i64, i64, i64),
}

fn generate(rng: &mut StdRng, org: &str) -> Case {
    let trainees: Vec<String> = (0..3)
        .map(|i| format!("organizations/{org}/members/t{i}"))
        .collect();
    let scenarios: Vec<String> = (0..2)
        .map(|i| format!("organizations/{org}/scenarios/s{i}"))
        .collect();
    let assignments = [
        String::new(),
        format!("organizations/{org}/assignments/a0"),
        format!("organizations/{org}/assignments/a1"),
    ];
    let skills = ["discovery", "objections", "closing"];
    let mut events = Vec::new();
    let mut truths = Vec::new();
    let mut usage = (0, 0, 0, 0);
    let mut n = 0;
    let next_id = |n: &mut u32| {
        *n += 1;
        format!("{org}-e{n}")
    };
    let sessions = rng.random_range(5..40);
    for s in 0..sessions {
        let session = format!("organizations/{org}/sessions/s{s}");
        let trainee = trainees[rng.random_range(0..trainees.len())].clone();
        let scenario = scenarios[rng.random_range(0..scenarios.len())].clone();
        let assignment = assignments[rng.random_range(0..assignments.len())].clone();
        let start_us = BASE_US + rng.random_range(0..10 * DAY_US);
        let duration_ms = rng.random_range(1..1800) * 1000;
        let end_us = start_us + duration_ms * 1000;
        let cancelled = rng.random_bool(0.1);
        let only_failed = rng.random_bool(0.05);
        if only_failed {
            // Start time never known: the session cannot be placed, so it does not count.
            events.push(event(
                &next_id(&mut n),
                org,
                end_us,
                ev::event::Payload::GradingFailed(ev::GradingFailed {
                    session: session.clone(),
                    grading_job: "j".into(),
                    reason: 1,
                    last_error: "x".into(),
                    attempts: 3,
                    trainee: trainee.clone(),
                    scenario: scenario.clone(),
                }),
            ));
            truths.push(Truth {
                trainee,
                scenario,
                assignment,
                start_us,
                duration_ms,
                has_duration: false,
                counted: false,
                grade: None,
            });
            continue;
        }
        let before = events.len();
        if rng.random_bool(0.8) {
            events.push(event(
                &next_id(&mut n),
                org,
                start_us,
                ev::event::Payload::SessionStarted(ev::SessionStarted {
                    session: session.clone(),
                    trainee: trainee.clone(),
                    scenario: scenario.clone(),
                    assignment: assignment.clone(),
                    mode: 2,
                    start_time: Some(ts(start_us)),
                    ..Default::default()
                }),
            ));
        }
        let ended = cancelled || rng.random_bool(0.8);
        if ended {
            let tokens = rng.random_range(0..500);
            let u = ev::LlmUsage {
                prompt_tokens: tokens,
                completion_tokens: tokens / 2,
                cost_micros: tokens * 3,
                provider: "openai".into(),
                model: "gpt".into(),
                requests: 1,
            };
            usage.0 += tokens;
            usage.1 += tokens / 2;
            usage.2 += tokens * 3;
            usage.3 += 1;
            events.push(event(
                &next_id(&mut n),
                org,
                end_us,
                ev::event::Payload::SessionEnded(ev::SessionEnded {
                    session: session.clone(),
                    trainee: trainee.clone(),
                    scenario: scenario.clone(),
                    assignment: assignment.clone(),
                    mode: 2,
                    start_time: Some(ts(start_us)),
                    end_time: Some(ts(end_us)),
                    duration: Some(dur_ms(duration_ms)),
                    end_reason: if cancelled { 5 } else { 1 },
                    end_reason_detail: String::new(),
                    usage: Some(u),
                    ..Default::default()
                }),
            ));
        }
        let mut grade = None;
        let mut counted = !cancelled && events.len() > before;
        if !cancelled && rng.random_bool(0.75) {
            let grades = rng.random_range(1..4);
            let mut previous = String::new();
            for g in 0..grades {
                let evaluation = format!("{session}/evaluations/v{g}");
                let score_milli: i64 = rng.random_range(0..=100_000);
                let passed = rng.random_bool(0.5);
                let closed = rng.random_bool(0.4);
                let mut sk: Vec<(String, i64)> = Vec::new();
                for k in skills {
                    if rng.random_bool(0.7) {
                        sk.push((k.to_owned(), rng.random_range(0..=100_000)));
                    }
                }
                sk.sort();
                // The grader's own LLM usage, counted once per evaluation.
                let tokens = rng.random_range(1..300);
                usage.0 += tokens;
                usage.1 += 2 * tokens;
                usage.2 += tokens * 5;
                usage.3 += 1;
                let graded_id = next_id(&mut n);
                events.push(event(
                    &graded_id,
                    org,
                    end_us + (g as i64 + 1) * 60_000_000,
                    ev::event::Payload::SessionGraded(ev::SessionGraded {
                        session: session.clone(),
                        evaluation: evaluation.clone(),
                        trainee: trainee.clone(),
                        scenario: scenario.clone(),
                        assignment: assignment.clone(),
                        session_start_time: Some(ts(start_us)),
                        session_duration: Some(dur_ms(duration_ms)),
                        overall_score: score_milli as f64 / 1000.0,
                        passed,
                        closed,
                        skill_scores: sk
                            .iter()
                            .map(|(k, v)| ev::SkillScore {
                                skill: k.clone(),
                                score: *v as f64 / 1000.0,
                            })
                            .collect(),
                        metrics: None,
                        usage: Some(ev::LlmUsage {
                            prompt_tokens: tokens,
                            completion_tokens: 2 * tokens,
                            cost_micros: tokens * 5,
                            provider: "openai".into(),
                            model: "grader".into(),
                            requests: 1,
                        }),
                        regrade: g > 0,
                        supersedes: previous.clone(),
                        // The session events say the source.
                        source: ev::SessionSource::Unspecified as i32,
                        criterion_scores: Vec::new(),
                    }),
                ));
                // The reconciler's copy of the same SessionGraded (another event id), as
                // if the real one had been thought lost.
                if rng.random_bool(0.3) {
                    let mut copy = events.last().cloned().expect("just pushed");
                    copy.event_id = format!("reconciled-graded-{graded_id}");
                    events.push(copy);
                }
                previous = evaluation;
                grade = Some((score_milli, passed, closed, sk));
            }
            counted = true;
        }
        // A session whose only events are a cancellation is still placed but not counted.
        truths.push(Truth {
            trainee,
            scenario,
            assignment,
            start_us,
            duration_ms,
            has_duration: ended || grade.is_some(),
            counted,
            grade,
        });
    }
    // Duplicates (redeliveries), then any order.
    let dups: Vec<ev::Event> = events
        .iter()
        .filter(|_| rng.random_bool(0.25))
        .cloned()
        .collect();
    events.extend(dups);
    events.shuffle(rng);
    Case {
        org: org.to_owned(),
        events,
        truths,
        usage,
    }
}

#[derive(Default, Debug)]
struct Expect {
    sessions: i64,
    graded: i64,
    score: i64,
    passed: i64,
    closed: i64,
    dur: i64,
    dur_n: i64,
    skills: BTreeMap<String, (i64, i64)>,
    days: BTreeMap<i64, (i64, i64)>,
}

fn brute(truths: &[Truth], start: i64, end: i64, keep: impl Fn(&Truth) -> bool) -> Expect {
    let mut e = Expect::default();
    for t in truths {
        if !t.counted || t.start_us < start || t.start_us >= end || !keep(t) {
            continue;
        }
        e.sessions += 1;
        if t.has_duration {
            e.dur += t.duration_ms;
            e.dur_n += 1;
        }
        let day = e.days.entry(t.start_us.div_euclid(DAY_US)).or_default();
        day.0 += 1;
        if let Some((score, passed, closed, skills)) = &t.grade {
            e.graded += 1;
            e.score += score;
            e.passed += i64::from(*passed);
            e.closed += i64::from(*closed);
            day.1 += 1;
            for (k, v) in skills {
                let s = e.skills.entry(k.clone()).or_default();
                s.0 += v;
                s.1 += 1;
            }
        }
    }
    e
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn avg(sum: i64, n: i64) -> f64 {
    if n == 0 { 0.0 } else { sum as f64 / n as f64 }
}

fn check(label: &str, got: &pb::SummaryStats, e: &Expect) {
    assert_eq!(i64::from(got.sessions), e.sessions, "{label}: sessions");
    assert_eq!(i64::from(got.graded_sessions), e.graded, "{label}: graded");
    assert!(
        close(got.average_score, avg(e.score, e.graded) / 1000.0),
        "{label}: average {} vs {}",
        got.average_score,
        avg(e.score, e.graded) / 1000.0
    );
    assert!(
        close(got.pass_rate, avg(e.passed, e.graded)),
        "{label}: pass"
    );
    assert!(
        close(got.close_rate, avg(e.closed, e.graded)),
        "{label}: close"
    );
    let d = got.average_duration.as_ref().map_or(0.0, |d| {
        d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1e6
    });
    assert!((d - avg(e.dur, e.dur_n)).abs() < 0.01, "{label}: duration");
    let skills: BTreeMap<String, (f64, i64)> = got
        .skills
        .iter()
        .map(|s| (s.skill.clone(), (s.average_score, i64::from(s.samples))))
        .collect();
    assert_eq!(skills.len(), e.skills.len(), "{label}: skills");
    for (k, (sum, n)) in &e.skills {
        let (a, m) = skills[k];
        assert_eq!(m, *n, "{label}: skill {k} samples");
        assert!(close(a, avg(*sum, *n) / 1000.0), "{label}: skill {k}");
    }
    let trend_sessions: i64 = got.trend.iter().map(|p| i64::from(p.sessions)).sum();
    assert_eq!(trend_sessions, e.sessions, "{label}: trend sum");
}

async fn run(backend: Backend, cases: u64) {
    let h = spawn(backend).await;
    let mut client = h.client();
    let seed0: u64 = std::env::var("ANALYTICS_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    for case in 0..cases {
        let seed = seed0 + case;
        let mut rng = StdRng::seed_from_u64(seed);
        let org = format!("p{seed}");
        let c = generate(&mut rng, &org);
        // Random batch sizes, including a batch repeating a batch (a retried RPC).
        let mut i = 0;
        while i < c.events.len() {
            let size = rng.random_range(1..20).min(c.events.len() - i);
            let batch = c.events[i..i + size].to_vec();
            h.ingest(batch.clone()).await;
            if rng.random_bool(0.1) {
                let again = h.ingest(batch).await;
                assert_eq!(
                    again.accepted, 0,
                    "seed {seed}: replayed batch changed something"
                );
            }
            i += size;
        }
        let manager = h.token(Role::Manager, "boss", &c.org).await;
        let ranges = [
            (BASE_US, BASE_US + 10 * DAY_US),
            (
                BASE_US + DAY_US / 2 + 12_345_678,
                BASE_US + 7 * DAY_US + DAY_US / 3,
            ),
            (BASE_US + 3 * DAY_US + 5, BASE_US + 3 * DAY_US + DAY_US / 2),
        ];
        let trainees: Vec<String> = (0..3)
            .map(|i| format!("organizations/{org}/members/t{i}"))
            .collect();
        let scenarios: Vec<String> = (0..2)
            .map(|i| format!("organizations/{org}/scenarios/s{i}"))
            .collect();
        for (start, end) in ranges {
            let mut filters: Vec<(String, String, String)> =
                vec![(String::new(), String::new(), String::new())];
            for t in &trainees {
                filters.push((t.clone(), String::new(), String::new()));
                filters.push((t.clone(), scenarios[0].clone(), String::new()));
            }
            for s in &scenarios {
                filters.push((String::new(), s.clone(), String::new()));
            }
            filters.push((
                String::new(),
                String::new(),
                format!("organizations/{org}/assignments/a1"),
            ));
            for (t, s, a) in filters {
                let seen_trainee = c.truths.iter().any(|x| x.trainee == t);
                if !t.is_empty() && !seen_trainee {
                    continue;
                }
                let got = client
                    .get_organization_summary(authed(
                        pb::GetOrganizationSummaryRequest {
                            name: format!("organizations/{org}"),
                            start_time: Some(ts(start)),
                            end_time: Some(ts(end)),
                            trainee: t.clone(),
                            scenario: s.clone(),
                            assignment: a.clone(),
                            time_zone: String::new(),
                            ..Default::default()
                        },
                        &manager,
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: {e:?}"))
                    .into_inner()
                    .summary
                    .unwrap_or_default();
                let want = brute(&c.truths, start, end, |x| {
                    (t.is_empty() || x.trainee == t)
                        && (s.is_empty() || x.scenario == s)
                        && (a.is_empty() || x.assignment == a)
                });
                check(
                    &format!("seed {seed} [{t}|{s}|{a}] {start}..{end}"),
                    &got,
                    &want,
                );
            }
        }
        // Trainee summary, and its previous-period change.
        let (start, end) = (BASE_US + 5 * DAY_US, BASE_US + 10 * DAY_US);
        for t in trainees
            .iter()
            .filter(|t| c.truths.iter().any(|x| x.trainee == **t))
        {
            let got = client
                .get_trainee_summary(authed(
                    pb::GetTraineeSummaryRequest {
                        trainee: t.clone(),
                        start_time: Some(ts(start)),
                        end_time: Some(ts(end)),
                        ..Default::default()
                    },
                    &manager,
                ))
                .await
                .expect("trainee summary")
                .into_inner();
            let want = brute(&c.truths, start, end, |x| x.trainee == *t);
            check(
                &format!("seed {seed} trainee {t}"),
                got.summary.as_ref().expect("summary"),
                &want,
            );
            let prev = brute(&c.truths, start - 5 * DAY_US, start, |x| x.trainee == *t);
            let change = got.change.expect("change");
            assert_eq!(i64::from(change.sessions), want.sessions - prev.sessions);
            assert!(close(
                change.average_score,
                avg(want.score, want.graded) / 1000.0 - avg(prev.score, prev.graded) / 1000.0
            ));
            assert_eq!(
                got.recent_evaluations.len() as i64,
                want.graded.min(10),
                "seed {seed}: recent evaluations"
            );
        }
        // Leaderboard by average score over a non-aligned range.
        let (start, end) = (BASE_US + 12_345, BASE_US + 9 * DAY_US + 77);
        let got = client
            .get_leaderboard(authed(
                pb::GetLeaderboardRequest {
                    organization: format!("organizations/{org}"),
                    metric: pb::LeaderboardMetric::AverageScore as i32,
                    min_sessions: 1,
                    start_time: Some(ts(start)),
                    end_time: Some(ts(end)),
                    ..Default::default()
                },
                &manager,
            ))
            .await
            .expect("leaderboard")
            .into_inner();
        let mut want: Vec<(String, f64)> = trainees
            .iter()
            .filter_map(|t| {
                let e = brute(&c.truths, start, end, |x| x.trainee == *t);
                (e.graded >= 1).then(|| (t.clone(), avg(e.score, e.graded) / 1000.0))
            })
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let got_list: Vec<(String, f64)> = got
            .entries
            .iter()
            .map(|e| (e.trainee.clone(), e.value))
            .collect();
        assert_eq!(got_list.len(), want.len(), "seed {seed}: leaderboard size");
        for (g, w) in got_list.iter().zip(&want) {
            assert_eq!(g.0, w.0, "seed {seed}: leaderboard order");
            assert!(close(g.1, w.1));
        }
        // Usage totals: every distinct usage report counted once.
        let usage = client
            .get_usage(authed(
                pb::GetUsageRequest {
                    organization: format!("organizations/{org}"),
                    start_time: Some(ts(BASE_US - DAY_US)),
                    end_time: Some(ts(BASE_US + 20 * DAY_US)),
                    ..Default::default()
                },
                &manager,
            ))
            .await
            .expect("usage")
            .into_inner()
            .totals
            .unwrap_or_default();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cost_micros,
                usage.requests
            ),
            c.usage,
            "seed {seed}: usage"
        );
        // Assignment progress (config not reachable here: attempts and best from events).
        let a1 = format!("organizations/{org}/assignments/a1");
        let mut expect: HashMap<String, (i64, i64)> = HashMap::new();
        for t in c.truths.iter().filter(|t| t.assignment == a1) {
            if let Some((score, ..)) = &t.grade {
                let e = expect.entry(t.trainee.clone()).or_default();
                e.0 += 1;
                e.1 = e.1.max(*score);
            }
        }
        match client
            .get_assignment_progress(authed(
                pb::GetAssignmentProgressRequest {
                    assignment: a1.clone(),
                    ..Default::default()
                },
                &manager,
            ))
            .await
        {
            Ok(resp) => {
                let resp = resp.into_inner();
                assert_eq!(resp.assignees.len(), expect.len(), "seed {seed}: assignees");
                for a in resp.assignees {
                    let (attempts, best) = expect[&a.trainee];
                    assert_eq!(i64::from(a.attempts), attempts);
                    assert!(close(a.best_score, best as f64 / 1000.0));
                }
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::NotFound);
                assert!(expect.is_empty(), "seed {seed}: progress missing");
            }
        }
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_match_brute_force_sqlite() {
    run(Backend::Sqlite, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_match_brute_force_postgres() {
    run(Backend::Postgres, 15).await;
}
