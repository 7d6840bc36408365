//! The one retry policy: capped exponential backoff with jitter, for
//! reconnecting to Postgres and Redis and for retrying a failed batch.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays of 100 ms, 200 ms, 400 ms ... up to `max`, each jittered, forever.
pub fn backoff(max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max.max(Duration::from_millis(100)))
        .with_jitter()
        .without_max_times()
        .build()
}
