//! One Redis, or a Redis Cluster, behind one connection type.
//!
//! `REDIS_URL` names a single server (`redis://host:6379/1`) or, as a
//! comma-separated list of seed nodes, a cluster (`redis://a:7000,redis://b:7000`;
//! a single seed is written with a trailing comma). Every key of a scope carries
//! the scope as its hash tag, so each read script and each entry store touches
//! one slot; the few multi-key operations (a purge, the topology check) are
//! split per slot (`fence`) or per node (`topology`). This module is the
//! transport only: it knows nothing of the cache's keys.

use std::time::Duration;

use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, ProtocolVersion,
    RedisFuture, RedisResult, Value,
};

/// Where the cache lives, parsed from `REDIS_URL`.
#[derive(Clone)]
pub enum RedisTarget {
    Single(redis::Client),
    Cluster {
        client: ClusterClient,
        /// The bound of one command to one node.
        node_timeout: Duration,
        /// The first seed's settings (credentials, database), for connections
        /// of our own to single nodes.
        seed: Box<ConnectionInfo>,
    },
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.write_str(match self {
            Self::Single(_) => "RedisTarget::Single",
            Self::Cluster { .. } => "RedisTarget::Cluster",
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
        let seed = seeds
            .first()
            .copied()
            .unwrap_or_default()
            .into_connection_info()?;
        ClusterClient::builder(seeds)
            .connection_timeout(connect_timeout)
            .response_timeout(timeout)
            // Enough to follow a MOVED/ASK redirect; failures are the caller's
            // to pace (breaker, backoff), not the client's.
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map(|client| Self::Cluster {
                client,
                node_timeout: timeout,
                seed: Box::new(seed),
            })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// A client of its own for one server speaking `protocol`: the single
    /// server, or the cluster node at `node` (with the first seed's
    /// credentials and settings).
    pub fn node_client(
        &self,
        node: Option<(&str, u16)>,
        protocol: ProtocolVersion,
    ) -> RedisResult<redis::Client> {
        let mut info = match (self, node) {
            (Self::Single(client), _) => client.get_connection_info().clone(),
            (Self::Cluster { seed, .. }, Some((host, port))) => ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.to_owned(), port),
                redis: seed.redis.clone(),
            },
            (Self::Cluster { .. }, None) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::ClientError,
                    "a cluster node needs an address",
                )))
            }
        };
        info.redis.protocol = protocol;
        redis::Client::open(info)
    }

    pub async fn connect(&self, single: ConnectionManagerConfig) -> RedisResult<RedisConn> {
        match self {
            Self::Single(client) => ConnectionManager::new_with_config(client.clone(), single)
                .await
                .map(RedisConn::Single),
            Self::Cluster {
                client,
                node_timeout,
                ..
            } => client
                .get_async_connection()
                .await
                .map(|conn| RedisConn::Cluster {
                    conn,
                    node_timeout: *node_timeout,
                }),
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
        /// Bounds each per-node command (the topology check).
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

/// `call`, or an I/O error if it takes longer than `limit`.
pub(super) async fn bounded<T>(
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
