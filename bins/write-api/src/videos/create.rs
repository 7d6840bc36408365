//! `POST /v1/videos` and `POST /v1/videos/batch`.

use std::collections::HashMap;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde::Serialize;
use shared::{
    domain::{parse_batch, NewVideo, Video, VideoFields},
    Problem,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::location;
use crate::{
    body::{canonical_hash, JsonBody},
    error::ApiError,
    idempotency::{self, Claim, Stored},
    openapi::BatchCreate,
};

/// Creates a video. With an `Idempotency-Key`, a retry with the same key and
/// body replays the first response instead of creating another video.
#[utoipa::path(
    post,
    path = "/v1/videos",
    tag = "videos",
    request_body(content = NewVideo, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 characters; a retry with the same key and body replays the first response"),
    ),
    responses(
        (status = 201, description = "Created (or replayed: `Idempotent-Replayed: true`)", body = Video,
            headers(("Location" = String, description = "/v1/videos/{id}"), ("ETag" = String, description = "\"<version>\""))),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(pool): State<PgPool>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = idempotency::key(&headers)?;
    let video = NewVideo::parse(&body, "", Utc::now()).map_err(ApiError::validation)?;
    let Some(key) = key else {
        // Without a key the create is one statement, so it runs as its own
        // transaction (the trigger's event and NOTIFY included) in a single
        // round trip: no BEGIN and COMMIT trips, and the outbox lock, held
        // until commit, is never held while a COMMIT crosses the network.
        let mut conn = pool.acquire().await?;
        let video = insert_one(&mut conn, Uuid::now_v7(), video.into_fields()).await?;
        return Ok(created(&video)?.into_response(false));
    };
    let mut tx = pool.begin().await?;
    if let Claim::Replay(stored) = idempotency::claim(&mut tx, &key, &canonical_hash(&body)).await?
    {
        return Ok(stored.into_response(true));
    }
    let video = insert_one(&mut tx, Uuid::now_v7(), video.into_fields()).await?;
    let response = created(&video)?;
    idempotency::record(&mut tx, &key, &response).await?;
    tx.commit().await?;
    Ok(response.into_response(false))
}

/// The 201 of a created video.
fn created(video: &Video) -> Result<Stored, ApiError> {
    Ok(Stored {
        status: StatusCode::CREATED,
        body: serde_json::to_vec(video).map_err(|e| ApiError::Internal(e.to_string()))?,
        location: Some(location(video.id)),
        etag: Some(format!("\"{}\"", video.version)),
    })
}

pub(crate) async fn insert_one(
    conn: &mut PgConnection,
    id: Uuid,
    v: VideoFields,
) -> Result<Video, ApiError> {
    // A published video without a date is dated by the transaction, like created_at.
    shared::returning_videos!(
        "insert into videos as v (id, title, description, video_url, thumbnail_url,
                                  duration_seconds, tags, view_count, status, published_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                 coalesce($10::timestamptz, case when $9::text = 'published' then now() end))",
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
    .fetch_one(conn)
    .await
    .map_err(ApiError::from)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Batch {
    /// The created videos, in request order.
    videos: Vec<Video>,
}

/// Creates 1 to 1000 videos, all or none, in one statement: one change event
/// per video and a single NOTIFY.
#[utoipa::path(
    post,
    path = "/v1/videos/batch",
    tag = "videos",
    request_body(content = BatchCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "All created", body = Batch),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 32 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`videos[3].title`); nothing was created", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_batch(
    State(pool): State<PgPool>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let videos = parse_batch(&body, Utc::now()).map_err(ApiError::validation)?;
    let videos = insert_batch(&pool, videos).await?;
    Ok((StatusCode::CREATED, Json(Batch { videos })).into_response())
}

/// One row of a batch insert, as `jsonb_to_recordset` reads it.
#[derive(Serialize)]
struct Record {
    id: Uuid,
    #[serde(flatten)]
    fields: VideoFields,
}

/// Inserts validated videos, all or none, answering them in the given order.
pub(crate) async fn insert_batch(
    pool: &PgPool,
    videos: Vec<NewVideo>,
) -> Result<Vec<Video>, ApiError> {
    let ids: Vec<Uuid> = videos.iter().map(|_| Uuid::now_v7()).collect();
    let records: Vec<Record> = ids
        .iter()
        .zip(videos)
        .map(|(&id, video)| Record {
            id,
            fields: video.into_fields(),
        })
        .collect();
    let records = serde_json::to_value(records).map_err(|e| ApiError::Internal(e.to_string()))?;
    // One statement, so one transaction and one run of the statement trigger.
    let rows = shared::returning_videos!(
        "insert into videos as v (id, title, description, video_url, thumbnail_url,
                                  duration_seconds, tags, view_count, status, published_at)
         select x.id, x.title, x.description, x.video_url, x.thumbnail_url, x.duration_seconds,
                x.tags, x.view_count, x.status,
                coalesce(x.published_at, case when x.status = 'published' then now() end)
         from jsonb_to_recordset($1::jsonb) as x(
             id uuid, title text, description text, video_url text, thumbnail_url text,
             duration_seconds integer, tags text[], view_count bigint, status text,
             published_at timestamptz)",
        records,
    )
    .fetch_all(pool)
    .await?;
    let mut by_id: HashMap<Uuid, Video> = HashMap::with_capacity(rows.len());
    for video in rows {
        by_id.insert(video.id, video);
    }
    // RETURNING promises no order; answer in the request's.
    ids.iter()
        .map(|id| {
            by_id
                .remove(id)
                .ok_or_else(|| ApiError::Internal(format!("batch row {id} not returned")))
        })
        .collect()
}
