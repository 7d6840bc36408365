//! The read API's SQL. Every query reads published videos only and is served
//! by an index: the feed orders by the partial indexes `videos_feed_newest` and
//! `videos_feed_popular` (cursor pages seek into them by row comparison, page
//! mode skips along them in an index-only scan), tag feeds may use the GIN index `videos_tags`, and
//! totals come from `feed_counts`. docs/queries.md has their plans.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use shared::feed::{CursorPosition, FeedQuery, Position, Sort};
use shared::select_videos;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

/// Total and rows are read in one snapshot, so the envelope is consistent.
const BEGIN: &str = "begin isolation level repeatable read, read only";
/// Tag feeds are planned for the tag at hand: a common tag walks the order's
/// index and filters, a rare one collects its few rows from the GIN index. A
/// cached generic plan would pick one of them for every tag.
const BEGIN_TAG: &str =
    "begin isolation level repeatable read, read only; set local plan_cache_mode = force_custom_plan";

/// One feed page as the JSON envelope.
pub async fn feed_page(pool: &PgPool, query: &FeedQuery) -> Result<Bytes, ApiError> {
    let tag = query.tag.as_ref().map(|t| t.as_str().to_owned());
    let mut tx = pool
        .begin_with(if tag.is_some() { BEGIN_TAG } else { BEGIN })
        .await?;
    let total = sqlx::query_scalar!(
        "select published from feed_counts where tag = $1",
        tag.as_deref().unwrap_or("")
    )
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(0);
    query.check_page_exists(total)?;

    let limit = query.fetch_limit();
    let offset = query.offset();
    let conn = &mut *tx;
    let rows = match (&query.position, query.sort, tag) {
        (Position::Page(_), Sort::Newest, None) => {
            // Deferred join: the offset is skipped in an index-only scan and
            // only the page's rows are read from the heap. `= any(array(..))`
            // keeps that plan even as a generic (cached) plan.
            select_videos!(
                "from videos v where id = any(array(
                     select id from videos where status = 'published'
                     order by published_at desc, id desc limit $1 offset $2))
                 order by published_at desc, id desc",
                limit,
                offset
            )
            .fetch_all(conn)
            .await?
        }
        (Position::Page(_), Sort::Popular, None) => {
            select_videos!(
                "from videos v where id = any(array(
                     select id from videos where status = 'published'
                     order by view_count desc, published_at desc, id desc limit $1 offset $2))
                 order by view_count desc, published_at desc, id desc",
                limit,
                offset
            )
            .fetch_all(conn)
            .await?
        }
        (Position::Page(_), Sort::Newest, Some(tag)) => {
            select_videos!(
                "from videos v where status = 'published' and tags @> array[$3::text]
                 order by published_at desc, id desc limit $1 offset $2",
                limit,
                offset,
                tag
            )
            .fetch_all(conn)
            .await?
        }
        (Position::Page(_), Sort::Popular, Some(tag)) => {
            select_videos!(
                "from videos v where status = 'published' and tags @> array[$3::text]
                 order by view_count desc, published_at desc, id desc limit $1 offset $2",
                limit,
                offset,
                tag
            )
            .fetch_all(conn)
            .await?
        }
        (Position::After(after), Sort::Newest, None) => {
            select_videos!(
                "from videos v where status = 'published' and (published_at, id) < ($2, $3)
                 order by published_at desc, id desc limit $1",
                limit,
                published_at(after)?,
                after.id
            )
            .fetch_all(conn)
            .await?
        }
        (Position::After(after), Sort::Popular, None) => {
            select_videos!(
                "from videos v where status = 'published' and (view_count, published_at, id) < ($2, $3, $4)
                 order by view_count desc, published_at desc, id desc limit $1",
                limit,
                after.view_count,
                published_at(after)?,
                after.id
            )
            .fetch_all(conn)
            .await?
        }
        (Position::After(after), Sort::Newest, Some(tag)) => {
            select_videos!(
                "from videos v where status = 'published' and (published_at, id) < ($2, $3)
                   and tags @> array[$4::text]
                 order by published_at desc, id desc limit $1",
                limit,
                published_at(after)?,
                after.id,
                tag
            )
            .fetch_all(conn)
            .await?
        }
        (Position::After(after), Sort::Popular, Some(tag)) => {
            select_videos!(
                "from videos v where status = 'published' and (view_count, published_at, id) < ($2, $3, $4)
                   and tags @> array[$5::text]
                 order by view_count desc, published_at desc, id desc limit $1",
                limit,
                after.view_count,
                published_at(after)?,
                after.id,
                tag
            )
            .fetch_all(conn)
            .await?
        }
    };
    tx.commit().await?;

    let sort = query.sort;
    let page = query.page_of(total, rows, |row| CursorPosition {
        // A `newest` cursor carries no view count.
        view_count: if sort == Sort::Popular {
            row.view_count
        } else {
            0
        },
        published_at: row.published_at,
        id: row.id,
    });
    Ok(Bytes::from(serde_json::to_vec(&page)?))
}

/// Public cursors always carry a time (the cursor decoder refuses others);
/// answering 400 keeps this total anyway.
fn published_at(after: &CursorPosition) -> Result<DateTime<Utc>, ApiError> {
    after.published_at.ok_or_else(|| {
        shared::Problem::bad_request("Query parameter `cursor` is not a cursor this API issued.")
            .into()
    })
}

/// One published video as JSON; `None` for a draft or an unknown id.
pub async fn video(pool: &PgPool, id: Uuid) -> Result<Option<Bytes>, ApiError> {
    let row = select_videos!("from videos v where id = $1 and status = 'published'", id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| serde_json::to_vec(&row).map(Bytes::from))
        .transpose()
        .map_err(ApiError::from)
}
