//! The end-to-end harness: the three binaries as child processes
//! ([`test_support::process`]) on a per-test database and Redis key prefix.
#![allow(dead_code, unused_imports, clippy::unwrap_used)] // Each test file uses part of it; a panic is a test failure.

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::cache::{KeySpace, Scope};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use test_support::{database_url_of, redis_url, PrivatePostgres, RedisKeysGuard};
use uuid::Uuid;

pub use test_support::{
    http::{assert_clean, metric},
    process::{bin_dir, Proc},
    wait_until,
};

pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// The promise under test: a read that starts this long after a write was
/// acknowledged sees the write.
pub const FRESH_WITHIN: Duration = Duration::from_secs(1);

/// The database and Redis a test's binaries share.
#[derive(Clone)]
pub struct Env {
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
    /// Deletes the prefix's keys from the shared Redis once the last clone is
    /// gone (the epoch and high-water mark have no TTL).
    _keys: Arc<RedisKeysGuard>,
}

impl Env {
    /// A database, the shared Redis (`REDIS_URL`) and a fresh key prefix.
    pub fn new(database_url: String) -> Self {
        let redis_url = redis_url();
        let keys = RedisKeysGuard::fresh(redis_url.clone(), "e2e");
        Self {
            database_url,
            prefix: keys.prefix().to_owned(),
            _keys: Arc::new(keys),
            redis_url,
        }
    }

    /// The database of a `#[sqlx::test]` (already migrated), the shared Redis
    /// and a fresh key prefix.
    pub fn for_test(connect: &PgConnectOptions) -> Self {
        Self::new(database_url_of(connect))
    }

    fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("REDIS_KEY_PREFIX", self.prefix.clone()),
        ]
    }

    pub fn write_api(&self) -> Proc {
        let mut envs = self.envs();
        envs.push(("ADMIN_TOKENS", ADMIN_TOKEN.into()));
        Proc::start("write-api", &["serve"], &envs)
    }

    pub fn read_api(&self) -> Proc {
        let mut envs = self.envs();
        envs.push(("CACHE_TTL_SECONDS", "300".into()));
        Proc::start("read-api", &[], &envs)
    }

    /// The read API with extra (or overriding) settings.
    pub fn read_api_with(&self, extra: &[(&'static str, String)]) -> Proc {
        let mut envs = self.envs();
        envs.push(("CACHE_TTL_SECONDS", "300".into()));
        envs.extend_from_slice(extra);
        Proc::start("read-api", &[], &envs)
    }

    pub fn invalidator(&self) -> Proc {
        self.invalidator_with(&[])
    }

    pub fn invalidator_with(&self, extra: &[(&'static str, String)]) -> Proc {
        let mut envs = self.envs();
        // Short backoff cap: fault tests wait for recovery.
        envs.push(("RETRY_MAX_DELAY_MS", "500".into()));
        envs.extend_from_slice(extra);
        Proc::start("invalidator", &[], &envs)
    }

    /// Runs `write-api seed --videos n` to completion.
    pub fn seed(&self, n: u32) {
        let output = Command::new(bin_dir().join("write-api"))
            .args(["seed", "--videos", &n.to_string()])
            .env("DATABASE_URL", &self.database_url)
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "seed failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    pub async fn generation(&self, scope: &Scope) -> Option<String> {
        let keys = KeySpace::new(&self.prefix).unwrap();
        self.redis()
            .await
            .get(keys.generation(scope))
            .await
            .unwrap()
    }
}

/// The three binaries on one environment.
pub struct Stack {
    pub write: Proc,
    pub read: Proc,
    pub invalidator: Proc,
    pub http: reqwest::Client,
    /// Last: fields drop in order, and the processes must be gone before the
    /// environment deletes their keys.
    pub env: Env,
}

impl Stack {
    pub async fn start(env: Env) -> Self {
        let stack = Self {
            write: env.write_api(),
            read: env.read_api(),
            invalidator: env.invalidator(),
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        stack.wait_ready(&stack.write).await;
        stack.wait_ready(&stack.read).await;
        stack.wait_ready(&stack.invalidator).await;
        stack
    }

    pub async fn wait_ready(&self, proc: &Proc) {
        let http = &self.http;
        let ready = wait_until(Duration::from_secs(30), || async {
            http.get(proc.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(
            ready,
            "{} never became ready; log:\n{}",
            proc.name(),
            proc.log()
        );
    }

    /// Sends an admin request; returns status and JSON body (Null if none).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.write.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Creates a video; returns its id.
    pub async fn create(&self, title: &str, tags: &[&str], status: &str) -> Uuid {
        let (code, body) = self
            .admin(
                reqwest::Method::POST,
                "/v1/videos",
                Some(video_body(title, tags, status)),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn patch(&self, id: Uuid, patch: Value) {
        let (code, body) = self
            .admin(
                reqwest::Method::PATCH,
                &format!("/v1/videos/{id}"),
                Some(patch),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }

    /// A public read: status, `X-Cache`, JSON body (Null if none).
    pub async fn get(&self, path: &str) -> (StatusCode, String, Value) {
        self.get_from(&self.read, path).await
    }

    /// A public read from one particular read API, as [`get`](Self::get).
    pub async fn get_from(&self, read: &Proc, path: &str) -> (StatusCode, String, Value) {
        let response = self.http.get(read.url(path)).send().await.unwrap();
        let status = response.status();
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, cache, response.json().await.unwrap_or(Value::Null))
    }

    /// Reads `path` until it is served from the cache, so that a later fresh
    /// read proves a purge rather than a miss.
    pub async fn warm(&self, path: &str) {
        let hit = wait_until(Duration::from_secs(5), || async {
            self.get(path).await.1 == "HIT"
        })
        .await;
        assert!(hit, "{path} never became a cache HIT");
    }

    /// Asserts the contract's promise for the page at `path`: a read that
    /// starts [`FRESH_WITHIN`] after `acked` (when the write's 2xx arrived)
    /// shows the write. Reads before that may be stale, and the read's own
    /// duration does not count against the write; each call checks its own
    /// read, so several pages after one write do not share a budget.
    pub async fn assert_fresh(
        &self,
        acked: Instant,
        path: &str,
        what: &str,
        fresh: impl Fn(StatusCode, &Value) -> bool,
    ) {
        read_after(acked).await;
        let started = acked.elapsed();
        let (status, cache, body) = self.get(path).await;
        assert!(
            fresh(status, &body),
            "{what}: {path}: a read that started {started:?} after the write was acknowledged \
             is stale: {status} {cache} {body}"
        );
    }

    pub async fn metrics(&self, proc: &Proc) -> String {
        self.http
            .get(proc.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Returns once a read started now would be covered by the freshness promise
/// for a write acknowledged at `acked`.
pub async fn read_after(acked: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(acked + FRESH_WITHIN)).await;
}

pub fn video_body(title: &str, tags: &[&str], status: &str) -> Value {
    json!({
        "title": title,
        "video_url": "https://cdn.example.com/v/e2e.mp4",
        "tags": tags,
        "status": status,
    })
}

/// The ids of a feed page's results.
pub fn ids(page: &Value) -> Vec<Uuid> {
    page["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v["id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn result(page: &Value, id: Uuid) -> Option<&Value> {
    page["results"]
        .as_array()?
        .iter()
        .find(|v| v["id"].as_str() == Some(&id.to_string()))
}

/// A private Postgres with a migrated `app` database, the shared Redis under
/// a fresh prefix, and a pool for the test's own SQL.
pub async fn private_postgres() -> (PrivatePostgres, PgPool, Env) {
    let pg = PrivatePostgres::start().await.unwrap();
    pg.create_database("app").await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg.url("app"))
        .await
        .unwrap();
    shared::db::MIGRATOR.run(&pool).await.unwrap();
    let env = Env::new(pg.url("app"));
    (pg, pool, env)
}

/// Whether `page` (a feed page or a detail) shows `id` with `title`.
pub fn shows(page: &Value, id: Uuid, title: &str) -> bool {
    if page["id"] == json!(id.to_string()) {
        return page["title"] == json!(title);
    }
    result(page, id).is_some_and(|v| v["title"] == json!(title))
}

/// The outbox's newest seq and the invalidator's checkpoint.
pub async fn seq_and_checkpoint(pool: &PgPool) -> (i64, i64) {
    let newest: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from video_events")
        .fetch_one(pool)
        .await
        .unwrap();
    let checkpoint: Option<i64> =
        sqlx::query_scalar("select seq from invalidator_checkpoints where name = 'default'")
            .fetch_optional(pool)
            .await
            .unwrap();
    (newest, checkpoint.unwrap_or(0))
}

impl Env {
    /// The write API with extra (or overriding) settings.
    pub fn write_api_with(&self, extra: &[(&'static str, String)]) -> Proc {
        let mut envs = self.envs();
        envs.push(("ADMIN_TOKENS", ADMIN_TOKEN.into()));
        envs.extend_from_slice(extra);
        Proc::start("write-api", &["serve"], &envs)
    }
}
