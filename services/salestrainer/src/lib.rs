//! The whole suite in one process: all four services on one server and one port, each with
//! its own database, going through the same gRPC contracts as in distributed mode.

pub mod console;
pub mod demo;

use salestrainer_runtime::{Context, Settings, app::Starter, server::ServerBuilder};

/// The demo organization created on first start of embedded mode.
pub const DEMO_ORGANIZATION: &str = "demo";
/// The JWT subject of the demo organization's first admin.
pub const DEMO_ADMIN_SUBJECT: &str = "demo-admin";

/// Mounts every service on `server` and returns their start-up tasks.
/// They share `ctx`: in embedded mode that means one in-process bus.
pub async fn mount_all(server: &mut ServerBuilder, ctx: &Context) -> Vec<Starter> {
    server.file_descriptor_set(salestrainer_proto::FILE_DESCRIPTOR_SET);
    vec![
        salestrainer_config::mount(server, ctx).await,
        salestrainer_call::mount(server, ctx).await,
        salestrainer_grading::mount(server, ctx).await,
        salestrainer_analytics::mount(server, ctx).await,
    ]
}

/// Creates the demo organization and its admin unless they exist. Returns whether it did.
pub async fn ensure_demo_organization(settings: &Settings) -> anyhow::Result<bool> {
    let url = settings.database_url_for(salestrainer_config::SERVICE);
    let db = salestrainer_runtime::db::connect(&url).await?;
    let created = salestrainer_config::store::ensure_organization(
        &db,
        DEMO_ORGANIZATION,
        "Demo Organization",
        DEMO_ADMIN_SUBJECT,
    )
    .await?;
    db.close().await?;
    Ok(created)
}

/// Polls `grpc.health.v1.Health/Check("")` at `uri` until SERVING or `limit` passes.
pub async fn wait_serving(uri: &str, limit: std::time::Duration) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let deadline = tokio::time::Instant::now() + limit;
    let channel = tonic::transport::Channel::from_shared(uri.to_owned())?.connect_lazy();
    let mut client = HealthClient::new(channel);
    loop {
        let status = client
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status);
        if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{uri} not SERVING after {limit:?} (last answer: {status:?})");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
