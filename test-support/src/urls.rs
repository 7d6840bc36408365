//! Where the servers of the test run are: `DATABASE_URL` and `REDIS_URL`
//! (scripts/test may start private ones on other ports), never a hard-coded
//! port.

use sqlx::{postgres::PgConnectOptions, PgPool};

/// A URL for the database behind a `#[sqlx::test]` pool, to start a service
/// or a second connection against it. Built from the pool's own options, so it
/// follows wherever `DATABASE_URL` pointed.
pub fn database_url(pool: &PgPool) -> String {
    database_url_of(&pool.connect_options())
}

/// A URL for the database `options` connect to (a `#[sqlx::test]` taking
/// `PgConnectOptions` gets its database this way).
pub fn database_url_of(options: &PgConnectOptions) -> String {
    let user = options.get_username();
    let port = options.get_port();
    let database = options.get_database().unwrap_or("postgres");
    match options.get_socket() {
        // A socket directory goes in `host=`: a URL with a user but no host
        // is not a valid URL.
        Some(socket) => format!(
            "postgres:///{database}?host={}&port={port}&user={user}",
            socket.display()
        ),
        None => format!("postgres://{user}@{}:{port}/{database}", options.get_host()),
    }
}

/// The Redis the tests share: `REDIS_URL` (scripts/test sets it, starting a
/// private Redis when none answers). Unset is a failure, as an unset
/// `DATABASE_URL` is for `#[sqlx::test]`: a guessed port could be another
/// Redis than the one the run set up.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .unwrap_or_else(|_| panic!("REDIS_URL is not set: run scripts/test, or export it"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sqlx::{Connection, PgConnection};

    use super::*;

    #[sqlx::test]
    async fn database_url_reaches_the_pools_database(pool: PgPool) {
        let url = database_url(&pool);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let name: String = sqlx::query_scalar("select current_database()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(Some(name.as_str()), pool.connect_options().get_database());
    }
}
