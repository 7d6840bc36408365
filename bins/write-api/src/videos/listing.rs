//! `GET /v1/videos`: the admin listing. The read API's parameters and
//! envelope, plus `status` and the title search `q`; drafts (which may have
//! no `published_at`) sort first in both orders. Never cached.
//!
//! Without `q`, pages come from `video_tags` (one row per video and tag, plus
//! tag `''` for the whole catalogue, maintained by the change trigger): an
//! index-only scan in the page's order skips the offset, then the page's ids
//! are joined to `videos` (a deferred join), so page 500 costs a few ms.
//! With `q`, see `search`: the same walk, filtered on the matching titles.
//! Totals come from `feed_counts`, or for a search from `title_counts`.

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

use super::search;
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
        ("q" = Option<String>, Query, description = "only videos whose title contains this text (case- and accent-insensitive; `%` and `_` literal); 1..=200 characters"),
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

/// One page of the admin listing for a parsed query (status, tag, search,
/// sort, page or cursor), with its totals; a page past the last is an error.
pub(crate) async fn fetch_page(
    pool: &PgPool,
    query: &FeedQuery,
) -> Result<FeedPage<Video>, ApiError> {
    let status = match query.listing {
        Listing::Admin(status) => status,
        Listing::Public => StatusFilter::Published,
    };
    let status_param = match status {
        StatusFilter::All => None,
        StatusFilter::Draft => Some("draft"),
        StatusFilter::Published => Some("published"),
    };
    let after = match &query.position {
        Position::After(position) => Some(position),
        Position::Page(_) => None,
    };
    let keys = Keys {
        status: status_param,
        after_id: after.map(|p| p.id),
        after_published_at: after.and_then(|p| p.published_at),
        after_view_count: after.map_or(0, |p| p.view_count),
        limit: query.fetch_limit(),
        offset: query.offset(),
    };
    let (total, rows) = match query.search.as_ref().map(|q| q.like_pattern()) {
        None => {
            let total = counted_total(pool, query, status).await?;
            query.check_page_exists(total).map_err(ApiError::Problem)?;
            (total, listed(pool, query, &keys).await?)
        }
        Some(pattern) => {
            let matches = search::matching_titles(pool, query, status, &pattern).await?;
            query
                .check_page_exists(matches.total)
                .map_err(ApiError::Problem)?;
            let rows = if matches.total == 0 {
                Vec::new()
            } else {
                let listed = counted_total(pool, query, status).await?;
                search::page(pool, query, &keys, &matches, listed).await?
            };
            (matches.total, rows)
        }
    };
    let popular = query.sort == Sort::Popular;
    Ok(query.page_of(total, rows, |v| CursorPosition {
        view_count: if popular { v.view_count } else { 0 },
        published_at: v.published_at,
        id: v.id,
    }))
}

/// The bound parameters every page query takes. A null `published_at` sorts
/// as `infinity` (first in descending order), which makes the keyset a plain
/// row comparison that the indexes answer.
pub(super) struct Keys<'a> {
    pub(super) status: Option<&'a str>,
    pub(super) after_id: Option<uuid::Uuid>,
    pub(super) after_published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) after_view_count: i64,
    pub(super) limit: i64,
    pub(super) offset: i64,
}

/// A page without search, from `video_tags` (tag `''` = every video).
async fn listed(pool: &PgPool, query: &FeedQuery, k: &Keys<'_>) -> Result<Vec<Video>, ApiError> {
    let tag = query.tag.as_ref().map_or("", |t| t.as_str());
    let rows = match query.sort {
        Sort::Newest => {
            shared::select_videos!(
                "from (
                       select video_id, sort_at from video_tags
                       where tag_hash = hashtext($1) and tag = $1
                         and ($2::text is null or status = $2)
                         and ($3::uuid is null
                              or (sort_at, video_id) < (coalesce($4::timestamptz, 'infinity'), $3::uuid))
                       order by sort_at desc, video_id desc
                       limit $5 offset $6
                   ) page
                   join videos v on v.id = page.video_id
                   order by page.sort_at desc, page.video_id desc",
                tag,
                k.status,
                k.after_id,
                k.after_published_at,
                k.limit,
                k.offset,
            )
            .fetch_all(pool)
            .await?
        }
        Sort::Popular => {
            shared::select_videos!(
                "from (
                       select video_id, view_count, sort_at from video_tags
                       where tag_hash = hashtext($1) and tag = $1
                         and ($2::text is null or status = $2)
                         and ($3::uuid is null
                              or (view_count, sort_at, video_id)
                                 < ($7::bigint, coalesce($4::timestamptz, 'infinity'), $3::uuid))
                       order by view_count desc, sort_at desc, video_id desc
                       limit $5 offset $6
                   ) page
                   join videos v on v.id = page.video_id
                   order by page.view_count desc, page.sort_at desc, page.video_id desc",
                tag,
                k.status,
                k.after_id,
                k.after_published_at,
                k.limit,
                k.offset,
                k.after_view_count,
            )
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// The listing's total from `feed_counts` (no count(*) scan).
pub(super) async fn counted_total(
    pool: &PgPool,
    query: &FeedQuery,
    status: StatusFilter,
) -> Result<i64, ApiError> {
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
