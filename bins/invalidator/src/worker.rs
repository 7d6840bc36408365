//! The invalidation loop: read the outbox after the checkpoint, purge the
//! scopes the events affect, then advance the checkpoint.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use shared::{
    cache::EpochWatch,
    events::{affected_scopes, ChangeEvent},
};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{cache::Cache, checkpoint, outbox, retry, stats, Error};

pub struct Invalidator {
    pool: PgPool,
    cache: Cache,
    name: String,
    batch_size: i64,
    shutdown: CancellationToken,
    /// Seeded from the checkpoint on first use.
    epoch: Option<EpochWatch>,
    /// The highest checkpoint this process has seen in the database; the
    /// database showing a lower one means it was restored from a backup.
    seen_seq: Option<i64>,
    /// The high-water mark last written to Redis, to skip rewriting it.
    mark_written: Option<i64>,
    /// The last seq of a batch whose purge just failed.
    failed_through: Option<i64>,
}

/// The longest a notification waits for a retry after a Redis failure.
const NOTIFIED_RETRY: Duration = Duration::from_millis(250);

/// How many batches past a failed one are purged ahead before the retry.
const PURGE_AHEAD_BATCHES: usize = 3;

impl Invalidator {
    pub fn new(pool: PgPool, cache: Cache, name: impl Into<String>, batch_size: i64) -> Self {
        Self {
            pool,
            cache,
            name: name.into(),
            batch_size: batch_size.max(1),
            shutdown: CancellationToken::new(),
            epoch: None,
            seen_seq: None,
            mark_written: None,
            failed_through: None,
        }
    }

    /// Stops [`process_available`](Self::process_available) between batches
    /// once `shutdown` is cancelled.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Catches up: processes batches until the outbox holds nothing after the
    /// checkpoint (or shutdown was requested). Returns the number of events
    /// processed. On error, the checkpoint stays after the last batch whose
    /// purge succeeded, so a retry loses nothing.
    pub async fn process_available(&mut self) -> Result<usize, Error> {
        let mut total = 0;
        let result = loop {
            match self.process_batch().await {
                Ok(0) => break Ok(total),
                Ok(n) => total += n,
                Err(e) => {
                    // Only a cluster fails in part; a single Redis that
                    // refused this purge refuses the next ones too.
                    if let Some(from) = self.failed_through.take() {
                        if self.cache.is_cluster() {
                            self.purge_ahead(from).await;
                        }
                    }
                    break Err(e);
                }
            }
            if self.shutdown.is_cancelled() {
                break Ok(total);
            }
        };
        // Best effort: the gauge is worth updating even after a failure (it
        // shows the backlog growing while Redis is down).
        if let (Some(seen), Ok(newest)) = (self.seen_seq, outbox::newest_seq(&self.pool).await) {
            stats::checkpoint_lag(newest - seen);
            if result.is_ok() && self.mark_written != Some(seen) {
                self.cache.raise_high_water_mark(&self.name, seen).await?;
                self.mark_written = Some(seen);
            }
        }
        result
    }

