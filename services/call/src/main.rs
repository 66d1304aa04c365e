//! `salestrainer-call`: the call service as a process of its own (distributed mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::service::serve::<salestrainer_call::app::CallApp>().await
}
