//! The public feed's contract: envelope, orders, filters, errors and headers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{at, NewVideo, TestApp};
use shared::cache::Scope;
use sqlx::PgPool;
use uuid::Uuid;

async fn insert_many(pool: &PgPool, n: i64, tags: &[&str]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(NewVideo::published(at(i)).tags(tags).insert(pool).await);
    }
    ids
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn envelope_arithmetic_and_links(pool: PgPool) {
    let ids = insert_many(&pool, 45, &[]).await;
    NewVideo::draft().insert(&pool).await;
    let app = TestApp::start(&pool).await;

    let first = app.get("/v1/videos").await;
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(body["total_videos"], 45);
    assert_eq!(body["total_pages"], 3);
    assert_eq!(body["page"], 1);
    assert_eq!(body["page_size"], 20);
    assert_eq!(body["next"], "/v1/videos?page=2&page_size=20&sort=newest");
    assert!(body["previous"].is_null());
    assert!(body["next_cursor"].is_string());
    assert_eq!(first.ids(), ids[..20]);

    let second = app.get("/v1/videos?page=2").await.json();
    assert_eq!(second["next"], "/v1/videos?page=3&page_size=20&sort=newest");
    assert_eq!(
        second["previous"],
        "/v1/videos?page=1&page_size=20&sort=newest"
    );

    let last = app.get("/v1/videos?page=3").await;
    assert_eq!(last.ids(), ids[40..]);
    let body = last.json();
    assert!(body["next"].is_null());
    assert!(body["next_cursor"].is_null());
    assert_eq!(
        body["previous"],
        "/v1/videos?page=2&page_size=20&sort=newest"
    );

    app.get("/v1/videos?page=4").await.assert_problem(404);
    app.get("/v1/videos?page=99999999999999")
        .await
        .assert_problem(404);

    // Page size changes the arithmetic; the whole feed on one page.
    let all = app.get("/v1/videos?page_size=45&sort=popular").await.json();
    assert_eq!(all["total_pages"], 1);
    assert!(all["next"].is_null() && all["next_cursor"].is_null());
    let exact = app.get("/v1/videos?page_size=15&page=3").await.json();
    assert_eq!(exact["total_pages"], 3);
    assert!(exact["next"].is_null() && exact["next_cursor"].is_null());
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_empty_feed_has_an_empty_first_page(pool: PgPool) {
    NewVideo::draft().tags(&["summer"]).insert(&pool).await;
    let app = TestApp::start(&pool).await;
    for path in [
        "/v1/videos",
        "/v1/videos?tag=summer",
        "/v1/videos?tag=never-used",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        let body = reply.json();
        assert_eq!(body["total_videos"], 0);
        assert_eq!(body["total_pages"], 0);
        assert_eq!(body["results"].as_array().unwrap().len(), 0);
        assert!(
            body["next"].is_null() && body["previous"].is_null() && body["next_cursor"].is_null()
        );
        app.get(&format!(
            "{path}{}page=2",
            if path.contains('?') { "&" } else { "?" }
        ))
        .await
        .assert_problem(404);
    }
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn both_orders_break_ties_by_the_next_key(pool: PgPool) {
    // Equal times and equal view counts: the order must still be total.
    let mut videos = Vec::new();
    for i in 0..12_i64 {
        let video = NewVideo::published(at(i / 3)).views(i % 4 * 10);
        videos.push((video.view_count, video.published_at.unwrap(), video.id));
        video.insert(&pool).await;
    }
    let app = TestApp::start(&pool).await;

    let mut newest = videos.clone();
    newest.sort_by_key(|v| std::cmp::Reverse((v.1, v.2)));
    let newest: Vec<Uuid> = newest.into_iter().map(|v| v.2).collect();
    let mut popular = videos.clone();
    popular.sort_by_key(|v| std::cmp::Reverse(*v));
    let popular: Vec<Uuid> = popular.into_iter().map(|v| v.2).collect();

    for (sort, expected) in [("newest", &newest), ("popular", &popular)] {
        assert_eq!(
            &app.get(&format!("/v1/videos?sort={sort}&page_size=100"))
                .await
                .ids(),
            expected
        );
        // Page by page and cursor by cursor give the same sequence.
        let mut paged = Vec::new();
        for page in 1..=3 {
            paged.extend(
                app.get(&format!("/v1/videos?sort={sort}&page_size=5&page={page}"))
                    .await
                    .ids(),
            );
        }
        assert_eq!(&paged, expected, "{sort} pages");
        let mut walked = Vec::new();
        let first = app
            .get(&format!("/v1/videos?sort={sort}&page_size=5"))
            .await;
        walked.extend(first.ids());
        let mut cursor = first.json()["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let reply = app.get(&format!("/v1/videos?cursor={c}&page_size=5")).await;
            assert_eq!(reply.status, 200);
            walked.extend(reply.ids());
            let body = reply.json();
            assert!(body["page"].is_null() && body["previous"].is_null());
            assert_eq!(body["total_videos"], 12);
            assert_eq!(body["total_pages"], 3);
            cursor = body["next_cursor"].as_str().map(str::to_owned);
            match &cursor {
                Some(next) => assert_eq!(
                    body["next"],
                    format!("/v1/videos?cursor={next}&page_size=5")
                ),
                None => assert!(body["next"].is_null()),
            }
        }
        assert_eq!(&walked, expected, "{sort} cursors");
    }
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn tag_filter_is_case_insensitive_and_exact(pool: PgPool) {
    let summer = insert_many(&pool, 3, &["summer", "linen"]).await;
    insert_many(&pool, 2, &["winter"]).await;
    NewVideo::published(at(100))
        .tags(&["summery"])
        .insert(&pool)
        .await;
    let app = TestApp::start(&pool).await;

    let lower = app.get("/v1/videos?tag=summer&page_size=2").await;
    assert_eq!(lower.ids(), summer[..2]);
    let body = lower.json();
    assert_eq!(body["total_videos"], 3);
    assert_eq!(
        body["next"],
        "/v1/videos?page=2&page_size=2&sort=newest&tag=summer"
    );
    let upper = app.get("/v1/videos?tag=%20SUMMER&page_size=2").await;
    assert_eq!(upper.ids(), summer[..2]);
    assert_eq!(upper.x_cache(), "HIT", "the same normalized request");
    assert_eq!(
        app.get("/v1/videos?tag=linen&sort=popular").await.json()["total_videos"],
        3
    );

    // A cursor keeps its tag.
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/v1/videos?cursor={cursor}&page_size=2"))
        .await;
    assert_eq!(rest.ids(), summer[2..]);
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn drafts_are_never_visible(pool: PgPool) {
    let published = NewVideo::published(at(1))
        .tags(&["summer"])
        .insert(&pool)
        .await;
    let draft = NewVideo::draft().tags(&["summer"]).insert(&pool).await;
    let app = TestApp::start(&pool).await;

    for path in [
        "/v1/videos",
        "/v1/videos?tag=summer",
        "/v1/videos?sort=popular",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.ids(), vec![published], "{path}");
        assert_eq!(reply.json()["total_videos"], 1);
    }
    app.get(&format!("/v1/videos/{draft}"))
        .await
        .assert_problem(404);

    // Unpublishing hides a video that was visible (after the purge a write causes).
    sqlx::query("update videos set status = 'draft' where id = $1")
        .bind(published)
        .execute(&pool)
        .await
        .unwrap();
    app.purge(&[
        Scope::Feed,
        Scope::Tag("summer".into()),
        Scope::Video(published),
    ])
    .await;
    assert!(app.get("/v1/videos").await.ids().is_empty());
    app.get(&format!("/v1/videos/{published}"))
        .await
        .assert_problem(404);
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn detail_shows_the_published_video(pool: PgPool) {
    let id = NewVideo::published(at(1))
        .tags(&["summer", "linen"])
        .views(7)
        .insert(&pool)
        .await;
    let app = TestApp::start(&pool).await;

    let reply = app.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.x_cache(), "MISS");
    let video = reply.json();
    assert_eq!(video["id"], id.to_string());
    assert_eq!(video["tags"], serde_json::json!(["summer", "linen"]));
    assert_eq!(video["view_count"], 7);
    assert_eq!(video["status"], "published");
    assert_eq!(video["published_at"], "2025-12-31T23:59:00Z");
    assert_eq!(video["version"], 1);
    for field in [
        "title",
        "description",
        "video_url",
        "thumbnail_url",
        "duration_seconds",
        "created_at",
        "updated_at",
    ] {
        assert!(video.get(field).is_some(), "{field}");
    }
    let again = app.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(again.x_cache(), "HIT");
    assert_eq!(again.body, reply.body);
    assert_eq!(again.header("etag"), reply.header("etag"));

    app.get(&format!("/v1/videos/{}", Uuid::now_v7()))
        .await
        .assert_problem(404);
    app.get("/v1/videos/not-a-uuid").await.assert_problem(404);
    // Not even UTF-8 once decoded.
    app.get("/v1/videos/%ff").await.assert_problem(404);
    app.get("/v1/nothing-here").await.assert_problem(404);
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn miss_then_hit_with_identical_bytes(pool: PgPool) {
    insert_many(&pool, 3, &["summer"]).await;
    let app = TestApp::start(&pool).await;
    for path in [
        "/v1/videos",
        "/v1/videos?sort=popular&tag=summer&page_size=2",
    ] {
        let miss = app.get(path).await;
        assert_eq!(miss.x_cache(), "MISS", "{path}");
        let hit = app.get(path).await;
        assert_eq!(hit.x_cache(), "HIT", "{path}");
        assert_eq!(hit.body, miss.body);
        assert_eq!(hit.header("etag"), miss.header("etag"));
        assert_eq!(hit.header("cache-control"), "no-cache");
        assert_eq!(hit.header("content-type"), "application/json");
    }
    // Cursor pages are cached too.
    let cursor = app.get("/v1/videos?page_size=1").await.json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/videos?cursor={cursor}&page_size=1");
    assert_eq!(app.get(&path).await.x_cache(), "MISS");
    assert_eq!(app.get(&path).await.x_cache(), "HIT");
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn unknown_parameters_share_a_cache_entry(pool: PgPool) {
    insert_many(&pool, 2, &[]).await;
    let app = TestApp::start(&pool).await;
    assert_eq!(app.get("/v1/videos?utm_source=ad").await.x_cache(), "MISS");
    for path in [
        "/v1/videos",
        "/v1/videos?page=1&page_size=20&sort=newest",
        "/v1/videos?sort=newest&fbclid=x&page=1",
        "/v1/videos?status=draft",
    ] {
        assert_eq!(app.get(path).await.x_cache(), "HIT", "{path}");
    }
    assert_eq!(app.get("/v1/videos?page_size=19").await.x_cache(), "MISS");
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_bad_parameter_is_a_400(pool: PgPool) {
    NewVideo::published(at(1))
        .tags(&["summer"])
        .insert(&pool)
        .await;
    NewVideo::published(at(2))
        .tags(&["summer"])
        .insert(&pool)
        .await;
    let app = TestApp::start(&pool).await;
    let cursor = app
        .get("/v1/videos?sort=popular&tag=summer&page_size=1")
        .await
        .json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let long_tag = "a".repeat(51);
    let bad = [
        "page=".to_owned(),
        "page=abc".into(),
        "page=0".into(),
        "page=-1".into(),
        "page=1.5".into(),
        "page=1&page=2".into(),
        "page_size=".into(),
        "page_size=0".into(),
        "page_size=101".into(),
        "page_size=x".into(),
        "sort=".into(),
        "sort=oldest".into(),
        "sort=NEWEST".into(),
        "tag=".into(),
        "tag=%20%20".into(),
        format!("tag={long_tag}"),
        "tag=a%07b".into(),
        "cursor=".into(),
        "cursor=garbage".into(),
        format!("cursor={cursor}x"),
        format!("cursor={cursor}&page=1"),
        format!("cursor={cursor}&sort=newest"),
        format!("cursor={cursor}&tag=winter"),
    ];
    for query in bad {
        app.get(&format!("/v1/videos?{query}"))
            .await
            .assert_problem(400);
    }
    // Repeating the cursor's own sort and tag is fine.
    let ok = app
        .get(&format!(
            "/v1/videos?cursor={cursor}&sort=popular&tag=Summer"
        ))
        .await;
    assert_eq!(ok.status, 200);
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn if_none_match_gives_304(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let app = TestApp::start(&pool).await;
    for path in ["/v1/videos".to_owned(), format!("/v1/videos/{id}")] {
        let first = app.get(&path).await;
        let etag = first.header("etag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong: {etag}"
        );
        for candidate in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".into(),
        ] {
            let reply = app.get_with(&path, &[("if-none-match", &candidate)]).await;
            assert_eq!(reply.status, 304, "{candidate}");
            assert!(reply.body.is_empty());
            assert_eq!(reply.header("etag"), etag);
            assert_eq!(reply.header("cache-control"), "no-cache");
            assert_eq!(reply.x_cache(), "HIT");
        }
        let other = app.get_with(&path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(other.status, 200);
        assert_eq!(other.body, first.body);
    }
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn compressed_when_the_client_accepts_it(pool: PgPool) {
    insert_many(&pool, 20, &["summer"]).await;
    let app = TestApp::start(&pool).await;
    let plain = app.get("/v1/videos").await;
    assert!(plain.headers.get("content-encoding").is_none());
    for x_cache in ["HIT", "HIT"] {
        let gzip = app
            .get_with("/v1/videos", &[("accept-encoding", "br, gzip")])
            .await;
        assert_eq!(gzip.x_cache(), x_cache);
        assert_eq!(gzip.header("content-encoding"), "gzip");
        assert!(gzip
            .header("vary")
            .to_ascii_lowercase()
            .contains("accept-encoding"));
        assert_eq!(gzip.header("etag"), plain.header("etag"));
        assert_eq!(&gzip.body[..2], &[0x1f, 0x8b]);
        assert!(gzip.body.len() < plain.body.len());
    }
    let refused = app
        .get_with("/v1/videos", &[("accept-encoding", "gzip;q=0")])
        .await;
    assert!(refused.headers.get("content-encoding").is_none());

    // A decompressing client reads the same document.
    let decoded: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/videos", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(decoded, plain.json());
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn cors_allows_reads_from_any_origin(pool: PgPool) {
    let app = TestApp::start(&pool).await;
    let reply = app
        .get_with("/v1/videos", &[("origin", "https://shop.example")])
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    let exposed = reply
        .header("access-control-expose-headers")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("x-cache"),
        "{exposed}"
    );

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/videos", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "if-none-match")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("GET"), "{methods}");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn without_redis_every_response_bypasses(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let config = common::config(&common::database_url(&pool), None, &common::random_prefix());
    let app = TestApp::start_with(config, read_api::Hooks::default()).await;
    for _ in 0..2 {
        let reply = app.get("/v1/videos").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.x_cache(), "BYPASS");
        let etag = reply.header("etag").to_owned();
        let revalidated = app
            .get_with("/v1/videos", &[("if-none-match", &etag)])
            .await;
        assert_eq!(revalidated.status, 304);
        assert_eq!(
            app.get(&format!("/v1/videos/{id}")).await.x_cache(),
            "BYPASS"
        );
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["checks"]["redis"]["ok"], false);
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn operational_endpoints(pool: PgPool) {
    let app = TestApp::start(&pool).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    let checks = &ready.json()["checks"];
    assert_eq!(checks["postgres"]["ok"], true);
    assert_eq!(checks["redis"]["ok"], true);
    assert_eq!(checks["redis"]["required"], false);

    app.get("/v1/videos").await;
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(metrics.contains("cache_requests_total"), "{metrics}");
    assert!(metrics.contains("http_requests_total"));

    let openapi = app.get("/openapi.json").await.json();
    assert!(openapi["paths"]["/v1/videos"]["get"].is_object());
    assert!(openapi["paths"]["/v1/videos/{id}"]["get"].is_object());
    let gzip = app
        .get_with("/openapi.json", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gzip.header("content-encoding"), "gzip");
    let post = app
        .client
        .post(format!("{}/v1/videos", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["content-type"], "application/problem+json");
    app.stop().await;
}
