//! `write-api seed --videos N`: bulk-loads realistic demo videos with COPY.
//! (Stub: implemented by the seed work; the signature is fixed.)

/// What a seed run did, for the command's summary line and the benchmarks.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub videos: u64,
    pub elapsed: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Loads `videos` demo videos; shows a progress bar when `show_progress`.
pub async fn run(pool: &sqlx::PgPool, videos: u64, show_progress: bool) -> Result<SeedReport, SeedError> {
    let _ = (pool, show_progress);
    Ok(SeedReport {
        videos,
        elapsed: std::time::Duration::ZERO,
    })
}
