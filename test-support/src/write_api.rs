//! The write API started in-process on a free port against a test's database,
//! as both of its test suites (the JSON API and the console) start it.
#![allow(clippy::unwrap_used)] // Test support: a panic is the failing test's report.

use std::time::Duration;

use reqwest::StatusCode;
use shared::config::{DatabaseArgs, HttpArgs, LogFormat, TelemetryArgs};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use write_api::config::{ConsoleArgs, ServeArgs};

use crate::wait_until;

/// How long a started app may take to answer `/readyz` with 200 (it applies
/// the migrations in the background first).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Settings for a test: a free port, `admin_tokens`, quiet logs.
pub fn serve_args(admin_tokens: &[&str], console: ConsoleArgs) -> ServeArgs {
    ServeArgs {
        database: DatabaseArgs {
            database_url: String::new(),
            database_max_connections: 10,
            database_acquire_timeout_ms: 2000,
        },
        telemetry: TelemetryArgs {
            log_filter: "warn".into(),
            log_format: LogFormat::Pretty,
        },
        http: HttpArgs {
            request_timeout_ms: 10_000,
            shutdown_grace_ms: 1_000,
        },
        listen_addr: "127.0.0.1:0".into(),
        admin_tokens: admin_tokens.iter().map(|t| (*t).to_owned()).collect(),
        console,
    }
}

/// A running app; shut down when dropped.
pub struct WriteApi {
    pub base: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub pool: PgPool,
    shutdown: CancellationToken,
}

impl Drop for WriteApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl WriteApi {
    /// Starts the app on `pool` and returns at once: it may still answer 503
    /// while it applies the migrations. `client` is how the test talks to it.
    pub async fn start_unready(args: &ServeArgs, pool: PgPool, client: reqwest::Client) -> Self {
        let shutdown = CancellationToken::new();
        let running = write_api::start(args, pool.clone(), shutdown.clone())
            .await
            .unwrap();
        Self {
            base: format!("http://{}", running.addr),
            port: running.addr.port(),
            client,
            pool,
            shutdown,
        }
    }

    /// Starts the app and waits (bounded) until it is ready.
    pub async fn start(args: &ServeArgs, pool: PgPool, client: reqwest::Client) -> Self {
        let app = Self::start_unready(args, pool, client).await;
        let ready = wait_until(READY_WITHIN, || async {
            app.client
                .get(app.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(ready, "the app did not become ready");
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
