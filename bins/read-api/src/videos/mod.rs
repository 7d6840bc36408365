//! `/v1/videos`: the public feed and the video detail.

mod queries;

use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    response::Response,
};
use shared::{
    cache::{request_key, Scope, DETAIL_REQUEST},
    domain::Video,
    feed::{FeedPage, FeedQuery},
    Problem,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{error::ApiError, response::respond, AppState};

/// The routes with their documentation: each route is in `/openapi.json` by construction.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
}

/// The public feed: published videos, page by page or by cursor.
#[utoipa::path(
    get,
    path = "/v1/videos",
    tag = "videos",
    params(
        ("page" = Option<u64>, Query, description = "Page number, >= 1 (default 1). Not with `cursor`."),
        ("page_size" = Option<u32>, Query, description = "1..=100 (default 20)."),
        ("sort" = Option<String>, Query, description = "`newest` (default) or `popular`."),
        ("tag" = Option<String>, Query, description = "Only videos with this tag (case-insensitive)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of a previous page."),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds."),
    ),
    responses(
        (status = 200, description = "A page of the feed", body = FeedPage<Video>,
            headers(("ETag" = String), ("Cache-Control" = String), ("X-Cache" = String))),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "Malformed query parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Page past the last", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (cache miss)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    // The request itself rather than extractors that copy its query and headers.
    let query = FeedQuery::parse_public(request.uri().query())?;
    let scope = Scope::of_feed(&query);
    let request_key = request_key(&query);
    let pool = state.db.clone();
    let served = state
        .read_through
        .serve(&scope, &request_key, move || async move {
            queries::feed_page(&pool, &query).await
        })
        .await?;
    Ok(respond(request.headers(), &served.entry, served.status))
}

/// One published video.
#[utoipa::path(
    get,
    path = "/v1/videos/{id}",
    tag = "videos",
    params(
        ("id" = Uuid, Path, description = "The video's id."),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds."),
    ),
    responses(
        (status = 200, description = "The video", body = Video,
            headers(("ETag" = String), ("Cache-Control" = String), ("X-Cache" = String))),
        (status = 304, description = "The client's copy is current"),
        (status = 404, description = "No published video with this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (cache miss)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    raw_id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    // A malformed id (not a UUID, or not even UTF-8) names no video: 404, like an unknown one.
    let id = raw_id
        .ok()
        .and_then(|Path(raw)| Uuid::try_parse(&raw).ok())
        .ok_or_else(not_found)?;
    let pool = state.db.clone();
    let served = state
        .read_through
        .serve(&Scope::Video(id), DETAIL_REQUEST, move || async move {
            queries::video(&pool, id).await?.ok_or_else(not_found)
        })
        .await?;
    Ok(respond(request.headers(), &served.entry, served.status))
}

fn not_found() -> ApiError {
    Problem::not_found("No published video has this id.").into()
}
