use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{problem, video, App};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn create_answers_201_with_location_etag_defaults_and_one_event(pool: PgPool) {
    let app = App::start(pool).await;
    let response = app
        .post(
            "/v1/videos",
            &json!({"title": "  Linen looks ", "video_url": "https://cdn.example.com/v/1.mp4"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/videos/{id}"));
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(body["title"], "Linen looks");
    assert_eq!(body["description"], "");
    assert_eq!(body["thumbnail_url"], Value::Null);
    assert_eq!(body["duration_seconds"], Value::Null);
    assert_eq!(body["tags"], json!([]));
    assert_eq!(body["view_count"], 0);
    assert_eq!(body["status"], "published");
    assert_eq!(body["version"], 1);
    // Published without a date: dated now, by the same transaction as created_at.
    assert_eq!(body["published_at"], body["created_at"]);

    assert_eq!(app.events().await, 1);
    let op = sqlx::query_scalar!("select op from video_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(op, "insert");

    let fetched = app.get(&location).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["etag"], "\"1\"");
    assert_eq!(fetched.json::<Value>().await.unwrap(), body);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn create_stores_every_field(pool: PgPool) {
    let app = App::start(pool).await;
    let body = app
        .create(json!({
            "title": "Linen", "description": "Three outfits", "video_url": "https://cdn.example.com/v/1.mp4",
            "thumbnail_url": "https://cdn.example.com/t/1.jpg", "duration_seconds": 95,
            "tags": ["Summer", " linen ", "summer"], "view_count": 42, "status": "published",
            "published_at": "2026-01-02T03:04:05+01:00"
        }))
        .await;
    assert_eq!(body["tags"], json!(["summer", "linen"]));
    assert_eq!(body["duration_seconds"], 95);
    assert_eq!(body["view_count"], 42);
    let at: DateTime<Utc> = body["published_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, "2026-01-02T02:04:05Z".parse::<DateTime<Utc>>().unwrap());
    let row = sqlx::query!("select tags, description, thumbnail_url from videos")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(row.tags, vec!["summer", "linen"]);
    assert_eq!(row.description, "Three outfits");
    assert_eq!(
        row.thumbnail_url.as_deref(),
        Some("https://cdn.example.com/t/1.jpg")
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn drafts_may_have_a_date_or_not(pool: PgPool) {
    let app = App::start(pool).await;
    let undated = app
        .create(json!({"title": "d", "video_url": "https://e.com/v", "status": "draft"}))
        .await;
    assert_eq!(undated["status"], "draft");
    assert_eq!(undated["published_at"], Value::Null);
    let dated = app
        .create(json!({"title": "d", "video_url": "https://e.com/v", "status": "draft", "published_at": "2026-01-01T00:00:00Z"}))
        .await;
    assert_eq!(dated["published_at"], "2026-01-01T00:00:00Z");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn validation_lists_every_failing_field_and_creates_nothing(pool: PgPool) {
    let app = App::start(pool).await;
    let bad = json!({
        "title": "   ", "description": "x".repeat(5001), "video_url": "ftp://e.com/v",
        "thumbnail_url": "/relative.jpg", "duration_seconds": 86401,
        "tags": ["ok", "", "a\u{7}b", "x".repeat(51)], "view_count": -1, "status": "live",
        "published_at": "2999-01-01T00:00:00Z"
    });
    let (body, mut fields) = problem(
        app.post("/v1/videos", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    fields.sort();
    assert_eq!(
        fields,
        [
            "description",
            "duration_seconds",
            "published_at",
            "status",
            "tags[1]",
            "tags[2]",
            "tags[3]",
            "thumbnail_url",
            "title",
            "video_url",
            "view_count"
        ]
    );
    assert!(body["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    let too_many_tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let (_, fields) = problem(
        app.post(
            "/v1/videos",
            &json!({"title": "t", "video_url": "https://e.com/v", "tags": too_many_tags}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields, ["tags"]);

    let (_, fields) = problem(
        app.post("/v1/videos", &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields, ["title", "video_url"]);
    assert_eq!(app.videos().await, 0);
    assert_eq!(app.events().await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn wrong_types_unknown_and_read_only_fields_are_named(pool: PgPool) {
    let app = App::start(pool).await;
    let cases = [
        (json!({"title": 5}), "title"),
        (json!({"duration_seconds": 1.5}), "duration_seconds"),
        (json!({"view_count": "7"}), "view_count"),
        (json!({"tags": ["a", "b", "c", 4]}), "tags[3]"),
        (json!({"tags": "a"}), "tags"),
        (json!({"status": true}), "status"),
        (json!({"published_at": 1}), "published_at"),
        (json!({"thumbnail_url": ["x"]}), "thumbnail_url"),
        (json!({"description": null}), "description"),
        (json!({"id": "0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10"}), "id"),
        (json!({"created_at": "2026-01-01T00:00:00Z"}), "created_at"),
        (json!({"updated_at": "2026-01-01T00:00:00Z"}), "updated_at"),
        (json!({"version": 3}), "version"),
        (json!({"titel": "typo"}), "titel"),
        (json!({"title": "nul\u{0}"}), "title"),
        (json!({"description": "nul\u{0}"}), "description"),
        (json!({"tags": ["nul\u{0}"]}), "tags[0]"),
    ];
    for (extra, field) in cases {
        let mut body = video("ok");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (_, fields) = problem(
            app.post("/v1/videos", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields, [field], "{body}");
    }
    assert_eq!(app.videos().await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_body_that_is_not_an_object_is_422(pool: PgPool) {
    let app = App::start(pool).await;
    for body in [json!([video("a")]), json!("x"), json!(null), json!(3)] {
        let (_, fields) = problem(
            app.post("/v1/videos", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields, [""]);
    }
}
