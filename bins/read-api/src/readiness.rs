//! `/readyz`: Postgres is required; Redis is reported but optional, because
//! the API serves without it.

use std::time::Duration;

use axum::{extract::State, routing::get, Router};
use shared::http::Readiness;

use crate::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new().route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> Readiness {
    let postgres = match tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query!("select 1 as one").fetch_one(&state.db),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    };
    let redis = match state.read_through.cache() {
        Some(cache) => cache.ping().await,
        None => Err("not configured (REDIS_URL unset): serving without a cache".to_owned()),
    };
    Readiness::new()
        .required("postgres", postgres)
        .optional("redis", redis)
}
