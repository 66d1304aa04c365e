//! bare-health-mimalloc: `bare-health` with mimalloc as its global allocator — the bare baseline
//! for a suite built with mimalloc (bench/h2load.sh with `BARE=bare-health-mimalloc`,
//! bench/h2load-pair.sh; see bench/README.md, "Third set").
//!
//! Usage: bare-health-mimalloc [ADDR]   (default 127.0.0.1:50099)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_loadgen::bare::serve_from_args().await
}
