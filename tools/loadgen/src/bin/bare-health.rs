//! bare-health: tonic serving only `grpc.health.v1.Health`, with no layers at all — the
//! baseline the server-overhead benchmark (bench/h2load.sh) measures the suite's stack against.
//!
//! Usage: bare-health [ADDR]   (default 127.0.0.1:50099)

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_loadgen::bare::serve_from_args().await
}
