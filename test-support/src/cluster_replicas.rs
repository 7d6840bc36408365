//! The private Redis Cluster with a replica per master, for failover tests.

use std::time::Duration;

use tokio::process::Command;

use crate::{
    cluster::PrivateRedisCluster,
    server::{log_tail, run, signal, ServerError, START_TIMEOUT},
    wait_until,
};

/// How long a master may be silent before its replica takes over, in the
/// cluster [`PrivateRedisCluster::start_with_replicas`] starts: small, so a
/// failover takes seconds, yet longer than the read API's topology check
/// (one second) needs to notice a stopped master first.
pub const REPLICA_CLUSTER_NODE_TIMEOUT: Duration = Duration::from_millis(2000);

impl PrivateRedisCluster {
    /// Three masters with one replica each: nodes 0-2 start as the masters,
    /// 3-5 as their replicas (`redis-cli --cluster create --cluster-replicas
    /// 1` pairs them), the node timeout [`REPLICA_CLUSTER_NODE_TIMEOUT`].
    /// Returns once every node reports `cluster_state:ok` and every master
    /// has its replica in sync.
    pub async fn start_with_replicas() -> Result<Self, ServerError> {
        let cluster = Self::launch_nodes(Self::MASTERS * 2).await?;
        let timeout = REPLICA_CLUSTER_NODE_TIMEOUT.as_millis().to_string();
        for url in cluster.urls() {
            let set = async {
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("cluster-node-timeout")
                    .arg(&timeout)
                    .query_async::<()>(&mut conn)
                    .await
            };
            set.await
                .map_err(|e| ServerError::NotReady("redis-server", e.to_string()))?;
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        run(create, "redis-cli --cluster create").await?;
        cluster.wait_ok(0..cluster.nodes.len()).await?;
        let urls = cluster.urls();
        let synced = wait_until(START_TIMEOUT, || {
            let urls = urls.clone();
            async move {
                let mut masters_in_sync = 0;
                for url in &urls {
                    if replication(url).await.is_some_and(|info| {
                        info.contains("role:master")
                            && info.contains("connected_slaves:1")
                            && info.contains("state=online")
                    }) {
                        masters_in_sync += 1;
                    }
                }
                masters_in_sync == Self::MASTERS
            }
        })
        .await;
        if !synced {
            return Err(ServerError::NotReady(
                "redis cluster replicas",
                log_tail(&cluster.dir.path().join("cluster.log")),
            ));
        }
        Ok(cluster)
    }

    /// Whether node `index` is a master now (`None` if it does not answer).
    pub async fn is_master(&self, index: usize) -> Option<bool> {
        let url = self.urls().get(index)?.clone();
        replication(&url)
            .await
            .map(|info| info.contains("role:master"))
    }

    /// The node replicating node `master`, by its `INFO replication`.
    pub async fn replica_of(&self, master: usize) -> Option<usize> {
        let port = self.nodes.get(master)?.port;
        for (index, url) in self.urls().iter().enumerate() {
            let info = replication(url).await?;
            if info.contains("role:slave") && info.contains(&format!("master_port:{port}")) {
                return Some(index);
            }
        }
        None
    }

    /// Freezes node `index` (SIGSTOP): it neither answers nor replicates.
    pub fn pause(&mut self, index: usize) -> Result<(), ServerError> {
        match self.nodes.get(index).and_then(|n| n.child.as_ref()?.id()) {
            Some(pid) => signal(pid, "STOP"),
            None => Ok(()),
        }
    }

    pub fn resume(&mut self, index: usize) -> Result<(), ServerError> {
        match self.nodes.get(index).and_then(|n| n.child.as_ref()?.id()) {
            Some(pid) => signal(pid, "CONT"),
            None => Ok(()),
        }
    }
}

/// `INFO replication` of the node at `url`, if it answers within a second.
async fn replication(url: &str) -> Option<String> {
    let info = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("replication")
            .query_async::<String>(&mut conn)
            .await
    };
    tokio::time::timeout(Duration::from_secs(1), info)
        .await
        .ok()?
        .ok()
}
