//! The invalidator's side of the cache: purging scopes, watching the epoch,
//! and a high-water mark that reveals a database restored from a backup.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use redis::{aio::ConnectionManagerConfig, RedisResult};
use shared::cache::{self, EpochWatch, KeySpace, RedisConn, RedisTarget, Scope};
use tokio::sync::Mutex;

/// A Redis connection, created on first use so that the process starts (and
/// reports not ready) while Redis is down; afterwards the connection manager
/// reconnects by itself. A server or a cluster (`shared::cache::RedisTarget`).
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Cache {
    target: RedisTarget,
    config: ConnectionManagerConfig,
    conn: Arc<Mutex<Option<RedisConn>>>,
    keys: KeySpace,
    prefix: String,
}

impl Cache {
    pub fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    /// `timeout` bounds every connect and every command.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, crate::Error> {
        let keys = KeySpace::new(prefix).map_err(crate::Error::Config)?;
        let target = RedisTarget::open(url, timeout, timeout)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            // Retries belong to the caller's backoff, which never gives up and
            // never advances the checkpoint past an unpurged batch.
            .set_number_of_retries(1)
            .set_max_delay(200);
        Ok(Self {
            target,
            config,
            conn: Arc::new(Mutex::new(None)),
            keys,
            prefix: prefix.to_owned(),
        })
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    async fn conn(&self) -> RedisResult<RedisConn> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.target.connect(self.config.clone()).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// After a failed call the next one connects afresh: a cluster client can
    /// stay stuck on a node that restarted, or on a stale slot map (`MOVED`),
    /// where a new client reads the slot map and connects at once. Failed
    /// calls are already paced by the caller's backoff.
    async fn forget_connection_after<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    pub async fn ping(&self) -> RedisResult<()> {
        redis::cmd("PING")
            .query_async(&mut self.conn().await?)
            .await
    }

    /// Gives every scope a fresh generation, in one pipelined round trip (in a
    /// cluster: one concurrent `SET` per scope).
    pub async fn purge(&self, scopes: &BTreeSet<Scope>) -> RedisResult<()> {
        if scopes.is_empty() {
            return Ok(());
        }
        let purged = self.conn().await?.purge(&self.keys, scopes).await;
        self.forget_connection_after(purged).await
    }

    /// Orphans every entry at once.
    pub async fn replace_epoch(&self) -> RedisResult<()> {
        redis::cmd("SET")
            .arg(self.keys.epoch())
            .arg(cache::new_token())
            .query_async(&mut self.conn().await?)
            .await
    }

    pub async fn sync_epoch(&self, watch: &mut EpochWatch) -> RedisResult<()> {
        let synced = watch
            .sync_all(&mut self.conn().await?, &self.keys)
            .await
            .map(drop);
        self.forget_connection_after(synced).await
    }

    fn high_water_mark_key(&self, name: &str) -> String {
        format!("{}invalidator:{name}:hwm", self.prefix)
    }

    /// The highest checkpoint an invalidator of this name has saved, as Redis
    /// remembers it.
    pub async fn high_water_mark(&self, name: &str) -> RedisResult<Option<i64>> {
        redis::cmd("GET")
            .arg(self.high_water_mark_key(name))
            .query_async(&mut self.conn().await?)
            .await
    }

    /// Raises the mark to `seq`; never lowers it, whatever order concurrent
    /// invalidators of one name write in.
    pub async fn raise_high_water_mark(&self, name: &str, seq: i64) -> RedisResult<()> {
        static RAISE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                r"
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1",
            )
        });
        RAISE
            .key(self.high_water_mark_key(name))
            .arg(seq)
            .invoke_async::<i64>(&mut self.conn().await?)
            .await
            .map(drop)
    }

    /// Sets the mark to `seq`, lower or not: after a detected restore.
    pub async fn reset_high_water_mark(&self, name: &str, seq: i64) -> RedisResult<()> {
        redis::cmd("SET")
            .arg(self.high_water_mark_key(name))
            .arg(seq)
            .query_async(&mut self.conn().await?)
            .await
    }
}
