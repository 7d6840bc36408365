//! Test support for the whole workspace, kept out of the production crates
//! (as crates.io keeps `crates_io_test_db`): a dev-dependency of every package
//! with tests.
//!
//! ```ignore
//! let mut redis = PrivateRedis::start().await?;   // redis-server on a free port
//! redis.url();                                    // redis://127.0.0.1:PORT
//! redis.pause()?; redis.resume()?;                // SIGSTOP / SIGCONT
//! redis.stop().await?; redis.restart().await?;    // same port, empty data
//! let mut pg = PrivatePostgres::start().await?;   // initdb + pg_ctl (as `postgres` when root)
//! pg.url("postgres");                             // postgres://postgres@127.0.0.1:PORT/postgres
//! pg.create_database("app").await?;               // then run shared::db::MIGRATOR on it yourself
//! pg.stop().await?; pg.restart().await?;          // same port and data
//! let mut c = PrivateRedisCluster::start().await?; // 3 masters, no replicas
//! c.url(); c.master_of("k{tag}").await?;          // comma-separated REDIS_URL; which master serves a key
//! c.stop(1).await?; c.restart(1).await?;          // one master down; back empty, same port and slots
//! let mut c = PrivateRedisCluster::start_with_replicas().await?; // 3 masters + 3 replicas, for failovers
//! wait_until(Duration::from_secs(5), || async { cond }).await // true if cond became true in time
//! database_url(&pool); redis_url();               // the servers the test run uses (DATABASE_URL, REDIS_URL)
//! let keys = RedisKeysGuard::fresh(redis_url(), "e2e"); // a new key prefix, deleted on drop
//! ```
//! Every server is stopped when its handle is dropped.
//!
//! The private servers are the machine's own `redis-server` and Postgres
//! binaries, so a test can kill, freeze and restart them without touching the
//! shared servers other tests use. Every wait is bounded: a server that does
//! not come up in [`START_TIMEOUT`] is an error, never a hung test.

mod cluster;
mod cluster_replicas;
pub mod http;
mod keys;
mod postgres;
pub mod process;
mod redis_server;
mod server;
mod urls;
mod wait;
#[cfg(feature = "write-api")]
pub mod write_api;

pub use cluster::PrivateRedisCluster;
pub use cluster_replicas::REPLICA_CLUSTER_NODE_TIMEOUT;
pub use keys::{delete_keys, key_prefix, RedisKeysGuard};
pub use postgres::PrivatePostgres;
pub use redis_server::PrivateRedis;
pub use server::{free_port, ServerError, START_TIMEOUT};
pub use urls::{database_url, database_url_of, redis_url};
pub use wait::wait_until;
