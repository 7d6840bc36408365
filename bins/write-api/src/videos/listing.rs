//! `GET /v1/videos`: the admin listing. The read API's parameters and
//! envelope, plus `status`; drafts (which may have no `published_at`) sort
//! first in both orders. Never cached.

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use shared::{
    domain::Video,
    feed::{CursorPosition, FeedPage, FeedQuery, Listing, Position, Sort, StatusFilter},
    Problem,
};
use sqlx::PgPool;

use crate::error::ApiError;

/// Lists videos, drafts included.
#[utoipa::path(
    get,
    path = "/v1/videos",
    tag = "videos",
    params(
        ("page" = Option<u64>, Query, description = "1-based page (default 1); not with `cursor`"),
        ("page_size" = Option<u32>, Query, description = "1..=100, default 20"),
        ("sort" = Option<String>, Query, description = "`newest` (published_at desc, drafts without a date first, id desc) or `popular` (view_count desc, then as newest)"),
        ("tag" = Option<String>, Query, description = "only videos with this tag"),
        ("status" = Option<String>, Query, description = "`draft`, `published` or `all` (default)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of a previous page"),
    ),
    responses(
        (status = 200, description = "A page of videos", body = FeedPage<Video>),
        (status = 400, description = "Malformed query parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Page past the last", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Postgres unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(pool): State<PgPool>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = FeedQuery::parse_admin(query.as_deref()).map_err(ApiError::Problem)?;
    let page = fetch_page(&pool, &query).await?;
    let mut response = Json(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One page of the admin listing (the API's and the console's).
pub(crate) async fn fetch_page(
    pool: &PgPool,
    query: &FeedQuery,
) -> Result<FeedPage<Video>, ApiError> {
    let status = match query.listing {
        Listing::Admin(status) => status,
        Listing::Public => StatusFilter::Published,
    };
    let total = total(pool, query, status).await?;
    query.check_page_exists(total).map_err(ApiError::Problem)?;

    let status_param = match status {
        StatusFilter::All => None,
        StatusFilter::Draft => Some("draft"),
        StatusFilter::Published => Some("published"),
    };
    let tag = query.tag.as_ref().map(|t| t.as_str());
    let after = match &query.position {
        Position::After(position) => Some(position),
        Position::Page(_) => None,
    };
    let after_id = after.map(|p| p.id);
    let after_published_at = after.and_then(|p| p.published_at);
    let after_view_count = after.map_or(0, |p| p.view_count);

    // Keyset conditions: "after" a position whose published_at is null means
    // the rest of the null-dated rows (id below it), then every dated row.
    let rows = match query.sort {
        Sort::Newest => {
            sqlx::query_as!(
                Video,
                r#"select id, title, description, video_url, thumbnail_url, duration_seconds, tags,
                          view_count, status as "status: shared::domain::Status", published_at, created_at, updated_at, version
                   from videos
                   where ($1::text is null or status = $1)
                     and ($2::text is null or tags @> array[$2::text])
                     and ($3::uuid is null or case
                           when $4::timestamptz is null then published_at is not null or id < $3
                           else published_at < $4 or (published_at = $4 and id < $3) end)
                   order by published_at desc nulls first, id desc
                   limit $5 offset $6"#,
                status_param,
                tag,
                after_id,
                after_published_at,
                query.fetch_limit(),
                query.offset(),
            )
            .fetch_all(pool)
            .await?
        }
        Sort::Popular => {
            sqlx::query_as!(
                Video,
                r#"select id, title, description, video_url, thumbnail_url, duration_seconds, tags,
                          view_count, status as "status: shared::domain::Status", published_at, created_at, updated_at, version
                   from videos
                   where ($1::text is null or status = $1)
                     and ($2::text is null or tags @> array[$2::text])
                     and ($3::uuid is null or view_count < $5::bigint or (view_count = $5::bigint and case
                           when $4::timestamptz is null then published_at is not null or id < $3
                           else published_at < $4 or (published_at = $4 and id < $3) end))
                   order by view_count desc, published_at desc nulls first, id desc
                   limit $6 offset $7"#,
                status_param,
                tag,
                after_id,
                after_published_at,
                after_view_count,
                query.fetch_limit(),
                query.offset(),
            )
            .fetch_all(pool)
            .await?
        }
    };
    let popular = query.sort == Sort::Popular;
    Ok(query.page_of(total, rows, |v| CursorPosition {
        view_count: if popular { v.view_count } else { 0 },
        published_at: v.published_at,
        id: v.id,
    }))
}

/// The listing's total from `feed_counts` (no count(*) scan).
async fn total(pool: &PgPool, query: &FeedQuery, status: StatusFilter) -> Result<i64, ApiError> {
    let tag = query.tag.as_ref().map_or("", |t| t.as_str());
    let counts = sqlx::query!(
        "select published, draft from feed_counts where tag = $1",
        tag
    )
    .fetch_optional(pool)
    .await?;
    Ok(counts.map_or(0, |c| match status {
        StatusFilter::All => c.published + c.draft,
        StatusFilter::Draft => c.draft,
        StatusFilter::Published => c.published,
    }))
}
