//! `salestrainer-call`: the call service as a process of its own (distributed mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salestrainer_runtime::app::serve_single(
        salestrainer_call::SERVICE,
        Box::new(|server, ctx| {
            server.file_descriptor_set(salestrainer_proto::FILE_DESCRIPTOR_SET);
            Box::pin(salestrainer_call::mount(server, ctx))
        }),
    )
    .await
}
