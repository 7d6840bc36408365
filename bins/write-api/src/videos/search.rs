//! The admin search (`q`) of the listing: which videos' titles contain a
//! text, how many, and a page of them in the listing's order.
//!
//! Titles are searched in `search_titles` (one row per distinct folded title,
//! trigram-indexed), never in `videos`: the total is a sum over the matching
//! titles' `title_counts`, exact without visiting a single match. The page
//! then comes from `video_tags`, whose rows name their title, in one of two
//! ways, chosen from the counts:
//!
//! - common matches: the listing's own index-only walk in the page's order,
//!   skipping the rows whose title is not among the matches, so it stops
//!   after about (offset + page) x listed / matches index entries;
//! - rare matches: every match fetched by title (`video_tags_title`), then
//!   sorted, which costs about the number of matches.

use shared::{
    domain::Video,
    feed::{FeedQuery, Position, Sort, StatusFilter},
};
use sqlx::PgPool;

use super::listing::Keys;
use crate::error::ApiError;

/// Walk the order index while it skips at most this many entries per match
/// the other way would fetch and sort: an index-only entry costs a fraction
/// of a fetched row.
const WALK_ENTRIES_PER_MATCH: i64 = 8;
/// Above this many matching titles, the walk's per-entry title test (a scan
/// of the list) would dominate: fetch the matches instead.
const MAX_WALK_TITLES: usize = 1_000;

/// The titles a search matches within the listing's status and tag.
pub(super) struct Matches {
    /// Matching titles that some video in the listing carries.
    title_ids: Vec<i64>,
    /// Videos in the listing with one of those titles: the search's total.
    pub(super) total: i64,
}

/// The titles containing the search text, with how many videos in the
/// listing (status, tag) carry them.
pub(super) async fn matching_titles(
    pool: &PgPool,
    query: &FeedQuery,
    status: StatusFilter,
    pattern: &str,
) -> Result<Matches, ApiError> {
    let tag = query.tag.as_ref().map_or("", |t| t.as_str());
    let titles = sqlx::query!(
        r#"select c.title_id as "title_id!", c.published as "published!", c.draft as "draft!"
           from search_titles s
           join title_counts c on c.title_id = s.id and c.tag = $2
           where s.folded like videos_search_text($1)"#,
        pattern,
        tag,
    )
    .fetch_all(pool)
    .await?;
    let mut matches = Matches {
        title_ids: Vec::with_capacity(titles.len()),
        total: 0,
    };
    for title in titles {
        let videos = match status {
            StatusFilter::All => title.published + title.draft,
            StatusFilter::Draft => title.draft,
            StatusFilter::Published => title.published,
        };
        if videos > 0 {
            matches.title_ids.push(title.title_id);
            matches.total += videos;
        }
    }
    Ok(matches)
}

/// A page of the matches, `listed` being the size of the listing searched
/// (the same status and tag without `q`).
pub(super) async fn page(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    matches: &Matches,
    listed: i64,
) -> Result<Vec<Video>, ApiError> {
    // A cursor seeks to its position: only the page itself lies ahead.
    let ahead = match query.position {
        Position::Page(_) => k.offset + k.limit,
        Position::After(_) => k.limit,
    };
    let walked = ahead.saturating_mul(listed) / matches.total.max(1);
    let walk = matches.title_ids.len() <= MAX_WALK_TITLES
        && walked <= matches.total.saturating_mul(WALK_ENTRIES_PER_MATCH);
    let rows = match (walk, query.sort) {
        (true, Sort::Newest) => walk_newest(pool, query, k, &matches.title_ids).await?,
        (true, Sort::Popular) => walk_popular(pool, query, k, &matches.title_ids).await?,
        (false, Sort::Newest) => fetch_newest(pool, query, k, &matches.title_ids).await?,
        (false, Sort::Popular) => fetch_popular(pool, query, k, &matches.title_ids).await?,
    };
    Ok(rows)
}

fn tag_of(query: &FeedQuery) -> &str {
    query.tag.as_ref().map_or("", |t| t.as_str())
}

