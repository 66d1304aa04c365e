//! The ready demo of a first start: a manager, two trainees, a persona, a rubric, a scenario
//! open to all and an assignment, created through the config service's public API (so they
//! pass the same validation and emit the same events as anything an admin creates). Each
//! create that finds its resource already there is skipped, so a restart changes nothing.

use salestrainer_proto::config::{self as cfg, config_service_client::ConfigServiceClient};
use salestrainer_runtime::{Role, auth::TokenMinter};
use tonic::{Code, transport::Channel};

/// A demo member: subject (also its member id), display name, role.
pub const DEMO_USERS: &[(&str, &str, cfg::Role)] = &[
    ("maria", "Maria Manager", cfg::Role::Manager),
    ("tom", "Tom Trainee", cfg::Role::Trainee),
    ("tina", "Tina Trainee", cfg::Role::Trainee),
];

type Client = ConfigServiceClient<Channel>;

fn authed<T>(msg: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

/// Ok(true) when created, Ok(false) when it was already there.
fn created<T>(r: Result<T, tonic::Status>, what: &str) -> anyhow::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::AlreadyExists => Ok(false),
        Err(s) => Err(anyhow::anyhow!("creating the demo {what}: {s}")),
    }
}

/// Creates whatever of the demo content is missing. Returns whether anything was created.
pub async fn ensure_demo_content(uri: &str, minter: &TokenMinter) -> anyhow::Result<bool> {
    let org = crate::DEMO_ORGANIZATION;
    let parent = format!("organizations/{org}");
    let token = minter.mint(crate::DEMO_ADMIN_SUBJECT, org, Role::Admin, 300)?;
    let channel = Channel::from_shared(uri.to_owned())?.connect().await?;
    let mut c: Client = ConfigServiceClient::new(channel);
    let mut any = false;
    for (subject, name, role) in DEMO_USERS {
        let r = c
            .create_member(authed(
                cfg::CreateMemberRequest {
                    parent: parent.clone(),
                    member: Some(cfg::Member {
                        subject: (*subject).into(),
                        display_name: (*name).into(),
                        email: format!("{subject}@demo.example"),
                        role: *role as i32,
                        ..Default::default()
                    }),
                    member_id: (*subject).into(),
                },
                &token,
            )?)
            .await;
        any |= created(r, "member")?;
    }
    let r = c
        .create_persona(authed(
            cfg::CreatePersonaRequest {
                parent: parent.clone(),
                persona: Some(cfg::Persona {
                    display_name: "Dana Reyes".into(),
                    role: "Head of Operations".into(),
                    company: "Northwind Logistics".into(),
                    background: "We run 40 delivery trucks across three states. Dispatch is \
                        planned by hand in spreadsheets every morning. Late deliveries cost \
                        us about 20k a month in penalties."
                        .into(),
                    personality: "sceptical, busy, warms up to concrete numbers".into(),
                    objections: vec![
                        "Your price is too high for a company our size.".into(),
                        "We tried a routing tool before and the drivers hated it.".into(),
                    ],
                    difficulty: cfg::Difficulty::Easy as i32,
                    ..Default::default()
                }),
                persona_id: "dana".into(),
            },
            &token,
        )?)
        .await;
    any |= created(r, "persona")?;
    let criterion = |id: &str, skill: &str, description: &str, phrases: &[&str]| cfg::Criterion {
        id: id.into(),
        skill: skill.into(),
        description: description.into(),
        weight: 1.0,
        scale_min: 1,
        scale_max: 5,
        levels: vec![
            cfg::ScoringLevel {
                score: 1,
                description: "Missing".into(),
            },
            cfg::ScoringLevel {
                score: 3,
                description: "Partly there".into(),
            },
            cfg::ScoringLevel {
                score: 5,
                description: "Excellent".into(),
            },
        ],
        signal_phrases: phrases.iter().map(|p| (*p).into()).collect(),
    };
    let r = c
        .create_rubric(authed(
            cfg::CreateRubricRequest {
                parent: parent.clone(),
                rubric: Some(cfg::Rubric {
                    display_name: "Discovery call".into(),
                    criteria: vec![
                        criterion(
                            "discovery",
                            "Discovery",
                            "Asks open questions about how they work today and what it costs.",
                            &["how do you", "what happens when", "tell me about"],
                        ),
                        criterion(
                            "objections",
                            "Objection handling",
                            "Acknowledges the objection and answers it with value.",
                            &["i understand", "customers your size", "recover the cost"],
                        ),
                        criterion(
                            "next-step",
                            "Next step",
                            "Asks for a concrete next step.",
                            &["schedule", "demo", "next week"],
                        ),
                    ],
                    passing_score: 60.0,
                    ..Default::default()
                }),
                rubric_id: "discovery-call".into(),
            },
            &token,
        )?)
        .await;
    any |= created(r, "rubric")?;
    let r = c
        .create_scenario(authed(
            cfg::CreateScenarioRequest {
                parent: parent.clone(),
                scenario: Some(cfg::Scenario {
                    display_name: "Cold call: Northwind Logistics".into(),
                    persona: format!("{parent}/personas/dana"),
                    rubric: format!("{parent}/rubrics/discovery-call"),
                    product_brief: "RouteWise plans delivery routes automatically every morning \
                        and sends them to a driver app."
                        .into(),
                    goal: Some(cfg::Goal {
                        kind: cfg::GoalKind::BookMeeting as i32,
                        description: "Book a 30 minute demo.".into(),
                    }),
                    open_to_all: true,
                    ..Default::default()
                }),
                scenario_id: "cold-call".into(),
            },
            &token,
        )?)
        .await;
    any |= created(r, "scenario")?;
    let due = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
        + 7 * 24 * 3600;
    let r = c
        .create_assignment(authed(
            cfg::CreateAssignmentRequest {
                parent: parent.clone(),
                assignment: Some(cfg::Assignment {
                    scenario: format!("{parent}/scenarios/cold-call"),
                    assignees: vec![
                        format!("{parent}/members/tom"),
                        format!("{parent}/members/tina"),
                    ],
                    due_time: Some(prost_types::Timestamp {
                        seconds: due,
                        nanos: 0,
                    }),
                    required_attempts: 2,
                    passing_score: 60.0,
                    state: cfg::AssignmentState::Open as i32,
                    ..Default::default()
                }),
                assignment_id: "first-week".into(),
            },
            &token,
        )?)
        .await;
    any |= created(r, "assignment")?;
    Ok(any)
}
