//! The bare tonic server of the server-overhead benchmark (bench/h2load.sh): tonic serving
//! only `grpc.health.v1.Health`, with no layers at all. Two binaries run it: `bare-health`
//! (the system allocator, as the services) and `bare-health-mimalloc`.

use tonic_health::ServingStatus;

/// Serves until killed; `addr` from the first argument, default 127.0.0.1:50099.
pub async fn serve_from_args() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50099".to_owned())
        .parse()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    eprintln!("bare-health listening on {addr}");
    tonic::transport::Server::builder()
        .add_service(health)
        .serve(addr)
        .await?;
    Ok(())
}
