//! One Redis, or a Redis Cluster, behind one connection type.
//!
//! `REDIS_URL` names a single server (`redis://host:6379/1`) or, as a
//! comma-separated list of seed nodes, a cluster (`redis://a:7000,redis://b:7000`;
//! a single seed is written with a trailing comma). Every key of a scope carries
//! the scope as its hash tag, so each read script and each entry store touches
//! one slot; the few multi-key operations (a purge, the restart check) are split
//! per slot or per node here.

use std::{collections::BTreeMap, time::Duration};

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
};

use super::{
    fence::{parse_run_id, purge},
    keys::{KeySpace, Scope},
};

/// The number of Redis Cluster hash slots.
pub const HASH_SLOTS: u16 = 16_384;

/// The Redis Cluster hash slot of `key` (of its hash tag, if it has one), for
/// keeping per-slot state such as a circuit breaker per slot.
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            rest.iter()
                .position(|b| *b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty());
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % HASH_SLOTS
}

/// Where the cache lives, parsed from `REDIS_URL`.
#[derive(Clone)]
pub enum RedisTarget {
    Single(redis::Client),
    /// With the bound of one command to one node.
    Cluster(ClusterClient, Duration),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.write_str(match self {
            Self::Single(_) => "RedisTarget::Single",
            Self::Cluster(..) => "RedisTarget::Cluster",
        })
    }
}

impl RedisTarget {
    /// A comma in `url` means a cluster; `timeout` bounds each connect and each
    /// command of the cluster client (single connections take theirs from the
    /// `ConnectionManagerConfig` given to [`Self::connect`]).
    pub fn open(url: &str, connect_timeout: Duration, timeout: Duration) -> RedisResult<Self> {
        if !url.contains(',') {
            return redis::Client::open(url).map(Self::Single);
        }
        let seeds: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        ClusterClient::builder(seeds)
            .connection_timeout(connect_timeout)
            .response_timeout(timeout)
            // Enough to follow a MOVED/ASK redirect; failures are the caller's
            // to pace (breaker, backoff), not the client's.
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map(|client| Self::Cluster(client, timeout))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(..))
    }

    pub async fn connect(&self, single: ConnectionManagerConfig) -> RedisResult<RedisConn> {
        match self {
            Self::Single(client) => ConnectionManager::new_with_config(client.clone(), single)
                .await
                .map(RedisConn::Single),
            Self::Cluster(client, node_timeout) => {
                client
                    .get_async_connection()
                    .await
                    .map(|conn| RedisConn::Cluster {
                        conn,
                        node_timeout: *node_timeout,
                    })
            }
        }
    }
}

/// A reconnecting connection to one server or to a cluster (which follows
/// redirects and reconnects by itself). Cheap to clone; clones share it.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster {
        conn: ClusterConnection,
        /// Bounds each per-node command of the restart check.
        node_timeout: Duration,
    },
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster { conn, .. } => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster { conn, .. } => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster { conn, .. } => conn.get_db(),
        }
    }
}

impl RedisConn {
    /// Gives every scope a fresh generation. One pipelined round trip on a
    /// single server; in a cluster a pipeline may not cross slots, so each
    /// scope's `SET` goes on its own, all at once, and every one is carried
    /// through even if another fails: a stopped master must not keep the
    /// scopes of the healthy ones from being purged.
    pub async fn purge(
        &mut self,
        keys: &KeySpace,
        scopes: impl IntoIterator<Item = &Scope>,
    ) -> RedisResult<()> {
        match self {
            Self::Single(conn) => purge(conn, keys, scopes).await,
            Self::Cluster { conn, .. } => {
                let sets = scopes.into_iter().map(|scope| {
                    let mut conn = conn.clone();
                    async move { purge(&mut conn, keys, [scope]).await }
                });
                futures::future::join_all(sets)
                    .await
                    .into_iter()
                    .collect::<RedisResult<Vec<()>>>()
                    .map(drop)
            }
        }
    }

    /// Each master's `run_id`, by address (`""` for a single server). A
    /// master that does not answer is left out, so that one stopped master
    /// does not blind the restart check for the others; an error only if none
    /// answers.
    pub async fn run_ids(&mut self) -> RedisResult<BTreeMap<String, String>> {
        let (conn, node_timeout) = match self {
            Self::Single(conn) => {
                let id = super::redis_run_id(conn).await?;
                return Ok(BTreeMap::from([(String::new(), id)]));
            }
            Self::Cluster { conn, node_timeout } => (conn, *node_timeout),
        };
        let masters = cluster_masters(conn, node_timeout).await?;
        let infos = masters.into_iter().map(|(host, port)| {
            let mut conn = conn.clone();
            async move {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                let info = bounded(
                    node_timeout,
                    conn.route_command(redis::cmd("INFO").arg("server"), routing),
                )
                .await
                .and_then(|v| String::from_redis_value(&v))
                .and_then(|info| parse_run_id(&info));
                (format!("{host}:{port}"), info)
            }
        });
        let mut ids = BTreeMap::new();
        let mut last_error = None;
        for (address, info) in futures::future::join_all(infos).await {
            match info {
                Ok(id) => {
                    ids.insert(address, id);
                }
                Err(error) => {
                    tracing::debug!(%address, %error, "Redis master did not report its run_id");
                    last_error = Some(error);
                }
            }
        }
        match (ids.is_empty(), last_error) {
            (true, Some(error)) => Err(error),
            _ => Ok(ids),
        }
    }
}

