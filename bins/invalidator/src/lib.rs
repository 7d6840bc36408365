//! `invalidator`: follows the `video_events` outbox and purges, in Redis, the
//! cache scopes each change affects. How and why: README.md, "The invalidator".

pub mod cache;
pub mod checkpoint;
mod config;
mod error;
pub mod listener;
mod ops;
pub mod outbox;
pub mod prune;
mod retry;
mod stats;
mod worker;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use cache::Cache;
pub use config::Config;
pub use error::Error;
pub use worker::{Invalidator, Timing};

/// Runs the invalidator and its ops endpoints until `shutdown`; the batch in
/// hand is finished first. Logs `listening addr=...` once the ops address is
/// bound (port 0 works).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let pool = shared::db::pool(&config.database, "invalidator")?;
    let cache = Cache::new(
        &config.redis_url,
        &config.cache_keys.redis_key_prefix,
        config.redis_timeout(),
    )?;
    let wake = Arc::new(Notify::new());
    let listener = listener::Listener::new(
        &config.database.database_url,
        Arc::clone(&wake),
        config.retry_max_delay(),
    )?;

    let app = shared::http::with_common_layers(
        ops::router(listener.status(), cache.clone()),
        config.http.request_timeout(),
    );
    // After the router: building it installs the recorder that keeps these.
    stats::describe();
    let tcp = shared::http::bind(&config.listen_addr).await?;
    let server = tokio::spawn(shared::http::serve(
        tcp,
        app,
        shutdown.clone(),
        config.http.shutdown_grace(),
    ));
    let listen = tokio::spawn(listener.run(shutdown.clone()));
    let pruner = tokio::spawn(prune::run(
        pool.clone(),
        std::time::Duration::from_secs(u64::from(config.outbox_retention_hours) * 3600),
        config.prune_interval(),
        shutdown.clone(),
    ));

    let timing = Timing {
        poll_interval: config.poll_interval(),
        epoch_interval: config.epoch_check_interval(),
        retry_max_delay: config.retry_max_delay(),
    };
    Invalidator::new(
        pool.clone(),
        cache,
        config.invalidator_name,
        config.batch_size,
    )
    .with_shutdown(shutdown.clone())
    .run(wake, timing)
    .await;

    // The worker only returns on shutdown; the others follow the same token.
    let (served, _, _) = tokio::join!(server, listen, pruner);
    pool.close().await;
    match served {
        Ok(result) => result.map_err(Error::from),
        Err(e) => {
            tracing::error!(error = %e, "ops server task failed");
            Ok(())
        }
    }
}
