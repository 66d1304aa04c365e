//! Test harness: the config service on a real server (127.0.0.1:0) over a real connection,
//! on SQLite or PostgreSQL, with an organization ("acme") of an admin, a manager and a
//! trainee, and a second organization ("globex").
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use salestrainer_proto::config::{self as pb, config_service_client::ConfigServiceClient};
use salestrainer_runtime::{
    Role, Settings,
    auth::{JwtVerifier, TokenMinter},
    server::ServerBuilder,
    settings::ServerSettings,
};
use tonic::{Code, Request, transport::Channel};

pub const SECRET: &[u8] = b"config-test-secret";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

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
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
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
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn req<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
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

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> App {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    if let Backend::Postgres = backend {
        settings.database_url = format!(
            "postgres://postgres@127.0.0.1:5432/cfg_test_{}",
            uuid::Uuid::new_v4().simple()
        );
    }
    tweak(&mut settings);
    let verifier = Arc::new(JwtVerifier::new(Some(SECRET), &[], "").unwrap());
    let minter = TokenMinter::new(SECRET, "");
    let mut server = ServerBuilder::new(ServerSettings::default(), verifier).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = salestrainer_runtime::Context::new(settings.clone(), minter.clone(), addr).unwrap();
    let starter = salestrainer_config::mount(&mut server, &ctx).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(salestrainer_runtime::app::run_until(
        server,
        vec![starter],
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    wait_serving(channel.clone(), backend).await;
    let client = ConfigServiceClient::new(channel);
    let service = minter.service_token("test").unwrap();
    let mut app = App {
        client,
        admin: minter.mint("alice", "acme", Role::Admin, 3600).unwrap(),
        manager: minter.mint("mia", "acme", Role::Manager, 3600).unwrap(),
        trainee: minter.mint("tom", "acme", Role::Trainee, 3600).unwrap(),
        trainee_member: "organizations/acme/members/tom".into(),
        other_admin: minter.mint("olga", "globex", Role::Admin, 3600).unwrap(),
        stranger: minter.mint("nobody", "acme", Role::Admin, 3600).unwrap(),
        service,
        minter,
        settings,
        dir,
        backend,
        shutdown: Some(tx),
    };
    seed(&mut app).await;
    app
}

/// Health turns SERVING once connected and migrated. A database that never comes up fails
/// the test (it is not skipped).
async fn wait_serving(channel: Channel, backend: Backend) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if let Ok(r) = r
            && r.into_inner().status == ServingStatus::Serving as i32
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "config service never became SERVING on {backend:?} (is PostgreSQL on 127.0.0.1:5432 up?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
