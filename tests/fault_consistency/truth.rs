//! The truth a test computes itself with its own SQL, what the read API
//! serves reduced to what that truth determines, and the check that the two
//! are equal.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{
    common::{seq_and_checkpoint, wait_until, Stack},
    CONVERGE, RECOVERY, TAG,
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sort {
    Newest,
    Popular,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Popular => "popular",
        }
    }

    /// The contract's order, written independently of the read API's SQL.
    pub fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "published_at desc, id desc",
            Sort::Popular => "view_count desc, published_at desc, id desc",
        }
    }
}

/// One public feed request in page mode.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    pub sort: Sort,
    pub tag: Option<&'static str>,
    pub page: i64,
    pub page_size: i64,
}

impl Feed {
    pub fn path(&self) -> String {
        let mut path = format!(
            "/v1/videos?page={}&page_size={}&sort={}",
            self.page,
            self.page_size,
            self.sort.name()
        );
        if let Some(tag) = self.tag {
            path.push_str("&tag=");
            path.push_str(tag);
        }
        path
    }
}

/// The pages every consistency check compares: the first pages of both
/// sorts, a tag feed, and a big page.
pub fn checked_feeds() -> Vec<Feed> {
    let mut feeds = Vec::new();
    for sort in [Sort::Newest, Sort::Popular] {
        for page in 1..=4 {
            feeds.push(Feed {
                sort,
                tag: None,
                page,
                page_size: 20,
            });
        }
    }
    for page in 1..=3 {
        feeds.push(Feed {
            sort: Sort::Newest,
            tag: Some(TAG),
            page,
            page_size: 10,
        });
    }
    feeds.push(Feed {
        sort: Sort::Popular,
        tag: Some(TAG),
        page: 1,
        page_size: 10,
    });
    feeds.push(Feed {
        sort: Sort::Newest,
        tag: None,
        page: 1,
        page_size: 100,
    });
    feeds
}

/// What a request returns, reduced to what the truth determines.
#[derive(Debug, PartialEq)]
pub enum Seen {
    Page {
        total_videos: i64,
        total_pages: i64,
        page: i64,
        page_size: i64,
        /// Ids in order, each with its version.
        results: Vec<(Uuid, i64)>,
    },
    Video {
        id: Uuid,
        version: i64,
        title: String,
        view_count: i64,
    },
    NotFound,
    Other(u16),
}

pub fn seen_page(status: StatusCode, body: &Value) -> Seen {
    match status {
        StatusCode::OK => Seen::Page {
            total_videos: body["total_videos"].as_i64().unwrap_or(-1),
            total_pages: body["total_pages"].as_i64().unwrap_or(-1),
            page: body["page"].as_i64().unwrap_or(-1),
            page_size: body["page_size"].as_i64().unwrap_or(-1),
            results: body["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    (
                        v["id"].as_str().and_then(|s| s.parse().ok()).unwrap(),
                        v["version"].as_i64().unwrap_or(-1),
                    )
                })
                .collect(),
        },
        StatusCode::NOT_FOUND => Seen::NotFound,
        other => Seen::Other(other.as_u16()),
    }
}

pub fn seen_video(status: StatusCode, body: &Value) -> Seen {
    match status {
        StatusCode::OK => Seen::Video {
            id: body["id"].as_str().and_then(|s| s.parse().ok()).unwrap(),
            version: body["version"].as_i64().unwrap_or(-1),
            title: body["title"].as_str().unwrap_or("").to_owned(),
            view_count: body["view_count"].as_i64().unwrap_or(-1),
        },
        StatusCode::NOT_FOUND => Seen::NotFound,
        other => Seen::Other(other.as_u16()),
    }
}

