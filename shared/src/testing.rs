//! Private Postgres and Redis servers for fault tests (enabled by the
//! `testing` feature; dev-dependency only).
//!
//! ```ignore
//! let mut redis = PrivateRedis::start().await?;   // redis-server on a free port
//! redis.url();                                    // redis://127.0.0.1:PORT
//! redis.pause()?; redis.resume()?;                // SIGSTOP / SIGCONT
//! redis.stop().await?; redis.restart().await?;    // same port, empty data
//! let mut pg = PrivatePostgres::start().await?;   // initdb + pg_ctl (as `postgres` when root)
//! pg.url("postgres");                             // postgres://postgres@127.0.0.1:PORT/postgres
//! pg.create_database("app").await?;               // then run shared::db::MIGRATOR on it yourself
//! pg.stop().await?; pg.restart().await?;          // same port and data
//! wait_until(Duration::from_secs(5), || async { cond }).await // true if cond became true in time
//! database_url(&pool); redis_url();               // the servers the test run uses (not always :5432/:6379)
//! let _keys = RedisKeysGuard::new(redis_url(), prefix); // deletes the prefix's keys on drop
//! let mut c = PrivateRedisCluster::start().await?; // 3 masters, no replicas
//! c.url(); c.master_of("k{tag}").await?;          // comma-separated REDIS_URL; which master serves a key
//! c.stop(1).await?; c.restart(1).await?;          // one master down; back empty, same port and slots
//! ```
//! Every server is stopped when its handle is dropped.
//!
//! The servers are the machine's own `redis-server` and Postgres binaries, so a
//! test can kill, freeze and restart them without touching the shared servers
//! other tests use. Every wait is bounded: a server that does not come up in
//! [`START_TIMEOUT`] is an error, never a hung test.

use std::{
    future::Future,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
    time::Instant,
};

/// How long a server may take to start (or restart) before it is an error.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting on a fresh free port: another process may take the
/// port between [`free_port`] choosing it and the server binding it.
const PORT_ATTEMPTS: usize = 3;

/// The account Postgres runs as when the tests run as root (initdb and postgres
/// refuse to run as root).
const POSTGRES_USER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {output}")]
    Command {
        what: String,
        status: ExitStatus,
        output: String,
    },
    #[error("{0} did not come up within {START_TIMEOUT:?}; log: {1}")]
    NotReady(&'static str, String),
    #[error("no Postgres binaries found (tried `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH)")]
    NoPostgres,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    // Below Linux' ephemeral range (32768-60999): a server stopped and
    // restarted on its port must find it free, and in the ephemeral range
    // any client's outgoing connection may take it as its source port in
    // between. (A cluster node's bus port, +10000, stays below it too.)
    const FIRST: u16 = 10_000;
    const LAST: u16 = 22_000;
    for _ in 0..200 {
        let port = rand::random_range(FIRST..=LAST);
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return port;
        }
    }
    // Nothing free after 200 tries: the server start fails with a clear
    // "address in use" rather than this helper panicking.
    FIRST
}

/// Polls `condition` every 20 ms until it returns true (→ `true`) or `timeout`
/// has passed (→ `false`). A condition still running at the deadline is
/// abandoned, so this returns in bounded time whatever the condition does.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, condition()).await {
            Ok(true) => return true,
            Ok(false) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return false,
        }
    }
}

/// A URL for the database behind a `#[sqlx::test]` pool, to start a service
/// or a second connection against it. Built from the pool's own options, so it
/// follows wherever `DATABASE_URL` pointed (scripts/test may start a private
/// server on another port): never hard-code 127.0.0.1:5432.
pub fn database_url(pool: &sqlx::PgPool) -> String {
    let options = pool.connect_options();
    let database = options.get_database().unwrap_or("postgres");
    match options.get_socket() {
        Some(socket) => format!(
            "postgres://{}@/{database}?host={}&port={}",
            options.get_username(),
            socket.display(),
            options.get_port()
        ),
        None => format!(
            "postgres://{}@{}:{}/{database}",
            options.get_username(),
            options.get_host(),
            options.get_port()
        ),
    }
}

/// The Redis the tests share: `REDIS_URL` (set by scripts/test, which may
/// start a private Redis), else the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Deletes every key under a test's prefix from the Redis at `url` when
/// dropped, so that a run leaves nothing in a shared Redis: the binaries write
/// keys without a TTL (the epoch, the invalidator's high-water mark). Also on
/// a failing test (drop runs while unwinding). Best effort and bounded: an
/// unreachable or clustered (comma-separated) URL is left alone; private
/// servers take their keys with them.
#[derive(Debug)]
pub struct RedisKeysGuard {
    url: String,
    prefix: String,
}

