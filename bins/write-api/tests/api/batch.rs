use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{problem, video, App};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_batch_creates_all_in_request_order_with_one_event_each(pool: PgPool) {
    let app = App::start(pool).await;
    let videos: Vec<Value> = (0..50)
        .map(|i| {
            let mut v = video(&format!("v{i}"));
            v["tags"] = json!([format!("T{}", i % 3)]);
            if i % 5 == 0 {
                v["status"] = json!("draft");
            }
            v
        })
        .collect();
    let response = app
        .post("/v1/videos/batch", &json!({ "videos": videos }))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let created = body["videos"].as_array().unwrap();
    assert_eq!(created.len(), 50);
    for (i, v) in created.iter().enumerate() {
        assert_eq!(v["title"], format!("v{i}"));
        assert_eq!(v["tags"], json!([format!("t{}", i % 3)]));
        assert_eq!(v["version"], 1);
        if i % 5 == 0 {
            assert_eq!(v["published_at"], Value::Null);
        } else {
            assert!(v["published_at"].is_string());
        }
    }
    assert_eq!(app.videos().await, 50);
    assert_eq!(app.events().await, 50);
    let counts = sqlx::query!("select published, draft from feed_counts where tag = ''")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((counts.published, counts.draft), (40, 10));
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_failing_batch_creates_nothing_and_names_each_element(pool: PgPool) {
    let app = App::start(pool).await;
    let mut videos: Vec<Value> = (0..5).map(|i| video(&format!("v{i}"))).collect();
    videos[1]["title"] = json!("");
    videos[3]["tags"] = json!(["ok", 7]);
    videos[4]["id"] = json!("0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10");
    let (_, fields) = problem(
        app.post("/v1/videos/batch", &json!({ "videos": videos }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields,
        ["videos[1].title", "videos[3].tags[1]", "videos[4].id"]
    );

    for (body, field) in [
        (json!({"videos": []}), "videos"),
        (json!({}), "videos"),
        (json!({"videos": "x"}), "videos"),
        (json!({"videos": [video("a")], "extra": 1}), "extra"),
        (json!({"videos": vec![video("a"); 1001]}), "videos"),
        (json!({"videos": [video("a"), 5]}), "videos[1]"),
        (json!([video("a")]), ""),
    ] {
        let (_, fields) = problem(
            app.post("/v1/videos/batch", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields, [field], "{field}");
    }
    assert_eq!(app.videos().await, 0);
    assert_eq!(app.events().await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_batch_of_1000_is_one_statement(pool: PgPool) {
    let app = App::start(pool).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .unwrap();
    listener.listen("video_events").await.unwrap();
    let response = app
        .post(
            "/v1/videos/batch",
            &json!({"videos": vec![video("a"); 1000]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.videos().await, 1000);
    assert_eq!(app.events().await, 1000);
    // One NOTIFY carrying the last seq of the statement.
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    // (Not simply "1000": rolled-back writes, such as the start's connection
    // warm-up, leave gaps in seq.)
    let last: i64 = sqlx::query_scalar("select max(seq) from video_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(first.payload(), last.to_string());
}