/// The masters' addresses, from `CLUSTER SLOTS` of whichever node answers
/// (a few tries: the random node may be the stopped one).
async fn cluster_masters(
    conn: &mut ClusterConnection,
    node_timeout: Duration,
) -> RedisResult<Vec<(String, u16)>> {
    let mut attempt = 0;
    let mut cluster_slots = redis::cmd("CLUSTER");
    cluster_slots.arg("SLOTS");
    let slots = loop {
        attempt += 1;
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let slots = bounded(node_timeout, conn.route_command(&cluster_slots, routing));
        match slots.await {
            Ok(slots) => break slots,
            Err(error) if attempt >= 3 => return Err(error),
            Err(_) => {}
        }
    };
    // Each range: [start, end, [host, port, id, ...], replicas...].
    let ranges: Vec<Vec<Value>> = FromRedisValue::from_redis_value(&slots)?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Some(master) = range.get(2) else { continue };
        let node: Vec<Value> = FromRedisValue::from_redis_value(master)?;
        if let (Some(host), Some(port)) = (node.first(), node.get(1)) {
            let entry = (
                String::from_redis_value(host)?,
                u16::from_redis_value(port)?,
            );
            if !masters.contains(&entry) {
                masters.push(entry);
            }
        }
    }
    Ok(masters)
}

async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "Redis node did not answer in time",
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag() {
        // `CLUSTER KEYSLOT foo` is 12182.
        assert_eq!(hash_slot("foo"), 12_182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_ne!(
            hash_slot("foo{}{bar}"),
            hash_slot("bar"),
            "an empty tag is no tag"
        );
        let keys = KeySpace::new("vf:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            hash_slot(&keys.generation(&Scope::Feed)),
            hash_slot(&keys.entry(&Scope::Feed, "e", "g", "newest:20:p1"))
        );
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::*;
    use test_support::{wait_until, PrivateRedisCluster};

    use crate::cache::EpochWatch;

    #[tokio::test]
    async fn every_master_is_watched_and_a_stopped_one_blinds_nothing() {
        let mut cluster = PrivateRedisCluster::start().await.unwrap();
        let timeout = Duration::from_millis(200);
        let target = RedisTarget::open(&cluster.url(), timeout, timeout).unwrap();
        assert!(target.is_cluster());
        let mut conn = target
            .connect(ConnectionManagerConfig::new())
            .await
            .unwrap();
        let keys = KeySpace::new("t:").unwrap();
        assert_eq!(
            conn.run_ids().await.unwrap().len(),
            PrivateRedisCluster::MASTERS
        );
        let mut watch = EpochWatch::default();
        let epoch = watch.sync_all(&mut conn, &keys).await.unwrap();
        assert_eq!(watch.sync_all(&mut conn, &keys).await.unwrap(), epoch);

        // Scopes on every master purge in one call.
        let scopes: Vec<Scope> = (0..20).map(|i| Scope::Tag(format!("t{i}"))).collect();
        conn.purge(&keys, &scopes).await.unwrap();

        let epoch_master = cluster.master_of(&keys.epoch()).await.unwrap();
        let victim = (epoch_master + 1) % PrivateRedisCluster::MASTERS;
        cluster.stop(victim).await.unwrap();
        // The others still answer: the epoch stays, nothing is replaced.
        let kept = wait_until(Duration::from_secs(10), || {
            let (mut conn, mut watch, keys) = (
                conn.clone(),
                EpochWatch::with_run_id(watch.run_id().map(str::to_owned)),
                keys.clone(),
            );
            let epoch = epoch.clone();
            async move {
                watch
                    .sync_all(&mut conn, &keys)
                    .await
                    .is_ok_and(|e| e == epoch)
            }
        })
        .await;
        assert!(kept, "a stopped master must not replace or hide the epoch");

        // A purge with a master down fails, but purges every other master's scopes.
        let mut healthy_scopes = Vec::new();
        for scope in &scopes {
            if cluster.master_of(&keys.generation(scope)).await.unwrap() != victim {
                let generation: Option<String> = redis::cmd("GET")
                    .arg(keys.generation(scope))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                healthy_scopes.push((scope.clone(), generation.unwrap()));
            }
        }
        assert!(conn.purge(&keys, &scopes).await.is_err());
        for (scope, before) in &healthy_scopes {
            let after: Option<String> = redis::cmd("GET")
                .arg(keys.generation(scope))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_ne!(after.as_ref(), Some(before), "{scope} not purged");
        }

        // A node that lacks the read script (restarted, flushed) still serves
        // reads while another master is down (SCRIPT LOAD would go to all).
        let healthy = epoch_master;
        let mut node = redis::Client::open(cluster.urls()[healthy].as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut node)
            .await
            .unwrap();
        let mut on_healthy = None;
        for scope in &scopes {
            if cluster.master_of(&keys.generation(scope)).await.unwrap() == healthy {
                on_healthy = Some(scope.clone());
                break;
            }
        }
        let scope = on_healthy.unwrap();
        let script = crate::cache::ReadScript::default();
        let (generation, entry) = script
            .run(&mut conn, &keys, &scope, &epoch, "r")
            .await
            .unwrap();
        assert!(entry.is_none() && !generation.is_empty());

        cluster.restart(victim).await.unwrap();
        let replaced = wait_until(Duration::from_secs(10), || {
            let (mut conn, mut watch, keys) = (
                conn.clone(),
                EpochWatch::with_run_id(watch.run_id().map(str::to_owned)),
                keys.clone(),
            );
            let epoch = epoch.clone();
            async move {
                watch
                    .sync_all(&mut conn, &keys)
                    .await
                    .is_ok_and(|e| e != epoch)
            }
        })
        .await;
        assert!(
            replaced,
            "a master back under a new run_id replaces the epoch"
        );
    }
}
