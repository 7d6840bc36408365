use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{problem, video, App};

fn path(video: &Value) -> String {
    format!("/v1/videos/{}", video["id"].as_str().unwrap())
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn get_finds_drafts_and_404s_unknown_or_malformed_ids(pool: PgPool) {
    let app = App::start(pool).await;
    let draft = app
        .create(json!({"title": "d", "video_url": "https://e.com/v", "status": "draft"}))
        .await;
    let response = app.get(&path(&draft)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");
    assert_eq!(response.json::<Value>().await.unwrap(), draft);
    let cached = app
        .request(Method::GET, &path(&draft))
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["etag"], "\"1\"");
    let stale = app
        .request(Method::GET, &path(&draft))
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    for missing in [
        "0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10",
        "not-a-uuid",
        "123",
        "%E2%82%AC",
    ] {
        problem(
            app.get(&format!("/v1/videos/{missing}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            app.patch(&format!("/v1/videos/{missing}"), &json!({"title": "x"}))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            app.delete(&format!("/v1/videos/{missing}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn patch_replaces_present_fields_bumps_the_version_and_writes_one_event(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app
        .create(json!({"title": "a", "video_url": "https://e.com/v", "thumbnail_url": "https://e.com/t.jpg",
                       "duration_seconds": 5, "tags": ["x"]}))
        .await;
    let response = app
        .patch(&path(&created), &json!({"title": "b", "tags": ["Y", "z"], "thumbnail_url": null, "duration_seconds": null}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["title"], "b");
    assert_eq!(patched["tags"], json!(["y", "z"]));
    assert_eq!(patched["thumbnail_url"], Value::Null);
    assert_eq!(patched["duration_seconds"], Value::Null);
    assert_eq!(patched["video_url"], created["video_url"]);
    assert_eq!(patched["published_at"], created["published_at"]);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_eq!(patched["version"], 2);
    assert_ne!(patched["updated_at"], created["updated_at"]);
    assert_eq!(app.events().await, 2);
    assert_eq!(
        app.get(&path(&created))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        patched
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_patch_that_changes_nothing_keeps_the_version_and_writes_no_event(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app
        .create(json!({"title": "a", "video_url": "https://e.com/v", "tags": ["x"]}))
        .await;
    for body in [
        json!({}),
        json!({"title": "a"}),
        json!({"title": " a ", "tags": ["X", "x"], "thumbnail_url": null}),
    ] {
        let response = app.patch(&path(&created), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(response.json::<Value>().await.unwrap(), created);
    }
    assert_eq!(app.events().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn patch_validation(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app.create(video("a")).await;
    for (body, fields) in [
        (json!({"title": null}), vec!["title"]),
        (
            json!({"video_url": null, "description": null, "tags": null, "view_count": null, "status": null}),
            vec!["description", "status", "tags", "video_url", "view_count"],
        ),
        (
            json!({"title": 5, "duration_seconds": 1.5, "version": 2, "nope": 1}),
            vec!["duration_seconds", "nope", "title", "version"],
        ),
        (json!({"tags": ["a", "b", "c", 1]}), vec!["tags[3]"]),
        // A published video always has a date.
        (json!({"published_at": null}), vec!["published_at"]),
        (
            json!({"published_at": "2999-01-01T00:00:00Z"}),
            vec!["published_at"],
        ),
        (json!(["title"]), vec![""]),
    ] {
        let (_, mut got) = problem(
            app.patch(&path(&created), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        got.sort();
        assert_eq!(got, fields, "{body}");
    }
    assert_eq!(
        app.get(&path(&created))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        created
    );
    assert_eq!(app.events().await, 1);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn publishing_dates_and_unpublishing_keeps_the_date(pool: PgPool) {
    let app = App::start(pool).await;
    let draft = app
        .create(json!({"title": "d", "video_url": "https://e.com/v", "status": "draft"}))
        .await;
    let published: Value = app
        .patch(&path(&draft), &json!({"status": "published"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(published["status"], "published");
    assert!(published["published_at"].is_string());
    let unpublished: Value = app
        .patch(&path(&draft), &json!({"status": "draft"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unpublished["status"], "draft");
    assert_eq!(unpublished["published_at"], published["published_at"]);
    // A draft's date may be cleared, and the same patch may make it a draft.
    let cleared: Value = app
        .patch(&path(&draft), &json!({"published_at": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["published_at"], Value::Null);
    let live = app.create(video("live")).await;
    let both: Value = app
        .patch(
            &path(&live),
            &json!({"status": "draft", "published_at": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (both["status"].as_str(), both["published_at"].as_str()),
        (Some("draft"), None)
    );
    let dated: Value = app
        .patch(
            &path(&live),
            &json!({"status": "published", "published_at": "2026-01-01T00:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dated["published_at"], "2026-01-01T00:00:00Z");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn if_match_guards_patch_and_delete(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app.create(video("a")).await;
    let with_if_match = |method: Method, value: &str| {
        app.request(method, &path(&created))
            .header("content-type", "application/json")
            .header("if-match", value.to_owned())
            .body(json!({"title": "b"}).to_string())
    };
    for stale in ["\"2\"", "W/\"1\"", "1", "\"0\", \"2\""] {
        problem(
            with_if_match(Method::PATCH, stale).send().await.unwrap(),
            StatusCode::PRECONDITION_FAILED,
        )
        .await;
        problem(
            with_if_match(Method::DELETE, stale).send().await.unwrap(),
            StatusCode::PRECONDITION_FAILED,
        )
        .await;
    }
    assert_eq!(app.events().await, 1);
    let ok = with_if_match(Method::PATCH, "\"0\", \"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let ok = with_if_match(Method::PATCH, "*").send().await.unwrap();
    assert_eq!(ok.headers()["etag"], "\"2\"");
    problem(
        with_if_match(Method::DELETE, "\"1\"").send().await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        with_if_match(Method::DELETE, "\"2\"")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.videos().await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn delete_answers_204_then_404_with_one_event(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app.create(video("a")).await;
    let response = app.delete(&path(&created)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    problem(app.delete(&path(&created)).await, StatusCode::NOT_FOUND).await;
    problem(app.get(&path(&created)).await, StatusCode::NOT_FOUND).await;
    let ops: Vec<String> = sqlx::query_scalar!("select op from video_events order by seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(ops, ["insert", "delete"]);
}
