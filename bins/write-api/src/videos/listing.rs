//! `GET /v1/videos`: the admin listing. The read API's parameters and
//! envelope, plus `status` and the title search `q`; drafts (which may have
//! no `published_at`) sort first in both orders. Never cached.
//!
//! Without `q`, pages come from `video_tags` (one row per video and tag, plus
//! tag `''` for the whole catalogue, maintained by the change trigger): an
//! index-only scan in the page's order skips the offset, then the page's ids
//! are joined to `videos` (a deferred join), so page 500 costs a few ms.
//! With `q`, the trigram index finds the matching titles and they are sorted.
//! Totals come from `feed_counts`, or from counting the matches of a search.

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
            // A page of matches counts them too (one pass over the matches);
            // a cursor page, which sees only the matches after it, and an
            // empty page, which has no row to carry the count, count apart.
            let (rows, counted) = searched(pool, query, &keys, &pattern).await?;
            let total = match (counted, after) {
                (Some(total), None) => total,
                _ => search_total(pool, query, keys.status, &pattern).await?,
            };
            query.check_page_exists(total).map_err(ApiError::Problem)?;
            (total, rows)
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
struct Keys<'a> {
    status: Option<&'a str>,
    after_id: Option<uuid::Uuid>,
    after_published_at: Option<chrono::DateTime<chrono::Utc>>,
    after_view_count: i64,
    limit: i64,
    offset: i64,
}

/// A page without search, from `video_tags` (tag `''` = every video).
async fn listed(pool: &PgPool, query: &FeedQuery, k: &Keys<'_>) -> Result<Vec<Video>, ApiError> {
    let tag = query.tag.as_ref().map_or("", |t| t.as_str());
    let rows = match query.sort {
        Sort::Newest => {
            shared::select_videos!(
                "from (
                       select video_id, sort_at from video_tags
                       where tag = $1
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
                       where tag = $1
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

shared::video_row! {
    /// A video of a search page, with the number of matches (before the
    /// page's limit and offset).
    struct Match {
        matches: i64,
    }
}

/// A page of search matches, from `videos` through the trigram index, and
/// the number of matches when the page has a row to carry it.
///
/// The matches are collected first (a materialized CTE: the count needs them
/// all anyway) and only the page's rows are fetched whole. Planned as one
/// query, the `limit` tempted Postgres into walking a sort-order index and
/// filtering it row by row: 4.9 s for a selective tag plus a common word.
async fn searched(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    pattern: &str,
) -> Result<(Vec<Video>, Option<i64>), ApiError> {
    let tag = query.tag.as_ref().map(|t| t.as_str());
    let rows = match query.sort {
        Sort::Newest => {
            shared::select_videos!(
                Match => r#"with matched as materialized (
                       select id, coalesce(published_at, 'infinity') as sort_at from videos
                       where videos_search_text(title) like videos_search_text($7)
                         and ($1::text is null or status = $1)
                         and ($2::text is null or tags @> array[$2::text])
                         and ($3::uuid is null
                              or (coalesce(published_at, 'infinity'), id) < (coalesce($4::timestamptz, 'infinity'), $3::uuid))
                   ), page as (
                       select id, sort_at, count(*) over () as matches from matched
                       order by sort_at desc, id desc
                       limit $5 offset $6
                   )"#
                select r#", page.matches as "matches!"
                   from page join videos v on v.id = page.id
                   order by page.sort_at desc, page.id desc"#,
                k.status,
                tag,
                k.after_id,
                k.after_published_at,
                k.limit,
                k.offset,
                pattern,
            )
            .fetch_all(pool)
            .await?
        }
        Sort::Popular => {
            shared::select_videos!(
                Match => r#"with matched as materialized (
                       select id, view_count, coalesce(published_at, 'infinity') as sort_at from videos
                       where videos_search_text(title) like videos_search_text($7)
                         and ($1::text is null or status = $1)
                         and ($2::text is null or tags @> array[$2::text])
                         and ($3::uuid is null
                              or (view_count, coalesce(published_at, 'infinity'), id)
                                 < ($8::bigint, coalesce($4::timestamptz, 'infinity'), $3::uuid))
                   ), page as (
                       select id, view_count, sort_at, count(*) over () as matches from matched
                       order by view_count desc, sort_at desc, id desc
                       limit $5 offset $6
                   )"#
                select r#", page.matches as "matches!"
                   from page join videos v on v.id = page.id
                   order by page.view_count desc, page.sort_at desc, page.id desc"#,
                k.status,
                tag,
                k.after_id,
                k.after_published_at,
                k.limit,
                k.offset,
                pattern,
                k.after_view_count,
            )
            .fetch_all(pool)
            .await?
        }
    };
    let matches = rows.first().map(|m| m.matches);
    let videos = rows.into_iter().map(|m| m.into_parts().0).collect();
    Ok((videos, matches))
}

/// The listing's total from `feed_counts` (no count(*) scan).
async fn counted_total(
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

/// A search's total: the matches, counted.
async fn search_total(
    pool: &PgPool,
    query: &FeedQuery,
    status: Option<&str>,
    pattern: &str,
) -> Result<i64, ApiError> {
    let tag = query.tag.as_ref().map(|t| t.as_str());
    let total = sqlx::query_scalar!(
        r#"select count(*) as "n!" from videos
           where videos_search_text(title) like videos_search_text($3)
             and ($1::text is null or status = $1)
             and ($2::text is null or tags @> array[$2::text])"#,
        status,
        tag,
        pattern,
    )
    .fetch_one(pool)
    .await?;
    Ok(total)
}
