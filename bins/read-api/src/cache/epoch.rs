//! Keeping the epoch, and with it the servers' identity and (in a cluster)
//! the slot map, current: every second, and at once after a cluster call
//! failed.

use std::{sync::Arc, time::Duration};

use shared::cache::{EpochWatch, RedisConn, Synced};
use tokio_util::sync::CancellationToken;

use super::Cache;

/// How often the epoch (and with it Redis' identity) is re-read.
const EPOCH_REFRESH: Duration = Duration::from_secs(1);
/// The least time between two refreshes, however many calls fail.
const REFRESH_GAP: Duration = Duration::from_millis(100);

/// The epoch refresher's memory: the Redis identity last seen, and whether the
/// last refresh failed (to log changes, not every failure).
#[derive(Debug, Default)]
pub struct EpochSync {
    watch: EpochWatch,
    failing: bool,
}

impl Cache {
    async fn connect(&self) -> Option<RedisConn> {
        if let Some(conn) = self.connection.get() {
            return Some(conn.clone());
        }
        let attempt = self.target.connect(self.manager_config.clone());
        match tokio::time::timeout(self.connect_timeout.saturating_mul(2), attempt).await {
            Ok(Ok(conn)) => Some(self.connection.get_or_init(|| conn).clone()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot connect to Redis");
                None
            }
            Err(_) => {
                tracing::debug!("connecting to Redis timed out");
                None
            }
        }
    }

    /// Reads the epoch once (replacing it when a server restarted or a slot
    /// changed hands), keeping the last one on failure. Until the first
    /// success the API serves without caching.
    pub async fn refresh_epoch(&self, watch: &mut EpochSync) {
        let since = self.confirmed.as_ref().map(|c| c.failures());
        let synced = match self.connect().await {
            // Two round trips (INFO, SET): a little more than one call's
            // bound; in a cluster four (CLUSTER SLOTS with a retry or two,
            // INFO on every master at once, SET).
            Some(mut conn) => tokio::time::timeout(
                self.timeout
                    .saturating_mul(if self.target.is_cluster() { 8 } else { 4 }),
                watch.watch.sync_all(&mut conn, &self.keys),
            )
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
            None => Err("not connected".to_owned()),
        };
        match synced {
            Ok(synced) => {
                if watch.failing {
                    tracing::info!("Redis reachable again");
                }
                watch.failing = false;
                if let Some(breaker) = self.breakers.whole() {
                    breaker.record_success();
                }
                self.adopt_sync(synced, since);
            }
            Err(error) => {
                if !watch.failing {
                    tracing::warn!(%error, "cannot refresh the cache epoch; keeping the last one");
                }
                watch.failing = true;
                if let Some(breaker) = self.breakers.whole() {
                    breaker.record_failure();
                }
            }
        }
    }

    /// Puts a refresh's findings to use, in this order: the epoch first, so
    /// that a slot confirmed after changing hands is only ever read under
    /// the epoch that replaced the old one.
    fn adopt_sync(&self, synced: Synced, since: Option<u64>) {
        let Synced {
            epoch,
            topology,
            replaced,
        } = synced;
        self.epoch_tx.send_if_modified(|current| {
            let changed = current.as_deref() != Some(epoch.as_str());
            if changed {
                *current = Some(epoch.into());
            }
            changed
        });
        if replaced {
            if let Some(vouch) = &self.vouch {
                vouch.drop_all();
            }
        }
        if let (Some(confirmed), Some(since)) = (&self.confirmed, since) {
            confirmed.apply(&topology, since);
        }
        self.topology_tx.send_if_modified(|current| {
            let changed = !current.as_ref().is_some_and(|c| c.same_layout(&topology));
            if changed {
                *current = Some(topology);
            }
            changed
        });
    }

    /// Keeps the epoch current, every second (and soon after a failed
    /// cluster call), until `shutdown`.
    pub async fn watch_epoch(self: Arc<Self>, mut watch: EpochSync, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(EPOCH_REFRESH);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the caller has just refreshed.
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
                () = self.refresh_soon.notified() => {}
            }
            self.refresh_epoch(&mut watch).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(REFRESH_GAP) => {}
            }
        }
    }
}
