//! A private three-master Redis Cluster a test may take a master from.

use std::{ffi::OsString, time::Duration};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{
    redis_server::start_redis_server,
    server::{free_port, io_error, log_tail, run, ServerError, PORT_ATTEMPTS, START_TIMEOUT},
    wait_until,
};

/// A Redis Cluster of its own: three masters (no replicas) on free ports,
/// with no persistence, `cluster-require-full-coverage no` (a stopped master
/// takes only its own slots away) and a one-second node timeout. A stopped
/// master restarts empty on the same port with the same `nodes.conf`, so it
/// rejoins owning the same slots.
pub struct PrivateRedisCluster {
    pub(crate) dir: TempDir,
    pub(crate) nodes: Vec<ClusterNode>,
}

pub(crate) struct ClusterNode {
    pub(crate) port: u16,
    bus_port: u16,
    pub(crate) child: Option<Child>,
}

impl PrivateRedisCluster {
    pub const MASTERS: usize = 3;

    pub async fn start() -> Result<Self, ServerError> {
        let cluster = Self::launch_nodes(Self::MASTERS).await?;
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        run(create, "redis-cli --cluster create").await?;
        cluster.wait_ok(0..Self::MASTERS).await?;
        Ok(cluster)
    }

    /// Every master's URL, comma-separated: the `REDIS_URL` of a cluster.
    pub fn url(&self) -> String {
        self.urls().join(",")
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    pub fn port(&self, master: usize) -> Option<u16> {
        self.nodes.get(master).map(|n| n.port)
    }

    /// Which master (index into [`urls`](Self::urls)) serves `key`'s slot,
    /// asked of the cluster itself (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`).
    pub async fn master_of(&self, key: &str) -> Result<usize, ServerError> {
        let mut last_error = None;
        for url in self.urls() {
            match master_of(&url, key).await {
                Ok(port) => {
                    if let Some(index) = self.nodes.iter().position(|n| n.port == port) {
                        return Ok(index);
                    }
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(ServerError::NotReady(
            "redis cluster slot map",
            last_error.map(|e| e.to_string()).unwrap_or_default(),
        ))
    }

    /// Kills one master and waits until it has exited; its data is gone.
    pub async fn stop(&mut self, master: usize) -> Result<(), ServerError> {
        if let Some(child) = self.nodes.get_mut(master).and_then(|n| n.child.as_mut()) {
            child
                .kill()
                .await
                .map_err(io_error("killing redis-server"))?;
        }
        if let Some(node) = self.nodes.get_mut(master) {
            node.child = None;
        }
        Ok(())
    }

    /// Starts a stopped master again (empty, same port and `nodes.conf`) and
    /// waits until every master reports `cluster_state:ok`.
    pub async fn restart(&mut self, master: usize) -> Result<(), ServerError> {
        self.stop(master).await?;
        let Some(mut node) = (master < self.nodes.len()).then(|| self.nodes.remove(master)) else {
            return Ok(());
        };
        let launched = self.launch(&mut node).await;
        self.nodes.insert(master, node);
        launched?;
        self.wait_ok(0..self.nodes.len()).await
    }

    /// Starts `count` cluster-enabled nodes, not yet joined into a cluster.
    pub(crate) async fn launch_nodes(count: usize) -> Result<Self, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("private-redis-cluster-")
            .tempdir()
            .map_err(io_error("creating the Redis Cluster directory"))?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        for _ in 0..count {
            let mut last_error = None;
            for _ in 0..PORT_ATTEMPTS {
                let mut node = ClusterNode {
                    port: free_port(),
                    bus_port: free_port(),
                    child: None,
                };
                match cluster.launch(&mut node).await {
                    Ok(()) => {
                        last_error = None;
                        cluster.nodes.push(node);
                        break;
                    }
                    Err(error) => last_error = Some(error),
                }
            }
            if let Some(error) = last_error {
                return Err(error);
            }
        }
        Ok(cluster)
    }

    pub(crate) async fn wait_ok(&self, masters: std::ops::Range<usize>) -> Result<(), ServerError> {
        let urls = self.urls();
        let all_ok = wait_until(START_TIMEOUT, || {
            let urls = urls[masters.clone()].to_vec();
            async move {
                for url in urls {
                    if !cluster_ok(&url).await {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        if all_ok {
            Ok(())
        } else {
            Err(ServerError::NotReady(
                "redis cluster",
                log_tail(&self.dir.path().join("cluster.log")),
            ))
        }
    }

    async fn launch(&self, node: &mut ClusterNode) -> Result<(), ServerError> {
        let config = self.dir.path().join(format!("nodes-{}.conf", node.port));
        let extra: Vec<OsString> = vec![
            "--cluster-port".into(),
            node.bus_port.to_string().into(),
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            config.into_os_string(),
            "--cluster-node-timeout".into(),
            "1000".into(),
            "--cluster-require-full-coverage".into(),
            "no".into(),
        ];
        let log_path = self.dir.path().join("cluster.log");
        node.child = Some(start_redis_server(node.port, self.dir.path(), &log_path, &extra).await?);
        Ok(())
    }
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.start_kill();
            }
        }
    }
}

/// Whether the node at `url` reports `cluster_state:ok` within a second.
async fn cluster_ok(url: &str) -> bool {
    let info = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async::<String>(&mut conn)
            .await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), info).await,
        Ok(Ok(info)) if info.lines().any(|l| l.trim() == "cluster_state:ok")
    )
}

/// The port of the master serving `key`'s slot, as the node at `url` sees it.
async fn master_of(url: &str, key: &str) -> redis::RedisResult<u16> {
    let ask = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await?;
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Vec<Vec<redis::Value>>>(&mut conn)
            .await?
            .into_iter()
            .filter_map(|range| {
                let start = redis::from_redis_value(range.first()?).ok()?;
                let end = redis::from_redis_value(range.get(1)?).ok()?;
                let node: Vec<redis::Value> = redis::from_redis_value(range.get(2)?).ok()?;
                let host = redis::from_redis_value(node.first()?).ok()?;
                let port = redis::from_redis_value(node.get(1)?).ok()?;
                Some((start, end, (host, port)))
            })
            .collect();
        ranges
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, (_, port))| port)
            .ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::ClientError, "slot unassigned"))
            })
    };
    tokio::time::timeout(Duration::from_secs(1), ask)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "timed out",
            )))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_cluster_serves_survives_a_stopped_master_and_rejoins() {
        let mut cluster = PrivateRedisCluster::start().await.unwrap();
        assert_eq!(cluster.urls().len(), PrivateRedisCluster::MASTERS);
        let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        // Keys on every master, and which master holds each.
        let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
        let mut masters = Vec::new();
        for key in &keys {
            let () = redis::cmd("SET")
                .arg(key)
                .arg("v")
                .query_async(&mut conn)
                .await
                .unwrap();
            masters.push(cluster.master_of(key).await.unwrap());
        }
        assert!((0..PrivateRedisCluster::MASTERS).all(|m| masters.contains(&m)));
        // The slot this crate computes is the slot Redis computes.
        let node = redis::Client::open(cluster.urls()[0].as_str()).unwrap();
        let mut node = node.get_multiplexed_async_connection().await.unwrap();
        for key in ["foo", "vf:{feed}:gen", "vf:{tag:summer}:e:x", "foo{}{bar}"] {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut node)
                .await
                .unwrap();
            assert_eq!(slot, shared::cache::hash_slot(key), "{key}");
        }

        cluster.stop(1).await.unwrap();
        let down = keys.iter().zip(&masters).find(|(_, m)| **m == 1).unwrap().0;
        let up = keys.iter().zip(&masters).find(|(_, m)| **m != 1).unwrap().0;
        // The others keep serving their slots once they have noticed.
        assert!(
            wait_until(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move {
                    let got = tokio::time::timeout(
                        Duration::from_millis(500),
                        redis::cmd("GET")
                            .arg(up)
                            .query_async::<Option<String>>(&mut conn),
                    )
                    .await;
                    matches!(got, Ok(Ok(Some(_))))
                }
            })
            .await
        );
        let got = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("GET")
                .arg(down)
                .query_async::<Option<String>>(&mut conn),
        )
        .await;
        assert!(
            !matches!(got, Ok(Ok(Some(_)))),
            "a stopped master serves nothing"
        );

        cluster.restart(1).await.unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || {
                let mut conn = conn.clone();
                async move {
                    let got = tokio::time::timeout(
                        Duration::from_millis(500),
                        redis::cmd("GET")
                            .arg(down)
                            .query_async::<Option<String>>(&mut conn),
                    )
                    .await;
                    matches!(got, Ok(Ok(None)))
                }
            })
            .await,
            "the restarted master serves its slots again, empty"
        );
    }
}
