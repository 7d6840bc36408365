//! The load the fault tests put on the stack while a dependency is broken:
//! admin writes that change the checked pages, and readiness probes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    common::{video_body, wait_until, Proc, Stack},
    truth::*,
    TAG,
};

/// A random number below `n` (v4 UUIDs are random; this saves a dependency).
pub fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

/// Published videos on the first checked pages: changing them changes
/// cached pages.
pub async fn visible_videos(pool: &PgPool, n: i64) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = Vec::new();
    for sort in [Sort::Newest, Sort::Popular] {
        let sql = format!(
            "select id from videos where status = 'published' order by {} limit $1",
            sort.order_by()
        );
        let rows: Vec<Uuid> = sqlx::query_scalar(&sql)
            .bind(n)
            .fetch_all(pool)
            .await
            .unwrap();
        ids.extend(
            rows.into_iter()
                .filter(|id| !ids.contains(id))
                .collect::<Vec<_>>(),
        );
    }
    let tagged: Vec<Uuid> = sqlx::query_scalar(
        "select id from videos where status = 'published' and $1 = any(tags)
         order by published_at desc, id desc limit $2",
    )
    .bind(TAG)
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap();
    ids.extend(
        tagged
            .into_iter()
            .filter(|id| !ids.contains(id))
            .collect::<Vec<_>>(),
    );
    ids
}

/// Admin writes that change what the checked pages show: view counts (the
/// popular order), titles, drafts, creations, deletions.
pub struct Churn {
    videos: Vec<Uuid>,
    round: usize,
}

impl Churn {
    pub fn new(videos: &[Uuid]) -> Self {
        Self {
            videos: videos.to_vec(),
            round: 0,
        }
    }

    /// One write; returns its status (the write API may answer 503 during a
    /// fault).
    pub async fn next(&mut self, stack: &Stack) -> StatusCode {
        let round = self.round;
        self.round += 1;
        let index = round % self.videos.len();
        let path = format!("/v1/videos/{}", self.videos[index]);
        let (status, _) = match round % 6 {
            0 => {
                let views = 1_000_000 + random_below(1_000_000);
                stack
                    .admin(Method::PATCH, &path, Some(json!({ "view_count": views })))
                    .await
            }
            1 => {
                let title = format!("Churned {round}");
                stack
                    .admin(Method::PATCH, &path, Some(json!({ "title": title })))
                    .await
            }
            2 => {
                stack
                    .admin(Method::PATCH, &path, Some(json!({"status": "draft"})))
                    .await
            }
            3 => {
                stack
                    .admin(Method::PATCH, &path, Some(json!({"status": "published"})))
                    .await
            }
            4 => {
                let body = video_body(&format!("New {round}"), &[TAG], "published");
                let created = stack.admin(Method::POST, "/v1/videos", Some(body)).await;
                if let Some(id) = created.1["id"].as_str().and_then(|s| s.parse().ok()) {
                    self.videos.push(id);
                }
                created
            }
            _ => {
                let deleted = stack.admin(Method::DELETE, &path, None).await;
                // Each creation above replaces the deleted target.
                if deleted.0 == StatusCode::NO_CONTENT {
                    self.videos.swap_remove(index);
                }
                deleted
            }
        };
        status
    }
}

pub async fn ready_status(stack: &Stack, proc: &Proc) -> (Option<StatusCode>, Value) {
    match stack.http.get(proc.url("/readyz")).send().await {
        Ok(response) => {
            let status = response.status();
            (Some(status), response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    }
}

pub async fn becomes_ready(
    stack: &Stack,
    proc: &Proc,
    status: StatusCode,
    within: Duration,
) -> bool {
    wait_until(within, || async {
        ready_status(stack, proc).await.0 == Some(status)
    })
    .await
}

/// A fresh path (a page size no check uses) is a MISS, then a HIT.
pub async fn caching_works(stack: &Stack) -> bool {
    let path = format!("/v1/videos?page_size={}", 21 + random_below(79));
    stack.get(&path).await.1 == "MISS" && stack.get(&path).await.1 == "HIT"
}
