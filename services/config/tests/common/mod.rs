//! Test harness: the config service alone on a real server (127.0.0.1:0, from
//! `salestrainer_tests`) over a real connection, on SQLite or PostgreSQL, with an organization
//! ("acme") of an admin, a manager and a trainee, and a second organization ("globex").
#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use salestrainer_config::app::{ConfigApp, settings::ConfigSettings};
use salestrainer_proto::config::{self as pb, config_service_client::ConfigServiceClient};
use salestrainer_runtime::{Role, Settings, auth::TokenMinter};
pub use salestrainer_tests::Backend;
use salestrainer_tests::{TestApp, spawn_service_with, wait_serving};
use tonic::{Code, Request, transport::Channel};

/// Runs an async test body once per backend: `both_backends!(name);` expects `async fn
/// name(app: App)` and generates `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::spawn_app(super::common::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::spawn_app(super::common::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

pub struct App {
    pub client: ConfigServiceClient<Channel>,
    pub minter: TokenMinter,
    pub settings: Settings,
    /// The data directory (the SQLite file, the generated key-encryption key).
    pub dir: PathBuf,
    pub backend: Backend,
    /// Tokens of the seeded callers.
    pub admin: String,
    pub manager: String,
    pub trainee: String,
    pub trainee_member: String,
    /// Admin of "globex".
    pub other_admin: String,
    /// A valid token for "acme" whose subject is not a member.
    pub stranger: String,
    pub service: String,
    /// The running server; stopped when the harness is dropped.
    pub server: TestApp,
}

pub fn req<T>(msg: T, token: &str) -> Request<T> {
    salestrainer_tests::authed(msg, token)
}

pub fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

pub async fn spawn_app(backend: Backend) -> App {
    spawn_app_with(backend, |_| {}).await
}

/// Health turns SERVING once connected and migrated. A database that never comes up fails
/// the test (it is not skipped).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> App {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_test_writer()
        .try_init();
    let server = spawn_service_with::<ConfigApp>(
        |s| {
            s.database_url = backend.database_url();
            tweak(s);
        },
        ConfigSettings::default(),
    )
    .await;
    wait_serving(&server, "", Duration::from_secs(30)).await;
    let minter = &server.minter;
    let mut app = App {
        client: ConfigServiceClient::new(server.channel.clone()),
        admin: minter.mint("alice", "acme", Role::Admin, 3600).unwrap(),
        manager: minter.mint("mia", "acme", Role::Manager, 3600).unwrap(),
        trainee: minter.mint("tom", "acme", Role::Trainee, 3600).unwrap(),
        trainee_member: "organizations/acme/members/tom".into(),
        other_admin: minter.mint("olga", "globex", Role::Admin, 3600).unwrap(),
        stranger: minter.mint("nobody", "acme", Role::Admin, 3600).unwrap(),
        service: server.service_token("test"),
        minter: server.minter.clone(),
        settings: server.settings.clone(),
        dir: server.settings.data_dir.clone(),
        backend,
        server,
    };
    seed(&mut app).await;
    app
}

async fn seed(app: &mut App) {
    for (id, name) in [("acme", "Acme"), ("globex", "Globex")] {
        app.client
            .create_organization(req(
                pb::CreateOrganizationRequest {
                    organization: Some(pb::Organization {
                        display_name: name.into(),
                        ..Default::default()
                    }),
                    organization_id: id.into(),
                },
                &app.service,
            ))
            .await
            .unwrap();
    }
    for (org, id, subject, role) in [
        ("acme", "alice", "alice", pb::Role::Admin),
        ("acme", "mia", "mia", pb::Role::Manager),
        ("acme", "tom", "tom", pb::Role::Trainee),
        ("globex", "olga", "olga", pb::Role::Admin),
    ] {
        app.client
            .create_member(req(
                pb::CreateMemberRequest {
                    parent: format!("organizations/{org}"),
                    member: Some(pb::Member {
                        subject: subject.into(),
                        display_name: subject.into(),
                        role: role as i32,
                        ..Default::default()
                    }),
                    member_id: id.into(),
                },
                &app.service,
            ))
            .await
            .unwrap();
    }
}

pub fn persona(name: &str) -> pb::Persona {
    pb::Persona {
        display_name: name.into(),
        role: "VP Operations".into(),
        company: "Initech".into(),
        objections: vec!["too expensive".into()],
        difficulty: pb::Difficulty::Hard as i32,
        ..Default::default()
    }
}

pub fn rubric(name: &str) -> pb::Rubric {
    pb::Rubric {
        display_name: name.into(),
        criteria: vec![
            pb::Criterion {
                id: "discovery".into(),
                skill: "discovery".into(),
                weight: 1.0,
                ..Default::default()
            },
            pb::Criterion {
                id: "closing".into(),
                skill: "closing".into(),
                weight: 3.0,
                ..Default::default()
            },
        ],
        passing_score: 70.0,
        ..Default::default()
    }
}

impl App {
    pub async fn create_persona(&mut self, id: &str) -> pb::Persona {
        self.client
            .create_persona(req(
                pb::CreatePersonaRequest {
                    parent: "organizations/acme".into(),
                    persona: Some(persona(id)),
                    persona_id: id.into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .persona
            .unwrap()
    }

    pub async fn create_rubric(&mut self, id: &str) -> pb::Rubric {
        self.client
            .create_rubric(req(
                pb::CreateRubricRequest {
                    parent: "organizations/acme".into(),
                    rubric: Some(rubric(id)),
                    rubric_id: id.into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .rubric
            .unwrap()
    }

    pub async fn create_scenario(
        &mut self,
        id: &str,
        persona: &str,
        rubric: &str,
        open_to_all: bool,
    ) -> pb::Scenario {
        self.client
            .create_scenario(req(
                pb::CreateScenarioRequest {
                    parent: "organizations/acme".into(),
                    scenario: Some(pb::Scenario {
                        display_name: id.into(),
                        persona: persona.into(),
                        rubric: rubric.into(),
                        open_to_all,
                        goal: Some(pb::Goal {
                            kind: pb::GoalKind::BookMeeting as i32,
                            description: String::new(),
                        }),
                        ..Default::default()
                    }),
                    scenario_id: id.into(),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .scenario
            .unwrap()
    }

    pub async fn create_assignment(
        &mut self,
        id: &str,
        scenario: &str,
        token: &str,
    ) -> Result<pb::Assignment, tonic::Status> {
        let trainee = self.trainee_member.clone();
        self.client
            .create_assignment(req(
                pb::CreateAssignmentRequest {
                    parent: "organizations/acme".into(),
                    assignment: Some(pb::Assignment {
                        scenario: scenario.into(),
                        assignees: vec![trainee],
                        required_attempts: 2,
                        ..Default::default()
                    }),
                    assignment_id: id.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().assignment.unwrap())
    }

    /// A raw connection to the service's database.
    pub async fn raw_db(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.settings.database_url_for("config"))
            .await
            .unwrap()
    }
}
