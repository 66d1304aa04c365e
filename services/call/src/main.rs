//! `salestrainer-call`: the call service as a process of its own (distributed mode).

use salestrainer_runtime::{app, server::ServerBuilder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let boot = app::bootstrap(salestrainer_call::SERVICE).await?;
    let mut server = ServerBuilder::new(boot.settings.server.clone(), boot.verifier.clone()).await;
    server.file_descriptor_set(salestrainer_proto::FILE_DESCRIPTOR_SET);
    let starter = salestrainer_call::mount(&mut server, &boot.settings).await;
    let listener = tokio::net::TcpListener::bind(boot.settings.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "call service listening");
    app::run(server, vec![starter], listener).await
}
