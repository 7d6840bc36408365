//! The read API's settings: one struct, parsed once in `main` and passed down.

use std::time::Duration;

use shared::config::{CacheKeyArgs, DatabaseArgs, HttpArgs, TelemetryArgs};

/// Public, cached, paginated video feed.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "read-api", version, about)]
pub struct Config {
    /// Address to listen on (port 0: any free port; the bound one is logged).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// Redis URL (`redis://host:6379/1` selects database 1). Without it the
    /// API serves every request from Postgres (`X-Cache: BYPASS`). A
    /// comma-separated list of node URLs (`redis://a:7000,redis://b:7000`; one
    /// seed: end it with a comma) selects Redis Cluster.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    #[command(flatten)]
    pub cache_keys: CacheKeyArgs,

    /// Safety-net TTL of every cache entry; invalidation normally replaces
    /// entries long before it.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 300)]
    pub cache_ttl_seconds: u64,

    /// Memory for in-process copies of cache entries (0: none, and no
    /// tracking connection). A copy is served only while Redis' pushed
    /// invalidations (a `CLIENT TRACKING` connection on a 250 ms heartbeat
    /// lease) vouch for its generation, or after a `GET` confirmed it.
    #[arg(long, env = "LOCAL_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub local_cache_bytes: usize,

    /// Upper bound of every Redis call; past it the request is served from
    /// Postgres as if Redis were absent.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 50)]
    pub redis_timeout_ms: u64,

    /// How long one attempt to (re)connect to Redis may take.
    #[arg(long, env = "REDIS_CONNECT_TIMEOUT_MS", default_value_t = 250)]
    pub redis_connect_timeout_ms: u64,

    /// Consecutive failed Redis calls that open the circuit breaker.
    #[arg(long, env = "REDIS_BREAKER_FAILURES", default_value_t = 3)]
    pub redis_breaker_failures: u32,

    /// How long an open breaker skips Redis before one request probes it again.
    #[arg(long, env = "REDIS_COOLOFF_MS", default_value_t = 1000)]
    pub redis_cooloff_ms: u64,

    /// Upper bound of the database work of one cache miss; past it: 503.
    #[arg(long, env = "DATABASE_QUERY_TIMEOUT_MS", default_value_t = 5000)]
    pub database_query_timeout_ms: u64,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    #[command(flatten)]
    pub http: HttpArgs,
}

impl Config {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn redis_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_connect_timeout_ms)
    }

    pub fn redis_cooloff(&self) -> Duration {
        Duration::from_millis(self.redis_cooloff_ms)
    }

    pub fn database_query_timeout(&self) -> Duration {
        Duration::from_millis(self.database_query_timeout_ms)
    }

    /// Database work allowed at once: below the pool size, so that misses of
    /// cache-busting traffic queue here (and get a quick 503) while `/readyz`
    /// still finds a connection.
    pub fn database_concurrency(&self) -> usize {
        usize::try_from(
            self.database
                .database_max_connections
                .saturating_sub(1)
                .max(1),
        )
        .unwrap_or(1)
    }
}
