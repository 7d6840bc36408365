//! Every kind of write is visible on every affected page within a second,
//! with the three real binaries on real Postgres and Redis; unaffected pages
//! stay cached.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Instant;

use common::{ids, result, video_body, Env, Stack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use uuid::Uuid;

const FEED: &str = "/v1/videos?page_size=100";
const POPULAR: &str = "/v1/videos?page_size=100&sort=popular";
const SUMMER: &str = "/v1/videos?page_size=100&tag=summer";
const LINEN: &str = "/v1/videos?page_size=100&tag=linen";
const WOOL: &str = "/v1/videos?page_size=100&tag=wool";
const WINTER: &str = "/v1/videos?page_size=100&tag=winter";

fn has(id: Uuid) -> impl Fn(StatusCode, &Value) -> bool {
    move |s, page| s == StatusCode::OK && ids(page).contains(&id)
}

fn lacks(id: Uuid) -> impl Fn(StatusCode, &Value) -> bool {
    move |s, page| s == StatusCode::OK && !ids(page).contains(&id)
}

fn field_is(id: Uuid, field: &'static str, want: Value) -> impl Fn(StatusCode, &Value) -> bool {
    move |s, page| s == StatusCode::OK && result(page, id).is_some_and(|v| v[field] == want)
}

fn detail(id: Uuid) -> String {
    format!("/v1/videos/{id}")
}

fn detail_is(field: &'static str, want: Value) -> impl Fn(StatusCode, &Value) -> bool {
    move |s, v| s == StatusCode::OK && v[field] == want
}

fn not_found(s: StatusCode, _: &Value) -> bool {
    s == StatusCode::NOT_FOUND
}

async fn published_count(pool: &PgPool, tag: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "select count(*) from videos where status = 'published' and ($1::text is null or tags @> array[$1])",
    )
    .bind(tag)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn total_is(want: i64) -> impl Fn(StatusCode, &Value) -> bool {
    move |s, page| s == StatusCode::OK && page["total_videos"] == json!(want)
}

async fn warm(stack: &Stack, paths: &[&str]) {
    for path in paths {
        stack.warm(path).await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_kind_of_write_is_visible_on_every_affected_page_within_a_second(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let stack = Stack::start(Env::for_test(&connect)).await;
    let a = stack
        .create("Linen looks", &["summer", "linen"], "published")
        .await;
    let a_detail = detail(a);

    // Create.
    warm(&stack, &[FEED, POPULAR, SUMMER]).await;
    let b = stack.create("New arrival", &["summer"], "published").await;
    let acked = Instant::now();
    for page in [FEED, POPULAR, SUMMER] {
        stack.assert_fresh(acked, page, "create", has(b)).await;
    }
    stack
        .assert_fresh(
            acked,
            &detail(b),
            "create",
            detail_is("title", json!("New arrival")),
        )
        .await;

    // Update of a field shown everywhere.
    warm(&stack, &[FEED, POPULAR, SUMMER, LINEN, &a_detail]).await;
    stack
        .patch(a, json!({"title": "Linen looks, revised"}))
        .await;
    let acked = Instant::now();
    for page in [FEED, POPULAR, SUMMER, LINEN] {
        stack
            .assert_fresh(
                acked,
                page,
                "update",
                field_is(a, "title", json!("Linen looks, revised")),
            )
            .await;
    }
    stack
        .assert_fresh(
            acked,
            &a_detail,
            "update",
            detail_is("title", json!("Linen looks, revised")),
        )
        .await;

    // view_count: the popular order changes.
    warm(&stack, &[FEED, POPULAR, SUMMER, &a_detail]).await;
    stack.patch(a, json!({"view_count": 1_000_000})).await;
    let acked = Instant::now();
    stack
        .assert_fresh(acked, POPULAR, "view_count", move |s, page| {
            s == StatusCode::OK && ids(page).first() == Some(&a)
        })
        .await;
    for page in [FEED, SUMMER] {
        stack
            .assert_fresh(
                acked,
                page,
                "view_count",
                field_is(a, "view_count", json!(1_000_000)),
            )
            .await;
    }
    stack
        .assert_fresh(
            acked,
            &a_detail,
            "view_count",
            detail_is("view_count", json!(1_000_000)),
        )
        .await;

    // Tag change: leaves the old tag's feed, joins the new one's.
    warm(&stack, &[SUMMER, LINEN, WOOL, &a_detail]).await;
    stack.patch(a, json!({"tags": ["linen", "wool"]})).await;
    let acked = Instant::now();
    stack
        .assert_fresh(acked, SUMMER, "tag change", lacks(a))
        .await;
    stack.assert_fresh(acked, WOOL, "tag change", has(a)).await;
    stack
        .assert_fresh(
            acked,
            LINEN,
            "tag change",
            field_is(a, "tags", json!(["linen", "wool"])),
        )
        .await;
    stack
        .assert_fresh(
            acked,
            &a_detail,
            "tag change",
            detail_is("tags", json!(["linen", "wool"])),
        )
        .await;

    // Unpublish.
    warm(&stack, &[FEED, POPULAR, WOOL, &a_detail]).await;
    stack.patch(a, json!({"status": "draft"})).await;
    let acked = Instant::now();
    for page in [FEED, POPULAR, WOOL] {
        stack.assert_fresh(acked, page, "unpublish", lacks(a)).await;
    }
    stack
        .assert_fresh(acked, &a_detail, "unpublish", not_found)
        .await;

    // Publish.
    warm(&stack, &[FEED, POPULAR, WOOL]).await;
    let _ = stack.get(&a_detail).await;
    stack.patch(a, json!({"status": "published"})).await;
    let acked = Instant::now();
    for page in [FEED, POPULAR, WOOL] {
        stack.assert_fresh(acked, page, "publish", has(a)).await;
    }
    stack
        .assert_fresh(
            acked,
            &a_detail,
            "publish",
            detail_is("status", json!("published")),
        )
        .await;

    // Delete.
    warm(&stack, &[FEED, POPULAR, WOOL, LINEN, &a_detail]).await;
    let (code, _) = stack.admin(Method::DELETE, &a_detail, None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let acked = Instant::now();
    for page in [FEED, POPULAR, WOOL, LINEN] {
        stack.assert_fresh(acked, page, "delete", lacks(a)).await;
    }
    stack
        .assert_fresh(acked, &a_detail, "delete", not_found)
        .await;

    // Batch.
    let batch_page = "/v1/videos?tag=batch";
    warm(&stack, &[FEED, batch_page]).await;
    let videos: Vec<Value> = (0..3)
        .map(|i| video_body(&format!("Batch {i}"), &["batch"], "published"))
        .collect();
    let (code, body) = stack
        .admin(
            Method::POST,
            "/v1/videos/batch",
            Some(json!({ "videos": videos })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let acked = Instant::now();
    stack
        .assert_fresh(acked, batch_page, "batch", total_is(3))
        .await;
    let total = published_count(&pool, None).await;
    stack
        .assert_fresh(acked, FEED, "batch", total_is(total))
        .await;

    // Seed (a bulk load by another process, straight into Postgres).
    warm(&stack, &[FEED, POPULAR]).await;
    stack.env.seed(200);
    let acked = Instant::now();
    let total = published_count(&pool, None).await;
    assert!(total > 4, "seed published nothing");
    stack
        .assert_fresh(acked, FEED, "seed", total_is(total))
        .await;
    stack
        .assert_fresh(acked, POPULAR, "seed", total_is(total))
        .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_summer_change_leaves_the_winter_page_cached(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let summer = stack.create("Sun dress", &["summer"], "published").await;
    let winter = stack.create("Wool coat", &["winter"], "published").await;
    warm(&stack, &[SUMMER, WINTER, &detail(winter)]).await;

    stack
        .patch(summer, json!({"title": "Sun dress, new", "view_count": 42}))
        .await;
    let acked = Instant::now();
    stack
        .assert_fresh(
            acked,
            SUMMER,
            "summer change",
            field_is(summer, "view_count", json!(42)),
        )
        .await;

    let (status, cache, page) = stack.get(WINTER).await;
    assert_eq!(
        (status, cache.as_str()),
        (StatusCode::OK, "HIT"),
        "winter page was purged"
    );
    assert_eq!(ids(&page), vec![winter]);
    assert_eq!(stack.get(&detail(winter)).await.1, "HIT");

    // A draft that stays a draft purges nothing at all.
    let draft = stack.create("Draft", &["winter"], "draft").await;
    stack.patch(draft, json!({"title": "Still a draft"})).await;
    // The draft's events processed (checkpoint passed them) before looking.
    let pool = PgPoolOptions::new().connect_with(connect).await.unwrap();
    let caught_up = common::wait_until(std::time::Duration::from_secs(5), || async {
        let (newest, checkpoint) = common::seq_and_checkpoint(&pool).await;
        checkpoint == newest
    })
    .await;
    assert!(caught_up);
    assert_eq!(stack.get(WINTER).await.1, "HIT");
    assert_eq!(stack.get(SUMMER).await.1, "HIT");
}
