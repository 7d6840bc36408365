//! A private Postgres cluster a test may stop and restart.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use tokio::process::Command;

use crate::server::{
    free_port, io_error, log_tail, run, ServerError, PORT_ATTEMPTS, START_TIMEOUT,
};

/// The account Postgres runs as when the tests run as root (initdb and postgres
/// refuse to run as root).
const POSTGRES_USER: &str = "postgres";

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
