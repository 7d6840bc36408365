//! The read path every cached endpoint takes: an in-process hit vouched for by
//! Redis' pushed invalidations (no I/O, no timer), else one Redis round trip;
//! on a miss one shared, bounded database query whose response is stored
//! under the generation read *before* the query (so a purge that happens
//! meanwhile orphans it: guarantee 2). Everything past the in-process hit is
//! bounded by the request timeout.
//!
//! Past the in-process hit, DEBUG spans (`cache_lookup`, `db_query`,
//! `cache_store`, inside the request's span) show where a slow request spent
//! its time; the in-process hit opens none, and a span whose level is not
//! recorded costs a level check.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use metrics::Counter;
use shared::cache::{CachedResponse, Scope};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    cache::{Cache, Lookup},
    error::ApiError,
    flight::Flights,
};

/// Called with the entry key between a miss' query and its store.
pub type StoreHook = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// Points where tests can hold a request to make races deterministic. Always
/// compiled, never set in production.
#[derive(Clone, Default)]
pub struct Hooks {
    pub before_store: Option<StoreHook>,
    /// Called with the scope's generation key between a lookup's Redis reply
    /// and the moment the in-process layer adopts the generation it read.
    pub after_generation_read: Option<StoreHook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

pub struct Served {
    pub entry: Arc<CachedResponse>,
    pub status: CacheStatus,
}

pub struct ReadThrough {
    cache: Option<Arc<Cache>>,
    flights: Arc<Flights>,
    gate: Arc<Semaphore>,
    gate_wait: Duration,
    query_timeout: Duration,
    request_timeout: Duration,
    queries: AtomicU64,
    hooks: Hooks,
    counters: Counters,
}

/// Registered once, so the hit path does not look metrics up by name.
struct Counters {
    hit: Counter,
    hit_local: Counter,
    hit_redis: Counter,
    miss: Counter,
    bypass: Counter,
    db_queries: Counter,
}

pub struct Limits {
    pub concurrency: usize,
    pub wait: Duration,
    pub query_timeout: Duration,
    /// Bounds everything but an in-process hit (408 past it).
    pub request_timeout: Duration,
}

impl ReadThrough {
    pub fn new(cache: Option<Arc<Cache>>, limits: &Limits, hooks: Hooks) -> Self {
        let result = |r: &'static str| metrics::counter!("cache_requests_total", "result" => r);
        let layer = |l: &'static str| metrics::counter!("cache_hits_total", "layer" => l);
        Self {
            cache,
            flights: Arc::default(),
            gate: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            gate_wait: limits.wait,
            query_timeout: limits.query_timeout,
            request_timeout: limits.request_timeout,
            queries: AtomicU64::new(0),
            hooks,
            counters: Counters {
                hit: result("hit"),
                hit_local: layer("local"),
                hit_redis: layer("redis"),
                miss: result("miss"),
                bypass: result("bypass"),
                db_queries: metrics::counter!("db_queries_total"),
            },
        }
    }

    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// Database queries run by this process (one per miss that did not join
    /// another's).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Misses that shared another request's query.
    pub fn joined(&self) -> u64 {
        self.flights.joined()
    }

    /// Serves `request` of `scope` from the cache, or from `fetch` (the JSON
    /// body from Postgres), storing what it built. Errors are never cached.
    pub async fn serve<F, Fut>(
        self: &Arc<Self>,
        scope: &Scope,
        request: &str,
        fetch: F,
    ) -> Result<Served, ApiError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, ApiError>> + Send,
    {
        if let Some(entry) = self
            .cache
            .as_ref()
            .and_then(|c| c.local_hit(scope, request))
        {
            self.counters.hit.increment(1);
            self.counters.hit_local.increment(1);
            return Ok(Served {
                entry,
                status: CacheStatus::Hit,
            });
        }
        // Past the in-process hit a request does I/O, and what it logs
        // carries its id (the request span is not built for a hit).
        tokio::time::timeout(
            self.request_timeout,
            self.serve_checked(scope, request, fetch)
                .instrument(shared::http::request_span()),
        )
        .await
        .unwrap_or(Err(ApiError::Timeout))
    }

    /// [`Self::serve`] past the in-process layer: Redis, then Postgres.
    async fn serve_checked<F, Fut>(
        self: &Arc<Self>,
        scope: &Scope,
        request: &str,
        fetch: F,
    ) -> Result<Served, ApiError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, ApiError>> + Send,
    {
        let lookup = match &self.cache {
            Some(cache) => {
                cache
                    .lookup(scope, request)
                    .instrument(tracing::debug_span!("cache_lookup", %scope, request))
                    .await
            }
            None => Lookup::Bypass,
        };
        let (flight_key, fence) = match lookup {
            Lookup::Hit(entry) => {
                self.counters.hit.increment(1);
                self.counters.hit_redis.increment(1);
                return Ok(Served {
                    entry,
                    status: CacheStatus::Hit,
                });
            }
            // The key holds the generation, so a reader that read it after a
            // purge never joins a query that started before the purge.
            Lookup::Miss(fence) => (fence.entry_key.clone(), Some(fence)),
            Lookup::Bypass => (format!("bypass:{scope}:{request}"), None),
        };
        let status = if fence.is_some() {
            self.counters.miss.increment(1);
            CacheStatus::Miss
        } else {
            self.counters.bypass.increment(1);
            CacheStatus::Bypass
        };
        let this = Arc::clone(self);
        let work = async move {
            let body = this
                .query(fetch)
                .instrument(tracing::debug_span!("db_query"))
                .await?;
            let entry = Arc::new(CachedResponse::new(body));
            if let (Some(fence), Some(cache)) = (fence, &this.cache) {
                if let Some(hook) = &this.hooks.before_store {
                    hook(fence.entry_key.clone()).await;
                }
                let span = tracing::debug_span!("cache_store", key = %fence.entry_key);
                cache.store(fence, &entry).instrument(span).await;
            }
            Ok(entry)
        };
        let entry = self.flights.run(flight_key, work).await?;
        Ok(Served { entry, status })
    }

    /// Runs one query, if the database gate lets it in time, bounded in time.
    async fn query<F, Fut>(&self, fetch: F) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, ApiError>>,
    {
        let Ok(Ok(_permit)) = tokio::time::timeout(self.gate_wait, self.gate.acquire()).await
        else {
            tracing::warn!("too many database queries waiting; answering 503");
            return Err(ApiError::Unavailable);
        };
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.counters.db_queries.increment(1);
        tokio::time::timeout(self.query_timeout, fetch())
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(timeout = ?self.query_timeout, "database query timed out");
                Err(ApiError::Unavailable)
            })
    }
}
