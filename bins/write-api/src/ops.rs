//! This binary's own operational endpoints: `/readyz`, `/openapi.json` and
//! `/docs` (Swagger UI, its assets compiled in); `/healthz` and `/metrics`
//! come from `shared::http::ops_router`.

use std::time::Duration;

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use shared::http::Readiness;
use sqlx::PgPool;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::schema::SchemaStatus;

/// How long `/readyz` waits for Postgres to answer `select 1`.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Ops {
    pool: PgPool,
    schema: SchemaStatus,
}

pub fn router(pool: PgPool, schema: SchemaStatus, openapi_json: String) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .with_state(Ops { pool, schema })
        .route(
            "/openapi.json",
            get(move || {
                let spec = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], spec).into_response() }
            }),
        )
        .merge(Router::from(
            SwaggerUi::new("/docs").config(Config::from("/openapi.json")),
        ))
        .merge(shared::http::ops_router())
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let ping = sqlx::query_scalar!("select 1 as one").fetch_one(&ops.pool);
    let postgres = match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
    };
    let schema = if ops.schema.is_ready() {
        Ok(())
    } else {
        Err("migrations not applied yet".to_owned())
    };
    Readiness::new()
        .required("postgres", postgres)
        .required("schema", schema)
        .into_response()
}
