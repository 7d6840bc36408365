use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{problem, video, App};

async fn post_with_key(app: &App, key: &str, body: &str) -> Response {
    app.request(Method::POST, "/v1/videos")
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn same_key_and_body_replays_the_first_response(pool: PgPool) {
    let app = App::start(pool).await;
    let first = post_with_key(
        &app,
        "key-1",
        r#"{"title": "a", "video_url": "https://e.com/v"}"#,
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let (location, etag) = (
        first.headers()["location"].clone(),
        first.headers()["etag"].clone(),
    );
    let first_body = first.bytes().await.unwrap();

    // Same body, formatted differently and with its keys in another order.
    let again = post_with_key(
        &app,
        "key-1",
        r#"{ "video_url":"https://e.com/v","title":"a" }"#,
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.bytes().await.unwrap(), first_body);
    assert_eq!(app.videos().await, 1);
    assert_eq!(app.events().await, 1);

    // Another key creates another video.
    let other = post_with_key(
        &app,
        "key-2",
        r#"{"title": "a", "video_url": "https://e.com/v"}"#,
    )
    .await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.videos().await, 2);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn same_key_with_another_body_is_409(pool: PgPool) {
    let app = App::start(pool).await;
    let first = post_with_key(&app, "key-1", &video("a").to_string()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    problem(
        post_with_key(&app, "key-1", &video("b").to_string()).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(app.videos().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_key_must_be_1_to_255_characters(pool: PgPool) {
    let app = App::start(pool).await;
    let body = video("a").to_string();
    problem(
        post_with_key(&app, "", &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        post_with_key(&app, &"k".repeat(256), &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        post_with_key(&app, &"k".repeat(255), &body).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.videos().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_failed_request_does_not_use_up_its_key(pool: PgPool) {
    let app = App::start(pool).await;
    let invalid = json!({"title": "", "video_url": "https://e.com/v"}).to_string();
    problem(
        post_with_key(&app, "key-1", &invalid).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let valid = post_with_key(&app, "key-1", &video("a").to_string()).await;
    assert_eq!(valid.status(), StatusCode::CREATED);
    assert!(valid.headers().get("idempotent-replayed").is_none());
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn concurrent_identical_requests_create_one_video(pool: PgPool) {
    let app = App::start(pool).await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let body = video(&format!("r{round}")).to_string();
        let responses =
            futures::future::join_all((0..8).map(|_| post_with_key(&app, &key, &body))).await;
        let mut ids = Vec::new();
        for response in responses {
            assert_eq!(response.status(), StatusCode::CREATED);
            let video: Value = response.json().await.unwrap();
            ids.push(video["id"].as_str().unwrap().to_owned());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
    }
    assert_eq!(app.videos().await, 5);
    assert_eq!(app.events().await, 5);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn expired_keys_are_forgotten(pool: PgPool) {
    let app = App::start(pool).await;
    assert_eq!(
        post_with_key(&app, "old", &video("a").to_string())
            .await
            .status(),
        StatusCode::CREATED
    );
    sqlx::query!("update idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let reused = post_with_key(&app, "old", &video("b").to_string()).await;
    assert_eq!(reused.status(), StatusCode::CREATED);
    assert_eq!(app.videos().await, 2);
}
