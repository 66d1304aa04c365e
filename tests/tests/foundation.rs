//! The foundation every service stands on, exercised over real connections: health,
//! reflection, gRPC-Web, authentication, internal RPCs, message limits, migrations.

use std::time::Duration;

use prost::Message;
use salestrainer_proto::{analytics, config, grading};
use salestrainer_runtime::Role;
use salestrainer_tests::{
    SERVICES, authed, fresh_postgres_template, health, seed_organization, spawn_app,
    spawn_app_with, wait_serving,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn every_service_reports_serving_and_reflection_lists_them() {
    let app = spawn_app().await;
    for service in SERVICES {
        assert_eq!(
            health(&app, service).await,
            Some(ServingStatus::Serving),
            "{service}"
        );
    }

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = stream.next().await.expect("a response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in SERVICES {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"));
    app.stop().await;
}

#[tokio::test]
async fn health_turns_serving_only_after_migrations() {
    // Hold an exclusive lock on the config database so its migrations cannot run yet.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.db");
    let lock_url = format!("sqlite://{}?mode=rwc", path.display());
    let locker = sea_orm::Database::connect(lock_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    locker
        .execute_unprepared("CREATE TABLE hold (x INTEGER)")
        .await
        .unwrap();
    let txn = sea_orm::TransactionTrait::begin(&locker).await.unwrap();
    txn.execute_unprepared("INSERT INTO hold VALUES (1)")
        .await
        .unwrap();

    let data_dir = dir.path().to_path_buf();
    let app = spawn_app_with(move |s| {
        s.database_url = format!("sqlite://{}/{{service}}.db?mode=rwc", data_dir.display());
    })
    .await;
    for other in &SERVICES[1..] {
        wait_serving(&app, other, Duration::from_secs(20)).await;
    }
    // The others are up; config is still blocked on its migrations.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(&app, SERVICES[0]).await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(health(&app, "").await, Some(ServingStatus::NotServing));
    // A call meanwhile is refused as UNAVAILABLE rather than hanging or failing oddly.
    let mut client = config::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let token = app.token(Role::Admin, "demo-admin", "demo");
    let err = client
        .get_organization(authed(
            config::GetOrganizationRequest {
                name: "organizations/demo".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Unimplemented),
        "{err:?}"
    );

    txn.rollback().await.unwrap();
    drop(locker);
    wait_serving(&app, SERVICES[0], Duration::from_secs(30)).await;
    wait_serving(&app, "", Duration::from_secs(5)).await;
    app.stop().await;
}

#[tokio::test]
async fn grpc_web_over_http1_works() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder().http1_only().build().unwrap();

    let frame = |msg: Vec<u8>| {
        let mut body = vec![0u8];
        body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        body.extend_from_slice(&msg);
        body
    };
    let check = tonic_health::pb::HealthCheckRequest {
        service: SERVICES[0].into(),
    };
    let resp = http
        .post(format!("http://{}/grpc.health.v1.Health/Check", app.addr))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame(check.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_11);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web")
    );
    let body = resp.bytes().await.unwrap();
    // Data frame: flag 0, length, HealthCheckResponse; then a trailer frame (flag 0x80).
    assert_eq!(body[0], 0);
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let msg = tonic_health::pb::HealthCheckResponse::decode(&body[5..5 + len]).unwrap();
    assert_eq!(msg.status, ServingStatus::Serving as i32);
    let trailers = String::from_utf8_lossy(&body[5 + len + 5..]).to_lowercase();
    assert_eq!(body[5 + len], 0x80);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // An authenticated service call goes through gRPC-Web too (and without a token, it is refused).
    let req = config::GetOrganizationRequest {
        name: "organizations/demo".into(),
    };
    let unauth = http
        .post(format!(
            "http://{}/salestrainer.config.v1.ConfigService/GetOrganization",
            app.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(req.encode_to_vec()))
        .send()
        .await
        .unwrap();
    let status = unauth
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        status.as_deref(),
        Some("16"),
        "UNAUTHENTICATED without a token"
    );
    app.stop().await;
}

