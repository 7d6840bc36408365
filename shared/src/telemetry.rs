//! Logs, traces and metrics, set up the same way by every binary.

use std::{io::IsTerminal, sync::OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

use crate::config::{LogFormat, TelemetryArgs};

/// Installs the global tracing subscriber. Call once, from `main`.
pub fn init_tracing(args: &TelemetryArgs) {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests start several apps in one process) is a no-op.
    let _ = match args.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        // Colours only on a terminal: in a log file they are noise, and
        // painting every field name made each request's span cost ~7,000
        // instructions (callgrind, docs/benchmarks.md).
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init(),
    };
}

/// Latency buckets (seconds) for every histogram: from 100 µs, where cached
/// reads and purges live, to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus recorder; installed on first use, so every app
/// built in one process (as tests do) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is already global (only possible in tests
                // that install their own): render from a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            // The recorder keeps every histogram sample until upkeep drains
            // them into buckets; without it memory grows with traffic between
            // scrapes. A thread, not a task: it must outlive any one runtime
            // (tests start several in one process).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start metrics upkeep; histograms drain only on scrape");
            }
            handle
        })
        .clone()
}
