use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::{postgres::PgPoolOptions, PgPool};
use test_support::PrivatePostgres;

use crate::common::{problem, video, wait_until, App};

/// A pool like the server's (lazy, short acquire timeout) on `url`.
fn lazy_pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(url)
        .unwrap()
}

async fn assert_503_quickly(app: &App) {
    for (method, path) in [
        ("POST", "/v1/videos"),
        ("GET", "/v1/videos"),
        ("GET", "/v1/videos/0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10"),
    ] {
        let started = Instant::now();
        let request = app
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
            )
            .header("content-type", "application/json")
            .body(video("a").to_string());
        let response = request.send().await.unwrap();
        assert!(
            response.headers().contains_key("retry-after"),
            "{method} {path}"
        );
        problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{method} {path} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn postgres_unreachable_from_the_start_is_503_and_the_process_keeps_serving() {
    // Nothing listens on port 1.
    let app = App::start_unready(lazy_pool("postgres://postgres@127.0.0.1:1/none")).await;
    assert_eq!(app.get_anon("/healthz").await.status(), StatusCode::OK);
    let ready = app.get_anon("/readyz").await;
    assert!(ready.headers().contains_key("retry-after"));
    let (body, _) = problem(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["checks"]["postgres"]["ok"], false);
    assert_503_quickly(&app).await;
    // Still answering: 401 needs no database.
    assert_eq!(
        app.get_anon("/v1/videos").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_503_quickly(&app).await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn postgres_lost_after_start_is_503(pool: PgPool) {
    let app = App::start(pool).await;
    app.create(video("a")).await;
    app.pool.close().await;
    assert_503_quickly(&app).await;
    assert_eq!(
        app.get_anon("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_server_started_while_postgres_is_down_recovers_by_itself() {
    let mut postgres = PrivatePostgres::start().await.unwrap();
    postgres.create_database("app").await.unwrap();
    postgres.stop().await.unwrap();

    let app = App::start_unready(lazy_pool(&postgres.url("app"))).await;
    assert_503_quickly(&app).await;

    postgres.restart().await.unwrap();
    // Migrations are retried with backoff (at most 5 s apart).
    let ready = wait_until(Duration::from_secs(20), || async {
        app.get_anon("/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(ready, "did not recover after Postgres came back");
    let created = app.create(video("after")).await;
    assert_eq!(created["version"], 1);
    assert_eq!(app.videos().await, 1);
}
