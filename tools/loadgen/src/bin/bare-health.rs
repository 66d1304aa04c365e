//! bare-health: tonic serving only `grpc.health.v1.Health`, with no layers at all — the
//! baseline the server-overhead benchmark (bench/h2load.sh) measures the suite's stack against.
//!
//! Usage: bare-health [ADDR]   (default 127.0.0.1:50099)

use tonic_health::ServingStatus;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
