//! `salestrainer-config`: the config service as a process of its own (distributed mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::app::serve_single(
        salestrainer_config::SERVICE,
        Box::new(|server, ctx| {
            server.file_descriptor_set(salestrainer_proto::FILE_DESCRIPTOR_SET);
            // Behind the gateway, the console is served by this service (Envoy routes `/`).
            salestrainer_console::mount(server);
            Box::pin(salestrainer_config::mount(server, ctx))
        }),
    )
    .await
}
