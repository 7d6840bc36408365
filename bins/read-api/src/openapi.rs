//! `/openapi.json`: the read API described by its own handlers, made exact by
//! `shared::openapi`; and `/docs`, Swagger UI over it, its assets compiled in.

use axum::{http::header, routing::get, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use shared::{
    domain::{Status, Video},
    FieldError, Problem,
};
use tower_http::compression::CompressionLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::{videos, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "read-api",
        license(name = "MIT"),
        description = "Public, cached, paginated video feed. Every error is application/problem+json. The contract: docs/api.md."
    ),
    components(schemas(Video, Status, Problem, FieldError))
)]
struct ApiDoc;

/// The `/v1` routes and the document describing them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(videos::router())
        .split_for_parts()
}

/// The served document.
pub fn document(api: &utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(api).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot serialize the OpenAPI document");
        json!({})
    });
    shared::openapi::refine(&mut document);
    for (path, operation) in [("/v1/videos", "list"), ("/v1/videos/{id}", "detail")] {
        let ok = &mut document["paths"][path]["get"]["responses"]["200"];
        ok["headers"]["X-Cache"] = json!({
            "description": "HIT: from a cache layer; MISS: from Postgres, now cached; BYPASS: no usable Redis, from Postgres.",
            "schema": {"type": "string", "enum": ["HIT", "MISS", "BYPASS"]},
        });
        ok["headers"]["Cache-Control"] = json!({
            "description": "Clients may store, but must revalidate.",
            "schema": {"type": "string", "const": "no-cache"},
        });
        if operation == "list" {
            ok["links"] = json!({
                "GetVideo": {
                    "operationId": "detail",
                    "parameters": {"id": "$response.body#/results/0/id"},
                    "description": "The first video of the page",
                },
            });
        }
    }
    document
}

pub fn router(api: &utoipa::openapi::OpenApi) -> Router<AppState> {
    // Rendered once; compressed here, where nothing is precompressed.
    let document = Bytes::from(serde_json::to_vec_pretty(&document(api)).unwrap_or_default());
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            })
            .layer(CompressionLayer::new()),
        )
        .merge(docs())
}

/// `/docs`: Swagger UI over `/openapi.json`, served from the binary.
fn docs() -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").config(Config::from("/openapi.json")))
}
