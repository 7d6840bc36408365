//! `GET`, `PATCH` and `DELETE /v1/videos/{id}`.

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use shared::{
    domain::{Video, VideoPatch},
    Problem,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{parse_id, with_etag};
use crate::{
    body::MergePatchBody,
    error::ApiError,
    preconditions::{check_if_match, etag, if_none_match},
};

/// One video, drafts included.
#[utoipa::path(
    get,
    path = "/v1/videos/{id}",
    tag = "videos",
    params(
        ("id" = Uuid, Path, description = "The video's id"),
        ("If-None-Match" = Option<String>, Header, description = "`\"<version>\"`: 304 if still current"),
    ),
    responses(
        (status = 200, description = "The video", body = Video, headers(("ETag" = String, description = "\"<version>\""))),
        (status = 304, description = "Not modified", headers(("ETag" = String, description = "\"<version>\""))),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such video (or a malformed id)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_video(
    State(pool): State<PgPool>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let row = fetch(&pool, id).await?;
    if if_none_match(&headers, row.version) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag(row.version))],
        )
            .into_response());
    }
    Ok(with_etag(row))
}

/// One video by id (the API's and the console's read).
pub(crate) async fn fetch(pool: &PgPool, id: Uuid) -> Result<Video, ApiError> {
    shared::select_videos!("from videos v where v.id = $1", id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(ApiError::video_not_found)
}

/// Locks the video's row until the transaction ends, so a concurrent change
/// cannot slip between the `If-Match` check and the write.
async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Video, ApiError> {
    shared::select_videos!("from videos v where v.id = $1 for update", id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(ApiError::video_not_found)
}

/// Changes a video with a JSON merge patch (RFC 7396).
#[utoipa::path(
    patch,
    path = "/v1/videos/{id}",
    tag = "videos",
    params(
        ("id" = Uuid, Path, description = "The video's id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`, a list of them, or `*`"),
    ),
    request_body(description = "A JSON merge patch, as application/merge-patch+json or application/json.",
        content((VideoPatch = "application/merge-patch+json"), (VideoPatch = "application/json"))),
    responses(
        (status = 200, description = "The video after the patch (same version if nothing changed)", body = Video,
            headers(("ETag" = String, description = "\"<version>\""))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such video", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_video(
    State(pool): State<PgPool>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    MergePatchBody(body): MergePatchBody,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let patch = VideoPatch::parse(&body, Utc::now()).map_err(ApiError::validation)?;
    let video = apply_patch(&pool, id, patch, |current| {
        check_if_match(&headers, current.version)
    })
    .await?;
    Ok(with_etag(video))
}

/// The PATCH transaction (the API's and the console's): locks the row, lets
/// `precondition` refuse the current version, applies and writes the patch.
pub(crate) async fn apply_patch(
    pool: &PgPool,
    id: Uuid,
    patch: VideoPatch,
    precondition: impl FnOnce(&Video) -> Result<(), ApiError>,
) -> Result<Video, ApiError> {
    let mut tx = pool.begin().await?;
    let current = lock(&mut tx, id).await?;
    precondition(&current)?;
    let before = current.writable_fields();
    let v = patch.apply(before.clone()).map_err(ApiError::validation)?;
    if v == before {
        // Nothing to write: same version, no event.
        return Ok(current);
    }
    let row = shared::returning_videos!(
        "update videos v
         set title = $2, description = $3, video_url = $4, thumbnail_url = $5,
             duration_seconds = $6, tags = $7, view_count = $8, status = $9,
             published_at = coalesce($10::timestamptz, case when $9::text = 'published' then now() end)
         where v.id = $1",
        id,
        v.title,
        v.description,
        v.video_url,
        v.thumbnail_url,
        v.duration_seconds,
        &v.tags,
        v.view_count,
        v.status.as_str(),
        v.published_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a video.
#[utoipa::path(
    delete,
    path = "/v1/videos/{id}",
    tag = "videos",
    params(
        ("id" = Uuid, Path, description = "The video's id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`, a list of them, or `*`"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such video", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_video(
    State(pool): State<PgPool>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    delete(&pool, id, |current| {
        check_if_match(&headers, current.version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The DELETE transaction (the API's and the console's).
pub(crate) async fn delete(
    pool: &PgPool,
    id: Uuid,
    precondition: impl FnOnce(&Video) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    let current = lock(&mut tx, id).await?;
    precondition(&current)?;
    sqlx::query!("delete from videos where id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
