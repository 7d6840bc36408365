//! `/openapi.json`: the read API described by its own handlers.

use axum::{http::header, routing::get, Router};
use bytes::Bytes;
use shared::{
    domain::{Status, Video},
    FieldError, Problem,
};
use tower_http::compression::CompressionLayer;
use utoipa::OpenApi;

use crate::{videos, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "read-api",
        license(name = "MIT"),
        description = "Public, cached, paginated video feed. Every error is application/problem+json."
    ),
    paths(videos::list, videos::detail),
    components(schemas(Video, Status, Problem, FieldError))
)]
struct ApiDoc;

pub fn router() -> Router<AppState> {
    // Rendered once; compressed here, where nothing is precompressed.
    let document = Bytes::from(ApiDoc::openapi().to_pretty_json().unwrap_or_default());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], document) }
        })
        .layer(CompressionLayer::new()),
    )
}
