use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on the ops address: {0}")]
    Bind(#[from] std::io::Error),
}

impl Error {
    /// A pooled connection that was closed under us; another one may work now.
    pub(crate) fn is_stale_connection(&self) -> bool {
        matches!(self, Self::Postgres(e) if shared::db::is_stale_connection(e))
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Counts the error against the dependency that failed.
    pub(crate) fn record(&self) {
        match self {
            Self::Postgres(_) => crate::stats::postgres_error(),
            Self::Redis(_) => crate::stats::redis_error(),
            Self::Config(_) | Self::Bind(_) => {}
        }
    }
}
