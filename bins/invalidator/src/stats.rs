//! The invalidator's metrics, recorded through the process-wide Prometheus
//! recorder that `/metrics` renders.

use chrono::Utc;
use shared::events::ChangeEvent;

/// Gives each metric its `# HELP` line on `/metrics`.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "invalidator_events_processed_total",
        "Outbox events purged and checkpointed."
    );
    describe_counter!(
        "invalidator_purged_scopes_total",
        "Cache scopes given a fresh generation."
    );
    describe_histogram!(
        "invalidation_lag_seconds",
        Unit::Seconds,
        "Per event, from its commit (recorded_at) to its purge done."
    );
    describe_gauge!(
        "invalidator_checkpoint_lag",
        "Newest outbox seq minus the checkpoint."
    );
    describe_counter!(
        "invalidator_redis_errors_total",
        "Failed Redis operations (each retried)."
    );
    describe_counter!(
        "invalidator_postgres_errors_total",
        "Failed Postgres operations (each retried)."
    );
    describe_counter!(
        "invalidator_epoch_replacements_total",
        "Cache epochs replaced, by reason."
    );
}

/// Records a batch whose purge succeeded and whose checkpoint was saved.
pub fn batch_done(events: &[ChangeEvent], purged_scopes: usize) {
    metrics::counter!("invalidator_events_processed_total").increment(events.len() as u64);
    metrics::counter!("invalidator_purged_scopes_total").increment(purged_scopes as u64);
    let now = Utc::now();
    let lag = metrics::histogram!("invalidation_lag_seconds");
    for event in events {
        // recorded_at is taken just before commit, on the database's clock:
        // this is commit-to-purge-done, clamped against clock skew.
        let seconds = (now - event.recorded_at)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 1e6;
        lag.record(seconds.max(0.0));
    }
}

/// Newest outbox seq minus the checkpoint: events waiting to be purged.
pub fn checkpoint_lag(events: i64) {
    metrics::gauge!("invalidator_checkpoint_lag").set(events.max(0) as f64);
}

pub fn redis_error() {
    metrics::counter!("invalidator_redis_errors_total").increment(1);
}

pub fn postgres_error() {
    metrics::counter!("invalidator_postgres_errors_total").increment(1);
}

pub fn epoch_replaced(reason: &'static str) {
    metrics::counter!("invalidator_epoch_replacements_total", "reason" => reason).increment(1);
}
