//! What starting a private server takes: a free port, the error type, the
//! bounded start timeout, signals and log tails.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::Command;

/// How long a server may take to start (or restart) before it is an error.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting on a fresh free port: another process may take the
/// port between [`free_port`] choosing it and the server binding it.
pub(crate) const PORT_ATTEMPTS: usize = 3;

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

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
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

/// Sends a signal with the `kill` command (the workspace forbids the `unsafe`
/// a direct libc call would need).
pub(crate) fn signal(pid: u32, signal: &str) -> Result<(), ServerError> {
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

pub(crate) fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs a command to completion, turning a failure into an error carrying its
/// output.
pub(crate) async fn run(mut command: Command, what: &str) -> Result<String, ServerError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
