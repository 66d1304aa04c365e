//! `salestrainer-analytics`: the analytics service as a process of its own (distributed mode).

// jemalloc: GetPersona +12–14% req/s against glibc's malloc in the same rounds
// (bench/README.md, "Fourth set").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_analytics::app::AnalyticsApp>().await
}
