//! What the pages hold: envelope arithmetic and links, orders and their
//! ties, the tag filter, drafts, the detail page.

use super::*;

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
