use clap::Parser;
use invalidator::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    shared::telemetry::init_tracing(&config.telemetry);
    invalidator::run(config, shared::shutdown::on_signal()).await?;
    Ok(())
}
