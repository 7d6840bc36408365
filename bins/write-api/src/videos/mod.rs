//! The `/v1/videos` resource: create (one or a batch), the admin listing, and
//! read, patch and delete by id. Every write is one transaction; the triggers
//! on `videos` add its change event, counts, version bump and NOTIFY.

pub(crate) mod create;
pub(crate) mod item;
pub(crate) mod listing;
mod search;

use axum::{
    extract::{rejection::PathRejection, DefaultBodyLimit, Path},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use shared::domain::Video;
use sqlx::PgPool;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{body, error::ApiError, preconditions};

pub fn router() -> OpenApiRouter<PgPool> {
    let batch = OpenApiRouter::new()
        .routes(routes!(create::create_batch))
        .layer(DefaultBodyLimit::max(body::BATCH_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(create::create, listing::list))
        .routes(routes!(
            item::get_video,
            item::patch_video,
            item::delete_video
        ))
        .layer(DefaultBodyLimit::max(body::LIMIT))
        .merge(batch)
}

/// The relative URL of a video.
fn location(id: Uuid) -> String {
    format!("/v1/videos/{id}")
}

/// A malformed id (not a UUID, or not even UTF-8) names no video: 404, like an unknown one.
fn parse_id(raw: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    raw.ok()
        .and_then(|Path(raw)| Uuid::try_parse(&raw).ok())
        .ok_or_else(ApiError::video_not_found)
}

/// A video with its `ETag`.
fn with_etag(video: Video) -> Response {
    let etag = preconditions::etag(video.version);
    let mut response = Json(video).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
