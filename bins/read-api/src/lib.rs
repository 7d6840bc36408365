//! `read-api`: the public, cached, paginated video feed (the query side).
//!
//! Every response is served from Redis when it can be (one script round trip),
//! otherwise from Postgres through a single-flight, bounded query whose result
//! is stored under the cache generation read before the query. Redis is
//! optional: without it, or while it misbehaves, requests bypass the cache.

mod cache;
pub mod config;
mod error;
mod flight;
mod openapi;
pub mod read_through;
mod readiness;
mod response;
mod videos;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    http::{header, StatusCode},
    Router,
};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::timeout::TimeoutLayer;

pub use crate::{
    cache::CacheSetupError,
    config::Config,
    read_through::{Hooks, StoreHook},
};
use crate::{
    cache::{Cache, EpochSync},
    read_through::{Limits, ReadThrough},
};

#[derive(Clone)]
pub struct AppState {
    db: PgPool,
    read_through: Arc<ReadThrough>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid database settings: {0}")]
    Database(#[source] sqlx::Error),
    #[error(transparent)]
    Cache(#[from] CacheSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-serve read API.
pub struct App {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    read_through: Arc<ReadThrough>,
    grace: std::time::Duration,
    /// Stops the background epoch refresher with the app.
    _tasks: DropGuard,
}

/// Builds the app and binds `LISTEN_ADDR` (port 0: any free port). Neither
/// Postgres nor Redis needs to be up: the pool connects lazily and the cache
/// starts in bypass until Redis answers.
pub async fn build(config: &Config, hooks: Hooks) -> Result<App, StartError> {
    // Installs the metrics recorder before the read path registers its counters.
    let ops = shared::http::ops_router();
    let db = shared::db::pool(&config.database, "read-api").map_err(StartError::Database)?;

    let tasks = CancellationToken::new();
    // An empty REDIS_URL is how an operator switches the cache off, too.
    let redis_url = config
        .redis_url
        .as_deref()
        .filter(|url| !url.trim().is_empty());
    let cache = match redis_url {
        Some(url) => {
            let cache = Arc::new(Cache::new(
                config,
                url,
                hooks.after_generation_read.clone(),
            )?);
            cache.spawn_tracking(tasks.clone());
            let mut sync = EpochSync::default();
            // One bounded attempt now, so a healthy Redis caches from the first request.
            cache.refresh_epoch(&mut sync).await;
            tokio::spawn(Arc::clone(&cache).watch_epoch(sync, tasks.clone()));
            Some(cache)
        }
        None => {
            tracing::warn!("REDIS_URL not set: serving without a cache");
            None
        }
    };
    let limits = Limits {
        concurrency: config.database_concurrency(),
        wait: config.database.acquire_timeout(),
        query_timeout: config.database_query_timeout(),
        request_timeout: config.http.request_timeout(),
    };
    let read_through = Arc::new(ReadThrough::new(cache, &limits, hooks));
    let state = AppState {
        db,
        read_through: Arc::clone(&read_through),
    };

    // The cached routes bound their own I/O (see `read_through`), so that an
    // in-process hit pays for no timer; the others get the request timeout.
    let timeout = || {
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.http.request_timeout())
    };
    let (v1, document) = openapi::api();
    let api = v1
        .merge(
            readiness::router()
                .merge(openapi::router(&document))
                .layer(timeout()),
        )
        .with_state(state)
        .merge(ops.layer(timeout()));
    let router = shared::http::with_read_layers(api, &[header::ETAG, response::X_CACHE]);

    let listener = shared::http::bind(&config.listen_addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen_addr.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen_addr.clone(),
        source,
    })?;
    Ok(App {
        listener,
        router,
        addr,
        read_through,
        grace: config.http.shutdown_grace(),
        _tasks: tasks.drop_guard(),
    })
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters tests read (single flight).
    pub fn stats(&self) -> Stats {
        Stats(Arc::clone(&self.read_through))
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        shared::http::serve(self.listener, self.router, shutdown, self.grace).await
    }
}

/// A live view of the read path's counters.
#[derive(Clone)]
pub struct Stats(Arc<ReadThrough>);

impl Stats {
    /// Database queries this process ran for cache misses and bypasses.
    pub fn queries(&self) -> u64 {
        self.0.queries()
    }

    /// Requests that waited for another request's query instead.
    pub fn joined(&self) -> u64 {
        self.0.joined()
    }
}
