//! Starts the real read API on a free port against a test database and the
//! shared Redis (under a random key prefix), and inserts videos with plain SQL.

// Each test binary uses a part of these helpers.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::FutureExt;
use read_api::{App, Config, Hooks, Stats, StoreHook};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::Value;
use shared::cache::{KeySpace, Scope};
use sqlx::PgPool;
use test_support::{key_prefix, RedisKeysGuard};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use test_support::{database_url, wait_until};

/// The shared Redis of the test run (`REDIS_URL`).
pub fn redis() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(test_support::redis_url)
}

pub fn random_prefix() -> String {
    key_prefix("test")
}

/// A config whose every dependency is given explicitly, so the developer's
/// environment (`DATABASE_URL`, `REDIS_URL`) cannot leak in.
pub fn config(database_url: &str, redis_url: Option<&str>, prefix: &str) -> Config {
    let mut config = Config::try_parse_from(["read-api", "--database-url", database_url]).unwrap();
    config.listen_addr = "127.0.0.1:0".into();
    config.redis_url = redis_url.map(str::to_owned);
    config.cache_keys.redis_key_prefix = prefix.to_owned();
    config.database.database_url = database_url.to_owned();
    // Generous Redis timeouts: on a loaded machine a Redis call may take
    // longer than the production 50 ms, and a test about something else
    // (single flight, the stale-set race) must not turn into a BYPASS by
    // luck. The fault tests set their own.
    config.redis_timeout_ms = 2_000;
    config.redis_connect_timeout_ms = 2_000;
    config
}

pub struct TestApp {
    pub base: String,
    /// Does not decompress, so tests see what the server sent.
    pub client: reqwest::Client,
    pub stats: Stats,
    pub keys: KeySpace,
    pub redis_url: Option<String>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Deletes the prefix's keys (the epoch has no TTL) when the app goes,
    /// failing test or not.
    _keys: Option<RedisKeysGuard>,
}

impl TestApp {
    pub async fn start(pool: &PgPool) -> Self {
        Self::start_with(
            config(&database_url(pool), Some(redis()), &random_prefix()),
            Hooks::default(),
        )
        .await
    }

    pub async fn start_with(config: Config, hooks: Hooks) -> Self {
        let app: App = read_api::build(&config, hooks).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let stats = app.stats();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.serve(shutdown.clone()));
        Self {
            base,
            client: reqwest::Client::builder()
                .no_gzip()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stats,
            keys: KeySpace::new(&config.cache_keys.redis_key_prefix).unwrap(),
            redis_url: config.redis_url.clone(),
            shutdown,
            server,
            _keys: config.redis_url.as_ref().map(|url| {
                RedisKeysGuard::new(url.clone(), config.cache_keys.redis_key_prefix.clone())
            }),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// What the invalidator does after a write: purge the affected scopes.
    pub async fn purge(&self, scopes: &[Scope]) {
        let url = self.redis_url.as_deref().unwrap();
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        shared::cache::purge(&mut conn, &self.keys, scopes)
            .await
            .unwrap();
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn x_cache(&self) -> &str {
        self.header("x-cache")
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    /// Asserts a problem+json error with this status.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), "application/problem+json");
        assert_eq!(self.json()["status"], status);
    }
}

/// A video to insert; defaults are a published, untagged video.
#[derive(Clone)]
pub struct NewVideo {
    pub id: Uuid,
    pub title: String,
    pub tags: Vec<String>,
    pub view_count: i64,
    pub status: &'static str,
    pub published_at: Option<DateTime<Utc>>,
}

impl NewVideo {
    pub fn published(published_at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            title: "A look".into(),
            tags: Vec::new(),
            view_count: 0,
            status: "published",
            published_at: Some(published_at),
        }
    }

    pub fn draft() -> Self {
        Self {
            status: "draft",
            published_at: None,
            ..Self::published(Utc::now())
        }
    }

    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub fn views(mut self, views: i64) -> Self {
        self.view_count = views;
        self
    }

    pub async fn insert(self, pool: &PgPool) -> Uuid {
        sqlx::query(
            "insert into videos (id, title, video_url, tags, view_count, status, published_at)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.id)
        .bind(&self.title)
        .bind(format!("https://cdn.example.com/v/{}.mp4", self.id))
        .bind(&self.tags)
        .bind(self.view_count)
        .bind(self.status)
        .bind(self.published_at)
        .execute(pool)
        .await
        .unwrap();
        self.id
    }
}

/// `minutes` minutes before a fixed instant, so orders are predictable.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        - chrono::Duration::minutes(minutes)
}

/// Updates a video's title with plain SQL (its triggers run; no purge).
pub async fn set_title(pool: &PgPool, id: Uuid, title: &str) {
    sqlx::query("update videos set title = $2 where id = $1")
        .bind(id)
        .bind(title)
        .execute(pool)
        .await
        .unwrap();
}

/// Holds the first call of a hook: it reports the call's key on `reached`
/// and waits for [`release`](Gate::release) (at most 20 s: a broken test
/// must not hang).
pub struct Gate {
    reached: mpsc::UnboundedReceiver<String>,
    release: Option<oneshot::Sender<()>>,
}

/// A hook that holds its first call, and the gate controlling it.
pub fn gate() -> (StoreHook, Gate) {
    let (reached_tx, reached) = mpsc::unbounded_channel();
    let (release, release_rx) = oneshot::channel::<()>();
    let held = Arc::new(Mutex::new(Some(release_rx)));
    let hook: StoreHook = Arc::new(move |key: String| {
        let first = held.lock().unwrap().take();
        let reached = reached_tx.clone();
        async move {
            if let Some(release) = first {
                reached.send(key).unwrap();
                let _ = tokio::time::timeout(Duration::from_secs(20), release).await;
            }
        }
        .boxed()
    });
    (
        hook,
        Gate {
            reached,
            release: Some(release),
        },
    )
}

impl Gate {
    /// The key of the held call, once a call has reached the hook.
    pub async fn wait_reached(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.reached.recv())
            .await
            .expect("a call reached the hook")
            .unwrap()
    }

    pub fn release(&mut self) {
        self.release.take().unwrap().send(()).unwrap();
    }
}
