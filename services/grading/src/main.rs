//! `salestrainer-grading`: the grading service as a process of its own (distributed mode).

// Fewer instructions per allocation than glibc's malloc on the request path, and no eager
// purging (bench/README.md, "Fourth set").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_grading::app::GradingApp>().await
}
