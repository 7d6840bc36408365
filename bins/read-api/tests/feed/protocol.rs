//! How pages are served: cache misses and hits, parameters and their errors,
//! conditional requests, compression, CORS, no Redis, operational endpoints.

use super::*;

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
