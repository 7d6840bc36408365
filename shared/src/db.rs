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
    let options = connect_options(&args.database_url)?.application_name(application_name);
    Ok(PgPoolOptions::new()
        .max_connections(args.database_max_connections)
        .min_connections(0)
        .acquire_timeout(args.acquire_timeout())
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// Parses any libpq connection URL, including the socket-directory form
/// `postgres://user@/db?host=/var/run/postgresql`, whose empty host the URL
/// parser under sqlx refuses: the `host` parameter overrides it anyway, so a
/// placeholder host is put in its place.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url).or_else(|error| {
        let has_host_param = url
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("host=")));
        match url.split_once("://") {
            Some((scheme, rest)) if has_host_param => {
                let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
                if authority.ends_with('@') || authority.is_empty() {
                    return PgConnectOptions::from_str(&format!(
                        "{scheme}://{authority}localhost{path}"
                    ));
                }
                Err(error)
            }
            _ => Err(error),
        }
    })
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
            db.code().is_some_and(|c| {
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
            })
        }
        _ => false,
    }
}

/// Whether an error means the connection it ran on had been closed under it
/// (its backend terminated, or the socket reset) while Postgres itself may be
/// fine: the next connection from the pool is worth trying at once.
pub fn is_stale_connection(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ),
        // 57P01 admin shutdown (pg_terminate_backend), 57P02 crash shutdown.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

/// Whether an error is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_directory_urls_parse() {
        for url in [
            "postgres://postgres@/app?host=/var/run/postgresql",
            "postgres:///app?host=/var/run/postgresql&user=postgres",
            "postgresql://postgres@127.0.0.1:5432/app",
        ] {
            assert!(connect_options(url).is_ok(), "{url}");
        }
        let options = connect_options("postgres://u@/app?host=/tmp/sock").unwrap();
        assert_eq!(options.get_database(), Some("app"));
        assert_eq!(options.get_username(), "u");
        assert!(connect_options("not a url").is_err());
    }
}
