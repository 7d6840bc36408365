//! Postgres stopped and restarted under the running stack.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::PrivatePostgres;

use crate::{
    churn::*,
    common::{video_body, wait_until, Env, Stack, ADMIN_TOKEN},
    truth::*,
    RECOVERY, TAG,
};

/// A private Postgres with a migrated `app` database seeded with `videos`
/// videos, the shared Redis under a fresh prefix, and a pool for the test's
/// own SQL.
pub async fn private_postgres(videos: u32) -> (PrivatePostgres, PgPool, Env) {
    let (pg, pool, env) = crate::common::private_postgres().await;
    env.seed(videos);
    (pg, pool, env)
}

/// A problem+json 503 with a positive `Retry-After`.
async fn assert_unavailable(what: &str, response: reqwest::Response) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "{what}: Retry-After {retry_after:?}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: {content_type}"
    );
    assert_eq!(body["status"], json!(503), "{what}: {body}");
}

#[tokio::test]
async fn postgres_stopped_then_restarted_recovers_without_restarts_and_serves_the_truth() {
    let (mut pg, pool, env) = private_postgres(300).await;
    let stack = Stack::start(env).await;
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;
    // What the cache holds now, to compare the hits served without Postgres.
    let mut cached = Vec::new();
    for feed in checked_feeds() {
        cached.push((feed.path(), truth_page(&pool, &feed).await));
    }
    for &id in &videos {
        cached.push((format!("/v1/videos/{id}"), truth_video(&pool, id).await));
    }

    pg.stop().await.unwrap();
    let stopped = Instant::now();
    for (path, truth) in &cached {
        let (status, cache, body) = stack.get(path).await;
        assert_eq!(
            (status, cache.as_str()),
            (StatusCode::OK, "HIT"),
            "{path}: {body}"
        );
        let seen = match truth {
            Seen::Video { .. } => seen_video(status, &body),
            _ => seen_page(status, &body),
        };
        assert_eq!(&seen, truth, "{path}");
    }
    let misses = [
        "/v1/videos?page_size=7",
        "/v1/videos?sort=popular&page_size=13",
        "/v1/videos?page=2&page_size=11&tag=summer",
    ];
    let stack_ref = &stack;
    let slowest_miss = futures::future::join_all(misses.iter().map(|path| async move {
        let stack = stack_ref;
        let started = Instant::now();
        let response = stack.http.get(stack.read.url(path)).send().await.unwrap();
        assert_unavailable(&format!("read-api miss {path}"), response).await;
        started.elapsed()
    }))
    .await
    .into_iter()
    .max()
    .unwrap_or_default();
    let writes = [
        (
            Method::POST,
            "/v1/videos".to_owned(),
            Some(video_body("Down", &[TAG], "published")),
        ),
        (
            Method::PATCH,
            format!("/v1/videos/{}", videos[0]),
            Some(json!({"title": "Down"})),
        ),
        (Method::DELETE, format!("/v1/videos/{}", videos[1]), None),
    ];
    for (method, path, body) in writes {
        let mut request = stack
            .http
            .request(method.clone(), stack.write.url(&path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_unavailable(
            &format!("write-api {method} {path}"),
            request.send().await.unwrap(),
        )
        .await;
    }
    for proc in [&stack.write, &stack.read, &stack.invalidator] {
        assert!(
            becomes_ready(&stack, proc, StatusCode::SERVICE_UNAVAILABLE, RECOVERY).await,
            "/readyz of {} stayed {:?}",
            proc.url(""),
            ready_status(&stack, proc).await
        );
    }
    let outage = stopped.elapsed();

    pg.restart().await.unwrap();
    let restarted = Instant::now();
    let created = wait_until(RECOVERY, || async {
        let body = video_body("After the restart", &[TAG], "published");
        stack.admin(Method::POST, "/v1/videos", Some(body)).await.0 == StatusCode::CREATED
    })
    .await;
    assert!(created, "the write API did not recover");
    let writes_back = restarted.elapsed();
    let served = wait_until(RECOVERY, || async {
        stack.get(misses[0]).await.0 == StatusCode::OK
    })
    .await;
    assert!(served, "misses are not served again");
    let misses_back = restarted.elapsed();
    for proc in [&stack.write, &stack.read, &stack.invalidator] {
        assert!(
            becomes_ready(&stack, proc, StatusCode::OK, RECOVERY).await,
            "/readyz of {} stayed {:?}",
            proc.url(""),
            ready_status(&stack, proc).await
        );
    }
    let ready_back = restarted.elapsed();
    // Changes to cached pages after the heal: only the invalidator, back on
    // its LISTEN connection, can purge them.
    let mut churn = Churn::new(&videos);
    for _ in 0..12 {
        let status = churn.next(&stack).await;
        assert!(status.is_success(), "write after recovery: {status}");
    }
    let converged = assert_consistent(&stack, &pool, &videos).await;
    eprintln!(
        "postgres stopped: outage checks took {outage:?} (slowest 503 miss {slowest_miss:?}); \
         after the restart writes back {writes_back:?}, misses back {misses_back:?}, all ready \
         {ready_back:?}; {converged}"
    );
}