impl RedisKeysGuard {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
        }
    }
}

impl Drop for RedisKeysGuard {
    fn drop(&mut self) {
        if !self.url.contains(',') && !self.prefix.is_empty() {
            let _ = delete_keys(&self.url, &self.prefix);
        }
    }
}

/// Deletes the keys starting with `prefix` (SCAN, which a test may use: it
/// walks only the shared test server); returns how many were deleted.
pub fn delete_keys(url: &str, prefix: &str) -> redis::RedisResult<usize> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(TIMEOUT)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(TIMEOUT))?;
    // Glob metacharacters in the prefix match only themselves.
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    let (mut cursor, mut deleted) = (0u64, 0);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)?;
        if !keys.is_empty() {
            deleted += redis::cmd("UNLINK").arg(&keys).query::<usize>(&mut conn)?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// Whether a Redis server answers PING on `port` within a second.
async fn redis_answers(port: u16) -> bool {
    let ping = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await?;
        Ok::<bool, std::io::Error>(&reply == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Ok(true))
    )
}

/// Sends a signal with the `kill` command (the workspace forbids the `unsafe`
/// a direct libc call would need).
fn signal(pid: u32, signal: &str) -> Result<(), ServerError> {
    let what = format!("kill -{signal} {pid}");
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(io_error(what.clone()))?;
    if status.success() {
        Ok(())
    } else {
        Err(ServerError::Command {
            what,
            status,
            output: String::new(),
        })
    }
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A `redis-server` of its own on a free port, with no persistence: a restart
/// comes back empty, like a Redis that lost its data.
pub struct PrivateRedis {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    paused: bool,
}

impl PrivateRedis {
    pub async fn start() -> Result<Self, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("private-redis-")
            .tempdir()
            .map_err(io_error("creating the Redis directory"))?;
        let mut redis = Self {
            port: 0,
            dir,
            child: None,
            paused: false,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            redis.port = free_port();
            match redis.launch().await {
                Ok(()) => return Ok(redis),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or(ServerError::NotReady("redis-server", String::new())))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is
    /// answered, like a Redis stuck behind a network partition.
    pub fn pause(&mut self) -> Result<(), ServerError> {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP")?;
            self.paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self) -> Result<(), ServerError> {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT")?;
            self.paused = false;
        }
        Ok(())
    }

    /// Kills the server and waits until it has exited; its data is gone.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            // SIGKILL ends a stopped (paused) process too.
            child
                .kill()
                .await
                .map_err(io_error("killing redis-server"))?;
        }
        self.paused = false;
        Ok(())
    }

    /// Stops the server if it runs and starts an empty one on the same port,
    /// returning once it answers PING.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await?;
        self.launch().await
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn launch(&mut self) -> Result<(), ServerError> {
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error("opening the Redis log"))?;
        let log_err = log.try_clone().map_err(io_error("opening the Redis log"))?;
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error("starting redis-server"))?;
        let port = self.port;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if redis_answers(port).await {
                self.child = Some(child);
                return Ok(());
            }
            // Exited early: most likely the port was taken.
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(ServerError::NotReady("redis-server", log_tail(&log_path)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Resumed first: should the kill fail, the server is at least not
            // left frozen on its port, hanging whoever connects.
            if self.paused {
                let _ = child.id().map(|pid| signal(pid, "CONT"));
            }
            // kill_on_drop would do it too; starting the kill here makes it
            // happen before the directory is removed. Tokio reaps the child.
            let _ = child.start_kill();
        }
    }
}

/// A Redis Cluster of its own: three masters (no replicas) on free ports,
/// with no persistence, `cluster-require-full-coverage no` (a stopped master
/// takes only its own slots away) and a one-second node timeout. A stopped
/// master restarts empty on the same port with the same `nodes.conf`, so it
/// rejoins owning the same slots.
pub struct PrivateRedisCluster {
    dir: TempDir,
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

impl PrivateRedisCluster {
    pub const MASTERS: usize = 3;