async fn walk_newest(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    title_ids: &[i64],
) -> Result<Vec<Video>, ApiError> {
    Ok(shared::select_videos!(
        r#"from (
               select video_id, sort_at from video_tags
               where tag_hash = hashtext($1) and tag = $1
                 and ($2::text is null or status = $2)
                 and title_id = any($7::bigint[])
                 and ($3::uuid is null
                      or (sort_at, video_id) < (coalesce($4::timestamptz, 'infinity'), $3::uuid))
               order by sort_at desc, video_id desc
               limit $5 offset $6
           ) page
           join videos v on v.id = page.video_id
           order by page.sort_at desc, page.video_id desc"#,
        tag_of(query),
        k.status,
        k.after_id,
        k.after_published_at,
        k.limit,
        k.offset,
        title_ids,
    )
    .fetch_all(pool)
    .await?)
}

async fn walk_popular(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    title_ids: &[i64],
) -> Result<Vec<Video>, ApiError> {
    Ok(shared::select_videos!(
        r#"from (
               select video_id, view_count, sort_at from video_tags
               where tag_hash = hashtext($1) and tag = $1
                 and ($2::text is null or status = $2)
                 and title_id = any($8::bigint[])
                 and ($3::uuid is null
                      or (view_count, sort_at, video_id)
                         < ($7::bigint, coalesce($4::timestamptz, 'infinity'), $3::uuid))
               order by view_count desc, sort_at desc, video_id desc
               limit $5 offset $6
           ) page
           join videos v on v.id = page.video_id
           order by page.view_count desc, page.sort_at desc, page.video_id desc"#,
        tag_of(query),
        k.status,
        k.after_id,
        k.after_published_at,
        k.limit,
        k.offset,
        k.after_view_count,
        title_ids,
    )
    .fetch_all(pool)
    .await?)
}

/// Rare matches: all of them by title (the materialized CTE keeps the planner
/// from walking an order index instead), then sorted; a tag is checked per
/// match on its `video_tags` row.
async fn fetch_newest(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    title_ids: &[i64],
) -> Result<Vec<Video>, ApiError> {
    Ok(shared::select_videos!(
        Video => r#"with matched as materialized (
               select m.video_id, m.sort_at from video_tags m
               where m.tag = ''
                 and m.title_id = any($7::bigint[])
                 and ($2::text is null or m.status = $2)
                 and ($1 = '' or exists (
                      select from video_tags t
                      where t.tag_hash = hashtext($1) and t.tag = $1
                        and t.sort_at = m.sort_at and t.video_id = m.video_id))
                 and ($3::uuid is null
                      or (m.sort_at, m.video_id) < (coalesce($4::timestamptz, 'infinity'), $3::uuid))
           ), page as (
               select video_id, sort_at from matched
               order by sort_at desc, video_id desc
               limit $5 offset $6
           )"#
        select r#" from page join videos v on v.id = page.video_id
           order by page.sort_at desc, page.video_id desc"#,
        tag_of(query),
        k.status,
        k.after_id,
        k.after_published_at,
        k.limit,
        k.offset,
        title_ids,
    )
    .fetch_all(pool)
    .await?)
}

async fn fetch_popular(
    pool: &PgPool,
    query: &FeedQuery,
    k: &Keys<'_>,
    title_ids: &[i64],
) -> Result<Vec<Video>, ApiError> {
    Ok(shared::select_videos!(
        Video => r#"with matched as materialized (
               select m.video_id, m.view_count, m.sort_at from video_tags m
               where m.tag = ''
                 and m.title_id = any($8::bigint[])
                 and ($2::text is null or m.status = $2)
                 and ($1 = '' or exists (
                      select from video_tags t
                      where t.tag_hash = hashtext($1) and t.tag = $1
                        and t.sort_at = m.sort_at and t.video_id = m.video_id))
                 and ($3::uuid is null
                      or (m.view_count, m.sort_at, m.video_id)
                         < ($7::bigint, coalesce($4::timestamptz, 'infinity'), $3::uuid))
           ), page as (
               select video_id, view_count, sort_at from matched
               order by view_count desc, sort_at desc, video_id desc
               limit $5 offset $6
           )"#
        select r#" from page join videos v on v.id = page.video_id
           order by page.view_count desc, page.sort_at desc, page.video_id desc"#,
        tag_of(query),
        k.status,
        k.after_id,
        k.after_published_at,
        k.limit,
        k.offset,
        k.after_view_count,
        title_ids,
    )
    .fetch_all(pool)
    .await?)
}