/// The page the contract says `feed` is, computed from `videos` directly.
pub async fn truth_page(pool: &PgPool, feed: &Feed) -> Seen {
    let total_videos: i64 = sqlx::query_scalar(
        "select count(*) from videos
         where status = 'published' and ($1::text is null or $1 = any(tags))",
    )
    .bind(feed.tag)
    .fetch_one(pool)
    .await
    .unwrap();
    let total_pages = (total_videos + feed.page_size - 1) / feed.page_size;
    // An empty feed's page 1 exists; any other page past the last is a 404.
    if feed.page > total_pages.max(1) {
        return Seen::NotFound;
    }
    let sql = format!(
        "select id, version from videos
         where status = 'published' and ($1::text is null or $1 = any(tags))
         order by {} limit $2 offset $3",
        feed.sort.order_by()
    );
    let results = sqlx::query(&sql)
        .bind(feed.tag)
        .bind(feed.page_size)
        .bind((feed.page - 1) * feed.page_size)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get("id"), row.get("version")))
        .collect();
    Seen::Page {
        total_videos,
        total_pages,
        page: feed.page,
        page_size: feed.page_size,
        results,
    }
}

pub async fn truth_video(pool: &PgPool, id: Uuid) -> Seen {
    sqlx::query(
        "select version, title, view_count from videos where id = $1 and status = 'published'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap()
    .map_or(Seen::NotFound, |row| Seen::Video {
        id,
        version: row.get("version"),
        title: row.get("title"),
        view_count: row.get("view_count"),
    })
}

/// The truth of every checked feed and of the detail pages of `videos`.
pub async fn truths(pool: &PgPool, videos: &[Uuid]) -> Vec<(String, Seen)> {
    let mut truths = Vec::new();
    for feed in checked_feeds() {
        truths.push((feed.path(), truth_page(pool, &feed).await));
    }
    for &id in videos {
        truths.push((format!("/v1/videos/{id}"), truth_video(pool, id).await));
    }
    truths
}

/// Every difference between what the read API serves and `truths`. A page
/// that matches must also match, as a cache HIT, on a second read: the
/// compared pages came from the cache too.
pub async fn differences(stack: &Stack, truths: &[(String, Seen)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, truth) in truths {
        let seen = |status, body: &Value| match truth {
            Seen::Video { .. } => seen_video(status, body),
            _ => seen_page(status, body),
        };
        let (status, _, body) = stack.get(path).await;
        let first = seen(status, &body);
        if first != *truth {
            found.push(format!("{path}: served {first:?}, truth {truth:?}"));
            continue;
        }
        if status == StatusCode::OK {
            let (status, cache, body) = stack.get(path).await;
            let second = seen(status, &body);
            if cache != "HIT" || second != *truth {
                found.push(format!(
                    "{path}: second read {cache:?} served {second:?}, truth {truth:?}"
                ));
            }
        }
    }
    found
}

/// How a consistency check went, for the printed figures.
pub struct Convergence {
    caught_up_after: Duration,
    pages_equal_after: Duration,
    /// Comparisons of every checked page with the truth until all matched.
    attempts: usize,
}

impl std::fmt::Display for Convergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalidator caught up after {:?}, pages equal to the truth {:?} later \
             (comparison {})",
            self.caught_up_after, self.pages_equal_after, self.attempts
        )
    }
}

/// Waits (bounded) for the invalidator to reach the outbox's end, then for
/// the served pages to equal the truth; panics with every difference if they
/// do not. Callers have no write in flight, so the truth is computed once.
pub async fn assert_consistent(stack: &Stack, pool: &PgPool, videos: &[Uuid]) -> Convergence {
    let started = Instant::now();
    let caught_up = wait_until(RECOVERY, || async {
        let (newest, checkpoint) = seq_and_checkpoint(pool).await;
        checkpoint == newest
    })
    .await;
    let (newest, checkpoint) = seq_and_checkpoint(pool).await;
    assert!(
        caught_up,
        "the invalidator did not catch up: checkpoint {checkpoint} of {newest}"
    );
    let catch_up = started.elapsed();
    let truths = truths(pool, videos).await;
    let started = Instant::now();
    let mut attempts = 0;
    let converged = wait_until(CONVERGE, || {
        attempts += 1;
        async { differences(stack, &truths).await.is_empty() }
    })
    .await;
    if !converged {
        let found = differences(stack, &truths).await;
        assert!(
            found.is_empty(),
            "pages differ from the truth {CONVERGE:?} after the catch-up:\n{}",
            found.join("\n")
        );
    }
    Convergence {
        caught_up_after: catch_up,
        pages_equal_after: started.elapsed(),
        attempts,
    }
}
