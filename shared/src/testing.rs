//! Private Postgres and Redis servers for fault tests (enabled by the
//! `testing` feature; dev-dependency only). (Stub: API fixed, being implemented.)
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
//! wait_until(Duration::from_secs(5), || async { cond }).await // true if cond became true in time
//! ```
//! Every server is stopped when its handle is dropped.
