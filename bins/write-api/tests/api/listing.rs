use std::cmp::Reverse;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{problem, App};

pub type Filter = Box<dyn Fn(&Value) -> bool>;

/// A mix of undated drafts, dated drafts and published videos, with ties in
/// both sort keys.
async fn catalogue(app: &App) -> Vec<Value> {
    let specs = [
        ("draft", None, 0, vec!["summer"]),
        ("published", Some("2026-01-01T00:00:00Z"), 5, vec!["summer"]),
        ("published", Some("2026-01-01T00:00:00Z"), 5, vec!["winter"]),
        (
            "draft",
            Some("2026-02-01T00:00:00Z"),
            9,
            vec!["summer", "linen"],
        ),
        ("published", Some("2026-03-01T00:00:00Z"), 1, vec![]),
        ("draft", None, 7, vec!["winter"]),
        ("published", Some("2025-12-01T00:00:00Z"), 9, vec!["summer"]),
        ("published", None, 0, vec!["linen"]),
        ("draft", None, 5, vec![]),
    ];
    let mut created = Vec::new();
    for (i, (status, published_at, views, tags)) in specs.into_iter().enumerate() {
        let mut body = json!({"title": format!("v{i}"), "video_url": "https://e.com/v", "status": status,
                              "view_count": views, "tags": tags});
        if let Some(at) = published_at {
            body["published_at"] = json!(at);
        }
        created.push(app.create(body).await);
    }
    created
}

fn newest_key(v: &Value) -> (bool, Reverse<String>, Reverse<String>) {
    // Drafts without a date first, then published_at desc, then id desc
    // (RFC 3339 UTC strings of one format sort like the times).
    let at = v["published_at"].as_str().map(str::to_owned);
    (
        at.is_some(),
        Reverse(at.unwrap_or_default()),
        Reverse(v["id"].as_str().unwrap().to_owned()),
    )
}

