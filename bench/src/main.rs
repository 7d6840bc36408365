//! `bench`: the parts of the benchmark harness (`bench/run`) that curl, wrk and
//! redis-benchmark cannot do: the baseline server that serves read-api's exact
//! bytes, latency probes of the uncached path, invalidation lag, the stampede,
//! write throughput, and the Markdown report.
//!
//! Each probe prints its results as tab-separated lines
//! (`label<TAB>value<TAB>unit<TAB>target`) on stdout; `bench/run` collects them
//! and `bench report` turns them into the table in `docs/benchmarks.md`.

mod baseline;
mod lag;
mod misses;
mod report;
mod results;
mod stampede;
mod writes;

use clap::{Parser, Subcommand};

// The same allocator as read-api, so the baseline differs from it only in
// what the handler does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Benchmark harness helpers used by bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve fixed bytes from a minimal axum handler: the ceiling for an HTTP
    /// server on this machine.
    Baseline(baseline::Args),
    /// Median and p99 of sequential uncached requests.
    Misses(misses::Args),
    /// Commit-to-purge lag under a steady write rate.
    Lag(lag::Args),
    /// Concurrent requests for one just-purged page.
    Stampede(stampede::Args),
    /// Create throughput with concurrent clients, and one batch.
    Writes(writes::Args),
    /// Append a dated results section to the benchmarks document.
    Report(report::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Baseline(args) => baseline::run(args).await,
        Command::Misses(args) => misses::run(args).await,
        Command::Lag(args) => lag::run(args).await,
        Command::Stampede(args) => stampede::run(args).await,
        Command::Writes(args) => writes::run(args).await,
        Command::Report(args) => report::run(&args),
    }
}
