use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use write_api::config::{with_default_subcommand, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os()));
    match cli.command {
        Command::Serve(args) => {
            shared::telemetry::init_tracing(&args.telemetry);
            write_api::run(args, shared::shutdown::on_signal()).await?;
        }
        Command::Migrate(args) => {
            shared::telemetry::init_tracing(&args.telemetry);
            let pool = shared::db::pool(&args.database, "write-api-migrate")?;
            write_api::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Command::Seed(args) => {
            shared::telemetry::init_tracing(&args.telemetry);
            let pool = shared::db::pool(&args.database, "write-api-seed")?;
            write_api::migrate(&pool).await?;
            let report = write_api::seed::run(&pool, args.videos, std::io::stderr().is_terminal())
                .await
                .context("seeding failed")?;
            tracing::info!(videos = report.videos, elapsed = ?report.elapsed, "seeded");
        }
    }
    Ok(())
}
