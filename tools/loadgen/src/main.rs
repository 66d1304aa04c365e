//! loadgen: see the library's documentation (`tools/loadgen/src/lib.rs`) and bench/README.md.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = salestrainer_loadgen::Args::parse();
    let report = salestrainer_loadgen::run(&args).await?;
    print!("{}", report.render());
    Ok(())
}
