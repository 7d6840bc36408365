//! The invalidator against a real Postgres (one database per test) and a real
//! Redis (one key prefix per test).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod progress;
mod scopes;
mod service;

use std::time::Duration;

use clap::Parser;
use invalidator::{checkpoint, outbox, Cache, Config, Invalidator};
use redis::AsyncCommands;
use shared::cache::Scope;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use test_support::{redis_url, wait_until, RedisKeysGuard};
use tokio::task::JoinHandle;

fn prefix() -> String {
    test_support::key_prefix("test:inv")
}

struct Harness {
    pool: PgPool,
    prefix: String,
    cache: Cache,
    redis: redis::aio::MultiplexedConnection,
    /// The epoch, the high-water mark and the marks have no TTL: deleted
    /// when the test ends, failing or not.
    _keys: RedisKeysGuard,
}

impl Harness {
    async fn new(pool: PgPool) -> Self {
        let prefix = prefix();
        let cache = Cache::new(&redis_url(), &prefix, Duration::from_secs(2)).unwrap();
        let redis = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        Self {
            pool,
            _keys: RedisKeysGuard::new(redis_url(), prefix.clone()),
            prefix,
            cache,
            redis,
        }
    }

    fn invalidator(&self) -> Invalidator {
        Invalidator::new(self.pool.clone(), self.cache.clone(), "default", 10_000)
    }

    async fn generation(&mut self, scope: &Scope) -> Option<String> {
        self.redis
            .get(self.cache.keys().generation(scope))
            .await
            .unwrap()
    }

    async fn epoch(&mut self) -> Option<String> {
        self.redis.get(self.cache.keys().epoch()).await.unwrap()
    }

    /// Gives each scope a known generation, to see later which were replaced.
    async fn mark(&mut self, scopes: &[Scope]) {
        for scope in scopes {
            let _: () = self
                .redis
                .set(self.cache.keys().generation(scope), "marked")
                .await
                .unwrap();
        }
    }

    /// Whether `scope`'s generation changed since `mark` (a future that
    /// borrows nothing, for `wait_until`).
    fn was_purged(&self, scope: &Scope) -> impl std::future::Future<Output = bool> + 'static {
        let mut redis = self.redis.clone();
        let key = self.cache.keys().generation(scope);
        async move {
            redis
                .get::<_, Option<String>>(key)
                .await
                .unwrap()
                .as_deref()
                != Some("marked")
        }
    }

    /// The scopes of `scopes` whose generation changed since `mark`.
    async fn purged(&mut self, scopes: &[Scope]) -> Vec<Scope> {
        let mut purged = Vec::new();
        for scope in scopes {
            if self.generation(scope).await.as_deref() != Some("marked") {
                purged.push(scope.clone());
            }
        }
        purged
    }

    async fn checkpoint(&self) -> i64 {
        checkpoint::load(&self.pool, "default").await.unwrap().seq
    }

    async fn newest_seq(&self) -> i64 {
        outbox::newest_seq(&self.pool).await.unwrap()
    }
}

async fn insert(pool: &PgPool, status: &str, tags: &[&str]) -> Uuid {
    let id = Uuid::now_v7();
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    sqlx::query(
        "insert into videos (id, title, video_url, tags, status, published_at)
         values ($1, 'A title', 'https://cdn.example.com/v.mp4', $2, $3,
                 case when $3 = 'published' then now() end)",
    )
    .bind(id)
    .bind(&tags)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn exec(pool: &PgPool, sql: &str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(pool).await.unwrap();
}

fn tag(t: &str) -> Scope {
    Scope::Tag(t.into())
}
