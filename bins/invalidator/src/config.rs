//! The invalidator's settings: one struct, parsed once in `main`.

use std::time::Duration;

use shared::config::{CacheKeyArgs, DatabaseArgs, HttpArgs, TelemetryArgs};

/// Consumes the `video_events` outbox and purges the cache scopes each change
/// affects.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "invalidator", version, about)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub cache_keys: CacheKeyArgs,

    /// Redis URL; the database number (`redis://host:6379/1`) is honoured. A
    /// comma-separated list of node URLs (`redis://a:7000,redis://b:7000`; one
    /// seed: end it with a comma) selects Redis Cluster.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: String,

    /// Address of the operational endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8082")]
    pub listen_addr: String,

    /// Name of this invalidator's checkpoint. Invalidators sharing a name share
    /// a checkpoint (and may run at once); give each deployment its own.
    #[arg(long, env = "INVALIDATOR_NAME", default_value = "default")]
    pub invalidator_name: String,

    /// Most events read, purged and checkpointed together.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 10_000,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,

    /// Reads the outbox this often even when no notification arrives (a lost
    /// NOTIFY, or a LISTEN connection that died silently).
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 5_000)]
    pub poll_interval_ms: u64,

    /// How often Redis' run_id is checked, to replace the cache epoch after a
    /// Redis restart (possibly from an old snapshot).
    #[arg(long, env = "EPOCH_CHECK_INTERVAL_MS", default_value_t = 1_000)]
    pub epoch_check_interval_ms: u64,

    /// Timeout of every Redis connect and command. A purge is a few small
    /// SETs (about a millisecond), so this bounds how long a hung Redis
    /// connection can hold back freshness.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,

    /// Cap of the exponential backoff between retries after a Postgres or Redis
    /// failure.
    #[arg(long, env = "RETRY_MAX_DELAY_MS", default_value_t = 5_000)]
    pub retry_max_delay_ms: u64,

    /// Outbox events older than this, and passed by every checkpoint, are
    /// deleted.
    #[arg(long, env = "OUTBOX_RETENTION_HOURS", default_value_t = 168)]
    pub outbox_retention_hours: u32,

    /// How often the outbox is pruned.
    #[arg(long, env = "PRUNE_INTERVAL_SECONDS", default_value_t = 300)]
    pub prune_interval_seconds: u64,
}

impl Config {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn epoch_check_interval(&self) -> Duration {
        Duration::from_millis(self.epoch_check_interval_ms.max(1))
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }

    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval_seconds.max(1))
    }
}
