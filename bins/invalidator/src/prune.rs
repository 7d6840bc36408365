//! Keeps the outbox small: deletes, in small batches, the events that every
//! checkpoint has passed and that are older than the retention period.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{outbox, stats};

/// Small enough that each delete is a short transaction.
const BATCH: i64 = 1_000;

/// Prunes once now, then every `interval`, until `shutdown`.
pub async fn run(
    pool: PgPool,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match prune(&pool, retention, &shutdown).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned the outbox"),
            Err(e) => {
                stats::postgres_error();
                tracing::warn!(error = %e, "pruning the outbox failed; will retry");
            }
        }
    }
}

/// Deletes every prunable event, batch by batch; returns how many.
pub async fn prune(
    pool: &PgPool,
    retention: Duration,
    shutdown: &CancellationToken,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    while !shutdown.is_cancelled() {
        let deleted = outbox::prune(pool, retention, BATCH).await?;
        total += deleted;
        if deleted < BATCH.unsigned_abs() {
            break;
        }
    }
    Ok(total)
}
