//! The database schema at start: `serve` answers at once and applies pending
//! migrations in the background, retrying with backoff while Postgres is down,
//! so a process started before Postgres recovers by itself.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use shared::Problem;
use sqlx::{migrate::MigrateError, PgPool};
use tokio_util::sync::CancellationToken;

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Whether the migrations have been applied.
#[derive(Debug, Clone, Default)]
pub struct SchemaStatus(Arc<AtomicBool>);

impl SchemaStatus {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Applies `shared::db::MIGRATOR` until it succeeds (or shutdown), warms the
/// write path's connections, then marks the schema ready.
pub fn migrate_in_background(pool: PgPool, shutdown: CancellationToken) -> SchemaStatus {
    let status = SchemaStatus::default();
    let ready = status.clone();
    tokio::spawn(async move {
        let mut delay = FIRST_RETRY;
        loop {
            match shared::db::MIGRATOR.run(&pool).await {
                Ok(()) => {
                    tracing::info!("database schema is up to date");
                    // Before `/v1` answers, so no request pays for a cold backend.
                    crate::warmup::warm(&pool).await;
                    ready.0.store(true, Ordering::Release);
                    return;
                }
                Err(error) if is_transient(&error) => {
                    tracing::warn!(%error, retry_in = ?delay, "postgres unavailable; retrying the migrations");
                }
                // Not a connection problem (e.g. a schema made outside the
                // migrations): keep trying, so an operator's fix is picked up.
                Err(error) => {
                    tracing::error!(%error, retry_in = ?delay, "migrations failed; retrying");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
    });
    status
}

fn is_transient(error: &MigrateError) -> bool {
    matches!(error, MigrateError::Execute(e) if shared::db::is_unavailable(e))
}

/// 503 for `/v1` until the schema is ready.
pub async fn require_ready(
    State(status): State<SchemaStatus>,
    request: Request,
    next: Next,
) -> Response {
    if status.is_ready() {
        next.run(request).await
    } else {
        Problem::unavailable("The database is not ready yet; retry shortly.").into_response()
    }
}
