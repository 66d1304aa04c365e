//! bare-health-jemalloc: `bare-health` with jemalloc as its global allocator, as the services
//! are built — the bare baseline with the allocator held equal (bench/h2load-pair.sh; see
//! bench/README.md, "Fourth set").
//!
//! Usage: bare-health-jemalloc [ADDR]   (default 127.0.0.1:50099)

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_loadgen::bare::serve_from_args().await
}