pub fn expected(all: &[Value], sort: &str, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut rows: Vec<&Value> = all.iter().filter(|v| keep(v)).collect();
    match sort {
        "newest" => rows.sort_by_key(|v| newest_key(v)),
        _ => rows.sort_by_key(|v| (Reverse(v["view_count"].as_i64().unwrap()), newest_key(v))),
    }
    rows.iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn page(app: &App, query: &str) -> Value {
    let response = app.get(&format!("/v1/videos?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn listing_orders_filters_and_counts(pool: PgPool) {
    let app = App::start(pool).await;
    let all = catalogue(&app).await;
    let cases: Vec<(&str, Filter)> = vec![
        ("", Box::new(|_| true)),
        ("&status=all", Box::new(|_| true)),
        ("&status=draft", Box::new(|v| v["status"] == "draft")),
        (
            "&status=published",
            Box::new(|v| v["status"] == "published"),
        ),
        (
            "&tag=Summer",
            Box::new(|v| v["tags"].as_array().unwrap().contains(&json!("summer"))),
        ),
        (
            "&tag=summer&status=draft",
            Box::new(|v| {
                v["status"] == "draft" && v["tags"].as_array().unwrap().contains(&json!("summer"))
            }),
        ),
        ("&tag=nothing", Box::new(|_| false)),
    ];
    for (filter, keep) in &cases {
        for sort in ["newest", "popular"] {
            let want = expected(&all, sort, keep);
            let first = page(&app, &format!("sort={sort}&page_size=100{filter}")).await;
            assert_eq!(ids(&first), want, "sort={sort}{filter}");
            assert_eq!(first["total_videos"], want.len(), "sort={sort}{filter}");

            // Walking the cursors visits the same videos in the same order.
            let mut walked = Vec::new();
            let mut query = format!("sort={sort}&page_size=2{filter}");
            loop {
                let page = page(&app, &query).await;
                assert_eq!(page["total_videos"], want.len());
                walked.extend(ids(&page));
                match page["next_cursor"].as_str() {
                    Some(cursor) => query = format!("cursor={cursor}&page_size=2"),
                    None => break,
                }
            }
            assert_eq!(walked, want, "cursor walk sort={sort}{filter}");

            // So does walking the pages.
            let mut paged = Vec::new();
            let mut link = Some(format!("/v1/videos?page=1&page_size=3&sort={sort}{filter}"));
            while let Some(next) = link {
                let response = app.get(&next).await;
                assert_eq!(response.status(), StatusCode::OK);
                let page: Value = response.json().await.unwrap();
                paged.extend(ids(&page));
                link = page["next"].as_str().map(str::to_owned);
            }
            assert_eq!(paged, want, "page walk sort={sort}{filter}");
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn listing_envelope_and_errors(pool: PgPool) {
    let app = App::start(pool).await;
    let empty = page(&app, "").await;
    assert_eq!(empty["total_videos"], 0);
    assert_eq!(empty["total_pages"], 0);
    assert_eq!(empty["results"], json!([]));
    problem(app.get("/v1/videos?page=2").await, StatusCode::NOT_FOUND).await;

    catalogue(&app).await;
    let second = page(&app, "page=2&page_size=2&status=draft").await;
    assert_eq!(second["total_videos"], 4);
    assert_eq!(second["total_pages"], 2);
    assert_eq!(second["page"], 2);
    assert_eq!(second["next"], Value::Null);
    assert_eq!(
        second["previous"],
        "/v1/videos?page=1&page_size=2&sort=newest&status=draft"
    );
    problem(
        app.get("/v1/videos?page=3&page_size=2&status=draft").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    for bad in [
        "page=0",
        "page=x",
        "page_size=101",
        "sort=oldest",
        "status=live",
        "status=",
        "cursor=junk",
        "tag=",
    ] {
        problem(
            app.get(&format!("/v1/videos?{bad}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    // A cursor of one status filter is not accepted with another.
    let drafts = page(&app, "page_size=1&status=draft").await;
    let cursor = drafts["next_cursor"].as_str().unwrap();
    problem(
        app.get(&format!("/v1/videos?cursor={cursor}&status=published"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let next = page(&app, &format!("cursor={cursor}&page_size=1")).await;
    assert_eq!(next["page"], Value::Null);
    assert_eq!(next["results"][0]["status"], "draft");
}

/// Two tags with the same `hashtext` (the listing indexes' leading key, found
/// by a search over generated names): each tag's listing, search and counts
/// hold its own videos only, through creates, a retag and a delete, whose
/// trigger finds the old listing rows by that hash.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn tags_sharing_a_hash_keep_their_own_videos(pool: PgPool) {
    let (a, b) = ("tag158897", "tag197213");
    let same: bool = sqlx::query_scalar("select hashtext($1) = hashtext($2)")
        .bind(a)
        .bind(b)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        same,
        "the two tags must collide for this test to mean anything"
    );
    let app = App::start(pool).await;
    let mut all = Vec::new();
    for (i, (tag, status)) in [
        (a, "published"),
        (b, "published"),
        (a, "draft"),
        (b, "draft"),
        (a, "published"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({"title": format!("hash twin {i}"), "video_url": "https://e.com/v",
                              "status": status, "view_count": i, "tags": [tag]});
        if status == "published" {
            body["published_at"] = json!(format!("2026-0{}-01T00:00:00Z", i + 1));
        }
        all.push(app.create(body).await);
    }
    check_twins(&app, &all, [a, b]).await;

    // Retag a video from one twin to the other, delete one: the trigger moves
    // and removes exactly that video's listing rows.
    let moved = all[0]["id"].as_str().unwrap().to_owned();
    let response = app
        .patch(&format!("/v1/videos/{moved}"), &json!({"tags": [b]}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    all[0] = response.json().await.unwrap();
    let gone = all[3]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/v1/videos/{gone}")).await.status(),
        StatusCode::NO_CONTENT
    );
    all.remove(3);
    check_twins(&app, &all, [a, b]).await;
}

/// Every listing of each tag (both sorts, every status, with and without a
/// search) holds exactly that tag's videos, totals included.
async fn check_twins(app: &App, all: &[Value], tags: [&str; 2]) {
    for tag in tags {
        let has = |v: &Value| v["tags"].as_array().unwrap().contains(&json!(tag));
        for sort in ["newest", "popular"] {
            for (status, keep) in [
                ("all", None),
                ("published", Some("published")),
                ("draft", Some("draft")),
            ] {
                let want = expected(all, sort, |v| {
                    has(v) && keep.is_none_or(|s| v["status"] == s)
                });
                for q in ["", "&q=hash%20twin"] {
                    let query = format!("tag={tag}&sort={sort}&status={status}&page_size=100{q}");
                    let got = page(app, &query).await;
                    assert_eq!(ids(&got), want, "{query}");
                    assert_eq!(got["total_videos"], want.len(), "{query}");
                }
            }
        }
    }
}
