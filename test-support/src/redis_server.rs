//! A private `redis-server` a test may freeze, kill and restart.

use std::{ffi::OsString, net::Ipv4Addr, path::Path, process::Stdio, time::Duration};

use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
    time::Instant,
};

use crate::server::{
    free_port, io_error, log_tail, signal, ServerError, PORT_ATTEMPTS, START_TIMEOUT,
};

/// Whether a Redis server answers PING on `port` within a second.
pub(crate) async fn redis_answers(port: u16) -> bool {
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
        self.child = Some(start_redis_server(self.port, self.dir.path(), &log_path, &[]).await?);
        Ok(())
    }
}

/// Starts a `redis-server` on `port` with no persistence, `extra` arguments
/// and its output appended to `log_path`, and returns it once it answers
/// PING. An early exit (most likely the port was taken) or no answer within
/// [`START_TIMEOUT`] is an error.
pub(crate) async fn start_redis_server(
    port: u16,
    dir: &Path,
    log_path: &Path,
    extra: &[OsString],
) -> Result<Child, ServerError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io_error("opening the Redis log"))?;
    let log_err = log.try_clone().map_err(io_error("opening the Redis log"))?;
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(io_error("starting redis-server"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if redis_answers(port).await {
            return Ok(child);
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(ServerError::NotReady("redis-server", log_tail(log_path)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wait_until;

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
}
