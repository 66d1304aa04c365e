//! bare-health-mimalloc: `bare-health` with mimalloc as its global allocator, as the service
//! binaries have — the like-for-like baseline of bench/h2load.sh (`BARE=bare-health-mimalloc`).
//!
//! Usage: bare-health-mimalloc [ADDR]   (default 127.0.0.1:50099)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_loadgen::bare::serve_from_args().await
}
