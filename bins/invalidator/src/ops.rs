//! `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use axum::{response::IntoResponse, routing::get, Router};
use shared::http::{ops_router, Readiness};

use crate::{cache::Cache, listener::ListenStatus};

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Ready when the LISTEN connection and Redis both answer.
pub fn router(listen: ListenStatus, cache: Cache) -> Router {
    Router::new()
        .route(
            "/readyz",
            get(move || {
                let (listen, cache) = (listen.clone(), cache.clone());
                async move { readiness(&listen, &cache).await.into_response() }
            }),
        )
        .merge(ops_router())
}

async fn readiness(listen: &ListenStatus, cache: &Cache) -> Readiness {
    let (postgres, redis) = tokio::join!(listen.check(CHECK_TIMEOUT), async {
        match tokio::time::timeout(CHECK_TIMEOUT, cache.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    });
    Readiness::new()
        .required("postgres_listen", postgres)
        .required("redis", redis)
}
