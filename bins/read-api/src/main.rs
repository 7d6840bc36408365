//! `read-api`: the public, cached, paginated video feed (see the README).

use clap::Parser;
use read_api::{Config, Hooks};

// The hit path allocates many small, short-lived buffers across two worker
// threads; mimalloc handles that with less contention than the system
// allocator (about 15 % more hits/s, measured: README.md, "read-api: the public feed").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    shared::telemetry::init_tracing(&config.telemetry);
    let shutdown = shared::shutdown::on_signal();
    let app = read_api::build(&config, Hooks::default()).await?;
    app.serve(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
