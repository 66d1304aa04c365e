//! `salestrainer-config`: the config service as a process of its own (distributed mode).

/// mimalloc: fewer instructions per allocation than glibc's malloc on the request path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_config::app::ConfigApp>().await
}
