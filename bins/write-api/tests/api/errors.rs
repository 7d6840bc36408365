use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::common::{problem, video, App};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn malformed_json_is_400(pool: PgPool) {
    let app = App::start(pool).await;
    let id = app.create(video("a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (Method::POST, "/v1/videos".to_owned()),
        (Method::POST, "/v1/videos/batch".to_owned()),
        (Method::PATCH, format!("/v1/videos/{id}")),
    ] {
        for body in ["{\"title\": ", "", "{'a': 1}", "[1,]"] {
            let response = app
                .request(method.clone(), &path)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            problem(response, StatusCode::BAD_REQUEST).await;
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_body_that_is_not_json_is_415(pool: PgPool) {
    let app = App::start(pool).await;
    let id = app.create(video("a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = video("b").to_string();
    let cases = [
        (Method::POST, "/v1/videos".to_owned(), Some("text/plain")),
        (Method::POST, "/v1/videos".to_owned(), None),
        (
            Method::POST,
            "/v1/videos".to_owned(),
            Some("application/x-www-form-urlencoded"),
        ),
        // A merge patch is for PATCH only.
        (
            Method::POST,
            "/v1/videos".to_owned(),
            Some("application/merge-patch+json"),
        ),
        (
            Method::POST,
            "/v1/videos/batch".to_owned(),
            Some("text/plain"),
        ),
        (
            Method::PATCH,
            format!("/v1/videos/{id}"),
            Some("text/plain"),
        ),
        (Method::PATCH, format!("/v1/videos/{id}"), None),
    ];
    for (method, path, content_type) in cases {
        let mut request = app.request(method, &path).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        problem(
            request.send().await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
    }
    // Both JSON media types are accepted for PATCH, parameters ignored.
    for content_type in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let response = app
            .request(Method::PATCH, &format!("/v1/videos/{id}"))
            .header("content-type", content_type)
            .body(json!({"title": "c"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.videos().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn bodies_over_the_limit_are_413(pool: PgPool) {
    let app = App::start(pool).await;
    let mut big = video("big");
    big["description"] = json!("x".repeat(1024 * 1024));
    problem(
        app.post("/v1/videos", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let id = app.create(video("a")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    problem(
        app.patch(&format!("/v1/videos/{id}"), &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    // The batch route takes up to 32 MiB: 2 MiB is fine...
    let mut item = video("item");
    item["description"] = json!("x".repeat(4000));
    let response = app
        .post("/v1/videos/batch", &json!({"videos": vec![item; 500]}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // ...33 MiB is not.
    let huge = json!({"videos": [{"title": "t", "video_url": "https://e.com/v", "description": "x".repeat(33 * 1024 * 1024)}]});
    problem(
        app.post("/v1/videos/batch", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(app.videos().await, 501);
}