#[tokio::test]
async fn missing_or_forged_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let mut client = config::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let req = || config::ListPersonasRequest {
        parent: "organizations/demo".into(),
        ..Default::default()
    };

    let err = client.list_personas(req()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let forged = salestrainer_runtime::auth::TokenMinter::new(b"not-the-server-secret", "")
        .mint("demo-admin", "demo", Role::Admin, 600)
        .unwrap();
    let err = client
        .list_personas(authed(req(), &forged))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let err = client
        .list_personas(authed(req(), "not.a.jwt"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A valid token passes authentication (whatever the handler then answers).
    let token = app.token(Role::Admin, "demo-admin", "demo");
    if let Err(err) = client.list_personas(authed(req(), &token)).await {
        assert_ne!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn internal_rpcs_refuse_user_tokens() {
    let app = spawn_app().await;
    let user = app.token(Role::Admin, "demo-admin", "demo");
    let service = app.service_token("call");

    let mut cfg = config::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let resolve = || config::ResolveProviderCredentialRequest {
        parent: "organizations/demo".into(),
        ..Default::default()
    };
    let err = cfg
        .resolve_provider_credential(authed(resolve(), &user))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    if let Err(err) = cfg
        .resolve_provider_credential(authed(resolve(), &service))
        .await
    {
        assert!(
            !matches!(err.code(), Code::PermissionDenied | Code::Unauthenticated),
            "{err:?}"
        );
    }

    let mut grd = grading::grading_service_client::GradingServiceClient::new(app.channel.clone());
    let err = grd
        .submit_session(authed(grading::SubmitSessionRequest::default(), &user))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut ana =
        analytics::analytics_service_client::AnalyticsServiceClient::new(app.channel.clone());
    let err = ana
        .ingest_events(authed(analytics::IngestEventsRequest::default(), &user))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted() {
    let app = spawn_app_with(|s| s.server.max_message_bytes = 64 * 1024).await;
    wait_serving(&app, "", Duration::from_secs(30)).await;
    seed_organization(&app, "demo", &[("demo-admin", Role::Admin)]).await;
    let token = app.token(Role::Admin, "demo-admin", "demo");
    let mut client = config::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let persona = config::Persona {
        display_name: "Big".into(),
        background: "x".repeat(100 * 1024),
        ..Default::default()
    };
    let err = client
        .create_persona(authed(
            config::CreatePersonaRequest {
                parent: "organizations/demo".into(),
                persona: Some(persona),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // A message under the limit is not refused for its size.
    let small = config::ListPersonasRequest {
        parent: "organizations/demo".into(),
        ..Default::default()
    };
    if let Err(err) = client.list_personas(authed(small, &token)).await {
        assert_ne!(err.code(), Code::ResourceExhausted);
    }
    app.stop().await;
}

/// A server at its concurrency limit sheds calls at once (UNAVAILABLE, no queueing) but still
/// answers health checks: Kubernetes probes them on the serving port, and a shed probe would
/// pull a busy pod out of its Service or restart it mid-load.
#[tokio::test]
async fn a_saturated_server_sheds_calls_but_answers_health() {
    use salestrainer_proto::call;

    let app = spawn_app_with(|s| s.server.concurrency_limit = 1).await;
    wait_serving(&app, "", Duration::from_secs(30)).await;
    seed_organization(
        &app,
        "demo",
        &[("demo-admin", Role::Admin), ("tom", Role::Trainee)],
    )
    .await;
    let admin = app.token(Role::Admin, "demo-admin", "demo");
    let tom = app.token(Role::Trainee, "tom", "demo");
    let list = || {
        let mut client =
            config::config_service_client::ConfigServiceClient::new(app.channel.clone());
        let req = authed(
            config::ListPersonasRequest {
                parent: "organizations/demo".into(),
                ..Default::default()
            },
            &admin,
        );
        async move { client.list_personas(req).await.map(|_| ()) }
    };
    list().await.expect("an idle server answers");

    // A Converse stream that never sends its start message holds the one slot: the server
    // waits for that message before it answers the call. The suite's own background calls
    // (its services call each other through this server) can hold the slot for a moment, so
    // a stream shed on arrival is opened again.
    let hold_slot = || {
        let mut client = call::call_service_client::CallServiceClient::new(app.channel.clone());
        let (hold, requests) = tokio::sync::mpsc::channel::<call::ConverseRequest>(1);
        let req = authed(tokio_stream::wrappers::ReceiverStream::new(requests), &tom);
        let held = tokio::spawn(async move { client.converse(req).await.map(|_| ()) });
        (hold, held)
    };
    let (mut hold, mut held) = hold_slot();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let shed = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the held stream never filled the server's one slot"
        );
        if held.is_finished() {
            let ended = held.await.unwrap();
            let code = ended.as_ref().err().map(|s| s.code());
            assert_eq!(code, Some(Code::ResourceExhausted), "{ended:?}");
            (hold, held) = hold_slot();
        }
        // Shed twice, 100 ms apart, with the stream still open: the stream holds the slot.
        if let Err(status) = list().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !held.is_finished() && list().await.is_err() {
                break status;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    for service in ["", "salestrainer.config.v1.ConfigService"] {
        assert_eq!(
            health(&app, service).await,
            Some(ServingStatus::Serving),
            "health of {service:?} while saturated"
        );
    }
    assert!(list().await.is_err(), "still saturated after the probes");

    drop(hold);
    let _ = held.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while list().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

async fn migrated_tables(url: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(url).await.expect("connect");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .expect("read migrations");
    let versions = rows
        .iter()
        .map(|r| r.try_get::<String>("", "version").expect("version"))
        .collect();
    db.close().await.expect("close");
    versions
}

#[tokio::test]
async fn migrations_run_on_sqlite() {
    let app = spawn_app().await;
    for service in ["config", "call", "grading", "analytics"] {
        let url = app.settings.database_url_for(service);
        let versions = migrated_tables(&url).await;
        assert!(!versions.is_empty(), "{service} has no migrations applied");
    }
    app.stop().await;
}

#[tokio::test]
async fn migrations_run_on_postgres() {
    let template = fresh_postgres_template();
    let app = spawn_app_with({
        let template = template.clone();
        move |s| s.database_url = template
    })
    .await;
    wait_serving(&app, "", Duration::from_secs(60)).await;
    for service in ["config", "call", "grading", "analytics"] {
        let url = template.replace("{service}", service);
        assert!(url.starts_with("postgres://"));
        let versions = migrated_tables(&url).await;
        assert!(!versions.is_empty(), "{service} has no migrations applied");
    }
    app.stop().await;
    // Leave no test databases behind.
    let admin = sea_orm::Database::connect(format!(
        "{}/postgres",
        salestrainer_tests::postgres_server_url()
    ))
    .await
    .unwrap();
    use sea_orm::ConnectionTrait;
    for service in ["config", "call", "grading", "analytics"] {
        let name = template
            .rsplit('/')
            .next()
            .unwrap()
            .replace("{service}", service);
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

#[tokio::test]
async fn prometheus_metrics_count_requests_by_code() {
    let app = spawn_app().await;
    let admin = salestrainer_runtime::metrics::serve_admin(
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .await
    .unwrap();
    let mut client = config::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let _ = client
        .list_personas(config::ListPersonasRequest {
            parent: "organizations/demo".into(),
            ..Default::default()
        })
        .await;
    let body = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("grpc_server_requests_total")
                && l.contains("method=\"ListPersonas\"")
                && l.contains("code=\"Unauthenticated\"")
        })
        .unwrap_or_else(|| panic!("no request counter for ListPersonas in:\n{body}"));
    assert!(
        line.ends_with(" 1")
            || line
                .split(' ')
                .next_back()
                .is_some_and(|n| n.parse::<f64>().unwrap_or(0.0) >= 1.0)
    );
    assert!(body.contains("grpc_server_request_duration_seconds_bucket"));
    assert!(body.contains("grpc_server_in_flight"));
    app.stop().await;
}

/// Each service's section holds the window in which its outbox relay sends events again after
/// Redis lost its data: 24 h unless set, and what its section says when set.
#[test]
fn each_service_reads_its_relay_replay_window() {
    use salestrainer_analytics::app::settings::AnalyticsSettings;
    use salestrainer_call::app::settings::CallSettings;
    use salestrainer_config::app::settings::ConfigSettings;
    use salestrainer_grading::app::settings::GradingSettings;

    fn windows(s: &salestrainer_runtime::Settings) -> [u64; 4] {
        [
            s.section::<ConfigSettings>("config")
                .unwrap()
                .relay_replay_after_loss_secs,
            s.section::<CallSettings>("call")
                .unwrap()
                .relay_replay_after_loss_secs,
            s.section::<GradingSettings>("grading")
                .unwrap()
                .relay_replay_after_loss_secs,
            s.section::<AnalyticsSettings>("analytics")
                .unwrap()
                .relay_replay_after_loss_secs,
        ]
    }
    let mut s = salestrainer_runtime::Settings::default();
    assert_eq!(windows(&s), [24 * 3600; 4]);
    for (service, secs) in [
        ("config", 60),
        ("call", 120),
        ("grading", 0),
        ("analytics", 7200),
    ] {
        s.set_section(
            service,
            serde_json::json!({ "relay_replay_after_loss_secs": secs }),
        );
    }
    assert_eq!(windows(&s), [60, 120, 0, 7200]);
}
