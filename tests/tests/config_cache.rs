//! The typed config client other services use: a cached read is served from the cache, and a
//! change is seen at once (ConfigChanged over the bus), long before the 5-minute TTL.

use std::time::{Duration, Instant};

use salestrainer_config_client::ConfigClient;
use salestrainer_proto::config as pb;
use salestrainer_runtime::Role;
use salestrainer_tests::{authed, spawn_app};

#[tokio::test]
async fn config_client_caches_and_drops_an_entry_when_it_changes() {
    let app = spawn_app().await;
    salestrainer::ensure_demo_organization(&app.settings)
        .await
        .unwrap();
    let admin = app.token(Role::Admin, salestrainer::DEMO_ADMIN_SUBJECT, "demo");
    let mut api = pb::config_service_client::ConfigServiceClient::new(app.channel.clone());
    let persona = api
        .create_persona(authed(
            pb::CreatePersonaRequest {
                parent: "organizations/demo".into(),
                persona: Some(pb::Persona {
                    display_name: "Dana".into(),
                    role: "CFO".into(),
                    company: "Acme".into(),
                    difficulty: pb::Difficulty::Medium as i32,
                    objections: vec!["Too expensive".into()],
                    ..Default::default()
                }),
                persona_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();

    let client = std::sync::Arc::new(ConfigClient::new(&app.ctx, "test").unwrap());
    client.spawn_invalidator(&app.ctx, "test");
    // Let the invalidator's subscription start before the change it must see.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(client.persona(&persona.name).await.unwrap().company, "Acme");
    let before = persona_cache_hits();
    assert_eq!(client.persona(&persona.name).await.unwrap().company, "Acme");
    assert_eq!(
        persona_cache_hits(),
        before + 1.0,
        "the second read is a cache hit"
    );

    api.update_persona(authed(
        pb::UpdatePersonaRequest {
            persona: Some(pb::Persona {
                name: persona.name.clone(),
                company: "Globex".into(),
                etag: persona.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["company".into()],
            }),
        },
        &admin,
    ))
    .await
    .unwrap();

    let changed = Instant::now();
    loop {
        if client.persona(&persona.name).await.unwrap().company == "Globex" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "the cached persona was not dropped after its ConfigChanged event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "change visible through the cache after {:?}",
        changed.elapsed()
    );
    app.stop().await;
}

/// `cache_requests_total{cache="config_personas",outcome="hit"}` as Prometheus renders it.
fn persona_cache_hits() -> f64 {
    salestrainer_runtime::metrics::prometheus()
        .render()
        .lines()
        .find(|l| {
            l.starts_with("cache_requests_total")
                && l.contains("cache=\"config_personas\"")
                && l.contains("outcome=\"hit\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}