    pub async fn start() -> Result<Self, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("private-redis-cluster-")
            .tempdir()
            .map_err(io_error("creating the Redis Cluster directory"))?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        for _ in 0..Self::MASTERS {
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

    async fn wait_ok(&self, masters: std::ops::Range<usize>) -> Result<(), ServerError> {
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
        let log_path = self.dir.path().join("cluster.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error("opening the Redis log"))?;
        let log_err = log.try_clone().map_err(io_error("opening the Redis log"))?;
        let port = node.port.to_string();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--cluster-port",
                &node.bus_port.to_string(),
            ])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(self.dir.path().join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-require-full-coverage", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error("starting redis-server"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if redis_answers(node.port).await {
                node.child = Some(child);
                return Ok(());
            }
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(ServerError::NotReady("redis-server", log_tail(&log_path)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

// --- Redis Cluster with replicas (failover tests) ---

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
        let dir = tempfile::Builder::new()
            .prefix("private-redis-cluster-")
            .tempdir()
            .map_err(io_error("creating the Redis Cluster directory"))?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        for _ in 0..Self::MASTERS * 2 {
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

// --- end of Redis Cluster with replicas ---

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

/// A Postgres cluster of its own: `initdb` into a temporary directory, run by
/// `pg_ctl` on a free port with fsync off and trust authentication for the
/// `postgres` role. Data survives [`stop`](Self::stop)/[`restart`](Self::restart)
/// and is deleted on drop.
pub struct PrivatePostgres {
    port: u16,
    bindir: PathBuf,
    as_postgres_user: bool,
    running: bool,
    // Last: dropped after `Drop::drop` has stopped the server.
    dir: TempDir,
}

impl PrivatePostgres {
    pub async fn start() -> Result<Self, ServerError> {
        let bindir = postgres_bindir().await.ok_or(ServerError::NoPostgres)?;
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("private-postgres-")
            .tempdir()
            .map_err(io_error("creating the Postgres directory"))?;
        std::fs::create_dir(dir.path().join("socket"))
            .map_err(io_error("creating the socket directory"))?;
        if as_postgres_user {
            let mut chown = Command::new("chown");
            chown
                .arg("-R")
                .arg(format!("{POSTGRES_USER}:"))
                .arg(dir.path());
            run(chown, "chown of the Postgres directory").await?;
        }
        let mut pg = Self {
            port: 0,
            bindir,
            as_postgres_user,
            running: false,
            dir,
        };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.data_dir()).args([
            "-U",
            POSTGRES_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb, "initdb").await?;

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            pg.port = free_port();
            match pg.launch().await {
                Ok(()) => return Ok(pg),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or(ServerError::NotReady("postgres", String::new())))
    }

    /// `postgres://postgres@127.0.0.1:PORT/{database}`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{POSTGRES_USER}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn create_database(&self, name: &str) -> Result<(), ServerError> {
        let mut conn = PgConnection::connect(&self.url("postgres")).await?;
        // An identifier cannot be a bound parameter; quoting makes any name safe.
        let statement = format!("create database \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(&statement).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Fast shutdown: open connections are cut, the data stays.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        if self.running {
            let mut stop = self.command("pg_ctl");
            stop.arg("stop")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "-t", "30"]);
            run(stop, "pg_ctl stop").await?;
            self.running = false;
        }
        Ok(())
    }

    /// Stops the server if it runs and starts it again on the same port with
    /// the same data, returning once it accepts connections.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await?;
        self.launch().await
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A Postgres binary as a command, run as the `postgres` user when root.
    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", POSTGRES_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    async fn launch(&mut self) -> Result<(), ServerError> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().join("socket").display(),
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args([
                "-w",
                "-t",
                &START_TIMEOUT.as_secs().to_string(),
                "-o",
                &options,
            ]);
        // pg_ctl -w returns once the server accepts connections, or fails
        // (after START_TIMEOUT at most) when it cannot, e.g. the port is taken.
        let started = tokio::time::timeout(
            START_TIMEOUT + Duration::from_secs(5),
            run(start, "pg_ctl start"),
        )
        .await;
        match started {
            Ok(Ok(_)) => {
                self.running = true;
                Ok(())
            }
            Ok(Err(error)) => {
                self.stop_immediately();
                Err(match error {
                    ServerError::Command { .. } => {
                        ServerError::NotReady("postgres", log_tail(&self.log_path()))
                    }
                    other => other,
                })
            }
            Err(_) => {
                self.stop_immediately();
                Err(ServerError::NotReady(
                    "postgres",
                    log_tail(&self.log_path()),
                ))
            }
        }
    }

    /// Synchronous, best-effort immediate shutdown, for Drop and failed starts.
    fn stop_immediately(&mut self) {
        let program = self.bindir.join("pg_ctl");
        let mut stop = if self.as_postgres_user {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", POSTGRES_USER, "--"]).arg(program);
            c
        } else {
            std::process::Command::new(program)
        };
        let _ = stop
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "10"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            self.stop_immediately();
        }
    }
}

/// Runs a command to completion, turning a failure into an error carrying its
/// output.
async fn run(mut command: Command, what: &str) -> Result<String, ServerError> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(io_error(what))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(ServerError::Command {
            what: what.to_owned(),
            status: output.status,
            output: text,
        })
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the
/// effective user; reading it needs no `unsafe` geteuid call).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The directory holding initdb, pg_ctl and postgres.
async fn postgres_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output().await {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server(&dir) {
            return Some(dir);
        }
    }
    // Debian's pg_config may come from a client-only package; the servers live
    // in /usr/lib/postgresql/<major>/bin. Prefer the newest major.
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = entry.path().join("bin");
            has_server(&dir).then_some((major, dir))
        })
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_server(dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_reports_success_and_gives_up_at_the_deadline() {
        let mut calls = 0;
        assert!(
            wait_until(Duration::from_secs(2), || {
                calls += 1;
                let done = calls >= 3;
                async move { done }
            })
            .await
        );
        assert_eq!(calls, 3);

        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(200), || async { false }).await);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );

        // A condition that never finishes is abandoned at the deadline.
        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(200), std::future::pending::<bool>).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    async fn redis_set_get(url: &str) -> redis::RedisResult<Option<String>> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let before: Option<String> = redis::cmd("GET").arg("k").query_async(&mut conn).await?;
        let () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut conn)
            .await?;
        Ok(before)
    }

    #[tokio::test]
    async fn the_keys_guard_deletes_its_prefix_and_nothing_else() {
        let redis = PrivateRedis::start().await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for key in ["t*1:epoch", "t*1:{feed}:gen", "t*12:epoch", "other"] {
            let () = redis::cmd("SET")
                .arg(key)
                .arg("v")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let url = redis.url();
        tokio::task::spawn_blocking(move || drop(RedisKeysGuard::new(url, "t*1:")))
            .await
            .unwrap();
        let mut left: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        left.sort();
        assert_eq!(left, ["other", "t*12:epoch"]);
    }

    #[tokio::test]
    async fn redis_pauses_resumes_stops_and_restarts_empty() {
        let mut redis = PrivateRedis::start().await.unwrap();
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert_eq!(redis_set_get(&redis.url()).await.unwrap(), None);
        assert_eq!(
            redis_set_get(&redis.url()).await.unwrap().as_deref(),
            Some("v")
        );

        redis.pause().unwrap();
        assert!(!redis_answers(port).await, "a paused Redis must not answer");
        redis.resume().unwrap();
        assert!(redis_answers(port).await);

        redis.stop().await.unwrap();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err());

        redis.restart().await.unwrap();
        assert_eq!(redis.port(), port);
        assert_eq!(
            redis_set_get(&redis.url()).await.unwrap(),
            None,
            "restart loses the data"
        );

        // Dropping a paused server still kills it.
        redis.pause().unwrap();
        drop(redis);
        assert!(
            wait_until(Duration::from_secs(5), || async {
                TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .await
                    .is_err()
            })
            .await
        );
    }

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
            assert_eq!(slot, crate::cache::hash_slot(key), "{key}");
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

    #[sqlx::test]
    async fn database_url_reaches_the_pools_database(pool: sqlx::PgPool) {
        let url = database_url(&pool);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let name: String = sqlx::query_scalar("select current_database()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(Some(name.as_str()), pool.connect_options().get_database());
    }

    async fn count_rows(url: &str) -> Result<i64, sqlx::Error> {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::query_scalar("select count(*) from t")
            .fetch_one(&mut conn)
            .await
    }

    #[tokio::test]
    async fn postgres_creates_databases_and_keeps_data_across_restarts() {
        let mut pg = PrivatePostgres::start().await.unwrap();
        let port = pg.port();
        let dir = pg.dir.path().to_owned();
        assert_eq!(
            pg.url("app"),
            format!("postgres://postgres@127.0.0.1:{port}/app")
        );
        pg.create_database("app").await.unwrap();
        let mut conn = PgConnection::connect(&pg.url("app")).await.unwrap();
        sqlx::raw_sql("create table t (x int); insert into t values (1), (2)")
            .execute(&mut conn)
            .await
            .unwrap();

        pg.stop().await.unwrap();
        assert!(sqlx::query("select 1").execute(&mut conn).await.is_err());
        assert!(count_rows(&pg.url("app")).await.is_err());

        pg.restart().await.unwrap();
        assert_eq!(pg.port(), port);
        assert_eq!(count_rows(&pg.url("app")).await.unwrap(), 2);

        drop(pg);
        assert!(
            PgConnection::connect(&format!("postgres://postgres@127.0.0.1:{port}/app"))
                .await
                .is_err()
        );
        assert!(!dir.exists(), "the data directory is removed on drop");
    }
}
