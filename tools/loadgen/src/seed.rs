//! What the load needs in the organization, created through the public API as its admin:
//! trainee and manager members, a persona, a rubric and a scenario open to all. Whatever already exists
//! (an earlier run) is kept.

use salestrainer_proto::config::{self as cfg, config_service_client::ConfigServiceClient};
use salestrainer_runtime::{Role, auth::TokenMinter};
use tokio::task::JoinSet;
use tonic::{Code, transport::Channel};

use crate::{Args, run::authed};

/// Names of the load's members and content.
#[derive(Clone)]
pub struct Plan {
    pub parent: String,
    pub trainees: Vec<String>,
    pub managers: Vec<String>,
    pub scenario: String,
}

impl Plan {
    pub fn new(args: &Args) -> Self {
        Self {
            parent: format!("organizations/{}", args.org),
            trainees: (0..args.trainees)
                .map(|i| format!("lg-trainee-{i}"))
                .collect(),
            managers: (0..args.managers)
                .map(|i| format!("lg-manager-{i}"))
                .collect(),
            scenario: format!("organizations/{}/scenarios/loadgen", args.org),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} trainees, {} managers and {}",
            self.trainees.len(),
            self.managers.len(),
            self.scenario
        )
    }
}

fn created<T>(r: Result<T, tonic::Status>, what: &str) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::AlreadyExists => Ok(()),
        Err(s) => Err(anyhow::anyhow!("creating {what}: {s}")),
    }
}

pub async fn seed(
    args: &Args,
    plan: &Plan,
    minter: &TokenMinter,
    channel: &Channel,
) -> anyhow::Result<()> {
    let token = minter.mint(&args.admin, &args.org, Role::Admin, 3600)?;
    let client = ConfigServiceClient::new(channel.clone());
    let members = plan
        .trainees
        .iter()
        .map(|s| (s.clone(), cfg::Role::Trainee))
        .chain(
            plan.managers
                .iter()
                .map(|s| (s.clone(), cfg::Role::Manager)),
        );
    // A few creates at a time: seeding is not what is measured.
    let mut tasks = JoinSet::new();
    for (subject, role) in members {
        if tasks.len() >= 16
            && let Some(done) = tasks.join_next().await
        {
            done??;
        }
        let mut c = client.clone();
        let req = authed(
            cfg::CreateMemberRequest {
                parent: plan.parent.clone(),
                member: Some(cfg::Member {
                    subject: subject.clone(),
                    display_name: subject.clone(),
                    email: format!("{subject}@loadgen.example"),
                    role: role as i32,
                    ..Default::default()
                }),
                member_id: subject.clone(),
            },
            &token,
        )?;
        tasks.spawn(async move { created(c.create_member(req).await, &subject) });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let mut c = client;
    let r = c
        .create_persona(authed(
            cfg::CreatePersonaRequest {
                parent: plan.parent.clone(),
                persona: Some(cfg::Persona {
                    display_name: "Load Persona".into(),
                    role: "Head of Operations".into(),
                    company: "Loadgen Logistics".into(),
                    background: "Plans routes by hand every morning.".into(),
                    personality: "busy, sceptical".into(),
                    objections: vec!["Your price is too high.".into()],
                    difficulty: cfg::Difficulty::Easy as i32,
                    ..Default::default()
                }),
                persona_id: "loadgen".into(),
            },
            &token,
        )?)
        .await;
    created(r, "the persona")?;
    let level = |score: i32, description: &str| cfg::ScoringLevel {
        score,
        description: description.into(),
    };
    let r = c
        .create_rubric(authed(
            cfg::CreateRubricRequest {
                parent: plan.parent.clone(),
                rubric: Some(cfg::Rubric {
                    display_name: "Load: next step".into(),
                    criteria: vec![cfg::Criterion {
                        id: "next-step".into(),
                        skill: "Next step".into(),
                        description: "Asks for a concrete next step.".into(),
                        weight: 1.0,
                        scale_min: 1,
                        scale_max: 5,
                        levels: vec![level(1, "Missing"), level(3, "Vague"), level(5, "Booked")],
                        signal_phrases: vec!["schedule".into(), "demo".into()],
                    }],
                    passing_score: 60.0,
                    ..Default::default()
                }),
                rubric_id: "loadgen".into(),
            },
            &token,
        )?)
        .await;
    created(r, "the rubric")?;
    let r = c
        .create_scenario(authed(
            cfg::CreateScenarioRequest {
                parent: plan.parent.clone(),
                scenario: Some(cfg::Scenario {
                    display_name: "Load: cold call".into(),
                    persona: format!("{}/personas/loadgen", plan.parent),
                    rubric: format!("{}/rubrics/loadgen", plan.parent),
                    product_brief: "Automatic route planning.".into(),
                    goal: Some(cfg::Goal {
                        kind: cfg::GoalKind::BookMeeting as i32,
                        description: "Book a demo.".into(),
                    }),
                    open_to_all: true,
                    ..Default::default()
                }),
                scenario_id: "loadgen".into(),
            },
            &token,
        )?)
        .await;
    created(r, "the scenario")?;
    Ok(())
}
