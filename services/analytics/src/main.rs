//! `salestrainer-analytics`: the analytics service as a process of its own (distributed mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_analytics::app::AnalyticsApp>().await
}
