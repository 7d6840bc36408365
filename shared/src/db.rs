//! The Postgres pool and the migrations.

use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use std::{str::FromStr, time::Duration};

use crate::config::DatabaseArgs;

/// The schema, owned by the write side and embedded in every binary and test.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A pool that connects lazily, so a process starts (and answers 503) while
/// Postgres is down, and whose acquire timeout bounds how long a request waits.
pub fn pool(args: &DatabaseArgs, application_name: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(&args.database_url)?.application_name(application_name);
    Ok(PgPoolOptions::new()
        .max_connections(args.database_max_connections)
        .min_connections(0)
        .acquire_timeout(args.acquire_timeout())
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// Whether an error means "Postgres is unreachable right now" (answer 503 and
/// retry) rather than a bug or a bad request.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            // Class 08: connection exceptions; 57P01-03: admin shutdown, crash
            // shutdown, cannot connect now (starting up or shutting down).
            db.code()
                .is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// Whether an error is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