    /// Processes at most one batch; returns its number of events (0: caught
    /// up). The checkpoint moves past the batch only once its purge succeeded.
    pub async fn process_batch(&mut self) -> Result<usize, Error> {
        let checkpoint = checkpoint::load(&self.pool, &self.name).await?;
        self.check_restore(&checkpoint).await?;
        let rows = outbox::after(&self.pool, checkpoint.seq, self.batch_size).await?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            self.seen_seq = Some(checkpoint.seq);
            return Ok(0);
        };
        let count = rows.len();
        let mut events: Vec<ChangeEvent> = Vec::with_capacity(count);
        let mut malformed = false;
        for row in rows {
            let seq = row.seq;
            match row.decode() {
                Ok(event) => events.push(event),
                Err(reason) => {
                    tracing::error!(
                        seq,
                        reason,
                        "malformed outbox event; replacing the whole cache epoch"
                    );
                    malformed = true;
                }
            }
        }
        let scopes = affected_scopes(&events);
        if let Err(e) = self.cache.purge(&scopes).await {
            self.failed_through = Some(last);
            return Err(e.into());
        }
        if malformed {
            // What it affected is unknown: everything is the safe answer.
            self.cache.replace_epoch().await?;
            stats::epoch_replaced("malformed_event");
        }
        let run_id = self
            .epoch
            .as_ref()
            .and_then(|w| w.run_id().map(str::to_owned));
        checkpoint::save(&self.pool, &self.name, last, run_id.as_deref()).await?;
        self.seen_seq = Some(last);
        stats::batch_done(&events, scopes.len());
        tracing::debug!(
            events = events.len(),
            scopes = scopes.len(),
            checkpoint = last,
            "purged"
        );
        Ok(count)
    }

    /// After a failed purge (say one Redis Cluster master is down), purges
    /// what the next events affect anyway, so that scopes on the healthy
    /// nodes stay fresh while the failed batch waits for its retry. The
    /// checkpoint does not move: the retry starts again at the failed batch,
    /// and purging a scope early is harmless (it only replaces a token).
    async fn purge_ahead(&self, mut from: i64) {
        for _ in 0..PURGE_AHEAD_BATCHES {
            let Ok(rows) = outbox::after(&self.pool, from, self.batch_size).await else {
                return;
            };
            let Some(last) = rows.last().map(|r| r.seq) else {
                return;
            };
            let events: Vec<ChangeEvent> =
                rows.into_iter().filter_map(|r| r.decode().ok()).collect();
            // The failed node most likely still fails; the retry covers it.
            if let Err(error) = self.cache.purge(&affected_scopes(&events)).await {
                tracing::debug!(%error, "purging ahead: some scopes failed");
            }
            from = last;
        }
    }

    /// On first use, seeds the epoch watch from the checkpoint (replacing the
    /// epoch if Redis restarted since the checkpoint's purges) and compares
    /// the checkpoint with Redis' high-water mark. Afterwards, compares it
    /// with the highest this process has seen. A checkpoint that went back
    /// means the database was restored from a backup: Redis may hold pages
    /// newer than the database, so the epoch is replaced.
    async fn check_restore(&mut self, checkpoint: &checkpoint::Checkpoint) -> Result<(), Error> {
        let restored = match self.seen_seq {
            Some(seen) => checkpoint.seq < seen,
            None => {
                self.sync_epoch_with(checkpoint.redis_run_id.clone())
                    .await?;
                let mark = self.cache.high_water_mark(&self.name).await?;
                mark.is_some_and(|mark| checkpoint.seq < mark)
            }
        };
        if restored {
            tracing::warn!(
                checkpoint = checkpoint.seq,
                seen = ?self.seen_seq,
                "checkpoint went back: database restored from a backup? replacing the cache epoch"
            );
            self.cache.replace_epoch().await?;
            self.cache
                .reset_high_water_mark(&self.name, checkpoint.seq)
                .await?;
            self.mark_written = Some(checkpoint.seq);
            stats::epoch_replaced("database_restored");
        }
        self.seen_seq = Some(checkpoint.seq);
        Ok(())
    }

    /// Replaces the epoch if Redis restarted since the last look (run_id
    /// changed), and records the new run_id in the checkpoint.
    pub async fn sync_epoch(&mut self) -> Result<(), Error> {
        let seed = match self.epoch {
            Some(_) => None,
            None => checkpoint::load(&self.pool, &self.name).await?.redis_run_id,
        };
        self.sync_epoch_with(seed).await
    }

    async fn sync_epoch_with(&mut self, seed: Option<String>) -> Result<(), Error> {
        let watch = self
            .epoch
            .get_or_insert_with(|| EpochWatch::with_run_id(seed));
        let before = watch.run_id().map(str::to_owned);
        self.cache.sync_epoch(watch).await?;
        let after = watch.run_id().map(str::to_owned);
        if before != after {
            if before.is_some() {
                stats::epoch_replaced("redis_restarted");
            }
            // Remembered in the checkpoint so that a restart of this process
            // can tell whether Redis restarted while it was down.
            let seq = self.seen_seq.unwrap_or(0);
            checkpoint::save(&self.pool, &self.name, seq, after.as_deref()).await?;
        }
        Ok(())
    }

    /// Runs until `shutdown`: catches up on start, on every notification
    /// (and LISTEN reconnect) and at least every `poll_interval`; retries
    /// failures with capped backoff; checks the epoch every `epoch_interval`.
    pub async fn run(mut self, wake: Arc<Notify>, timing: Timing) {
        let shutdown = self.shutdown.clone();
        let mut delays = retry::backoff(timing.retry_max_delay);
        // Each dead connection left in the pool (after its backend was
        // terminated) fails one batch; that many retries go at once.
        let quick_retries = self.pool.options().get_max_connections() + 1;
        let mut quick_retries_left = quick_retries;
        let mut postgres_failed = false;
        let mut due = Some(Instant::now());
        let mut last_run = Instant::now();
        let mut epoch_tick = tokio::time::interval(timing.epoch_interval);
        epoch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if due.is_some_and(|at| at <= Instant::now()) {
                last_run = Instant::now();
                match self.process_available().await {
                    Ok(n) => {
                        if n > 0 {
                            tracing::debug!(events = n, "caught up");
                        }
                        due = None;
                        delays = retry::backoff(timing.retry_max_delay);
                        quick_retries_left = quick_retries;
                        postgres_failed = false;
                    }
                    Err(e) if e.is_stale_connection() && quick_retries_left > 0 => {
                        e.record();
                        quick_retries_left -= 1;
                        tracing::debug!(error = %e, "a pooled connection was closed; retrying at once");
                        due = Some(Instant::now());
                    }
                    Err(e) => {
                        e.record();
                        postgres_failed = e.is_postgres();
                        let delay = delays.next().unwrap_or(timing.retry_max_delay);
                        tracing::warn!(error = %e, ?delay, "invalidation failed; retrying the same batch");
                        due = Some(Instant::now() + delay);
                    }
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
            let next = due.unwrap_or(last_run + timing.poll_interval);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                // A notification while backing off is a write waiting to be
                // purged: after a Postgres failure it proves Postgres answers,
                // so retry now; after a Redis failure retry soon rather than
                // at the end of a long backoff, still without hammering it.
                () = wake.notified() => {
                    let now = Instant::now();
                    let soon = if postgres_failed { now } else { now + NOTIFIED_RETRY };
                    due = Some(due.map_or(now, |at| at.min(soon)));
                    postgres_failed = false;
                }
                () = tokio::time::sleep_until(next.into()) => due = Some(Instant::now()),
                _ = epoch_tick.tick() => {
                    if let Err(e) = self.sync_epoch().await {
                        e.record();
                        tracing::debug!(error = %e, "epoch check failed");
                    }
                }
            }
        }
        tracing::info!("invalidator stopped");
    }
}

/// The loop's intervals.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll_interval: Duration,
    pub epoch_interval: Duration,
    pub retry_max_delay: Duration,
}
