//! `salestrainer-config`: the config service as a process of its own (distributed mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_config::app::ConfigApp>().await
}
