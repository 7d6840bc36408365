//! Freshness under concurrency: the stale-set race (guarantee 2), single
//! flight (guarantee 3), and cursor walks while the feed changes.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use common::{at, set_title, wait_until, Gate, NewVideo, TestApp};
use read_api::Hooks;
use shared::cache::Scope;
use sqlx::PgPool;
use uuid::Uuid;

/// Holds the first miss between its query and its store.
fn gated_hooks() -> (Hooks, Gate) {
    let (hook, gate) = common::gate();
    (
        Hooks {
            before_store: Some(hook),
            ..Hooks::default()
        },
        gate,
    )
}

async fn start_gated(pool: &PgPool) -> (Arc<TestApp>, Gate) {
    let (hooks, gate) = gated_hooks();
    let config = common::config(
        &common::database_url(pool),
        Some(common::redis()),
        &common::random_prefix(),
    );
    (Arc::new(TestApp::start_with(config, hooks).await), gate)
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_reader_that_queried_before_a_write_cannot_cache_its_stale_page(pool: PgPool) {
    let id = NewVideo::published(at(1))
        .tags(&["summer"])
        .insert(&pool)
        .await;
    for path in [
        "/v1/videos?tag=summer".to_owned(),
        format!("/v1/videos/{id}"),
    ] {
        let (app, mut gate) = start_gated(&pool).await;
        set_title(&pool, id, "before").await;
        app.purge(&[Scope::Tag("summer".into()), Scope::Video(id)])
            .await;

        // A reader misses, queries Postgres, and is held before its store.
        let reader = tokio::spawn({
            let app = Arc::clone(&app);
            let path = path.clone();
            async move { app.get(&path).await }
        });
        let held_key = gate.wait_reached().await;

        // Meanwhile a write commits and the invalidator purges its scopes.
        set_title(&pool, id, "after").await;
        app.purge(&[Scope::Feed, Scope::Tag("summer".into()), Scope::Video(id)])
            .await;

        gate.release();
        let stale = reader.await.unwrap();
        assert_eq!(stale.x_cache(), "MISS");
        assert!(
            String::from_utf8_lossy(&stale.body).contains("\"before\""),
            "{path}"
        );

        // Its page was stored, but under the replaced generation...
        let redis = redis::Client::open(common::redis()).unwrap();
        let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&held_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(stored.is_some(), "the held reader did store its page");

        // ...so the next read misses and is fresh, and then caches the fresh page.
        let next = app.get(&path).await;
        assert_eq!(next.x_cache(), "MISS", "{path}");
        assert!(
            String::from_utf8_lossy(&next.body).contains("\"after\""),
            "{path}"
        );
        let cached = app.get(&path).await;
        assert_eq!(cached.x_cache(), "HIT");
        assert_eq!(cached.body, next.body);
        Arc::into_inner(app).unwrap().stop().await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn concurrent_misses_for_one_key_run_one_query(pool: PgPool) {
    for i in 0..5 {
        NewVideo::published(at(i)).insert(&pool).await;
    }
    let (app, mut gate) = start_gated(&pool).await;
    let get = |path: &'static str| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.get(path).await })
    };
    let first = get("/v1/videos?sort=popular");
    gate.wait_reached().await;
    let others: Vec<_> = (0..15)
        .map(|_| get("/v1/videos?sort=popular&utm=x"))
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            app.stats.joined() == 15
        })
        .await,
        "every concurrent miss joined the first one's query"
    );
    gate.release();

    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    for other in others {
        let other = other.await.unwrap();
        assert_eq!(other.status, 200);
        assert_eq!(other.x_cache(), "MISS");
        assert_eq!(other.body, first.body);
        assert_eq!(other.header("etag"), first.header("etag"));
    }
    assert_eq!(app.stats.queries(), 1, "16 concurrent misses, one query");

    // Later requests are hits; a different key is a query of its own.
    assert_eq!(app.get("/v1/videos?sort=popular").await.x_cache(), "HIT");
    assert_eq!(app.get("/v1/videos?sort=newest").await.x_cache(), "MISS");
    assert_eq!(app.stats.queries(), 2);
    Arc::into_inner(app).unwrap().stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_write_is_visible_to_the_next_read_after_its_purge(pool: PgPool) {
    let id = NewVideo::published(at(1)).views(5).insert(&pool).await;
    let app = TestApp::start(&pool).await;
    let path = format!("/v1/videos/{id}");
    assert_eq!(app.get("/v1/videos?sort=popular").await.x_cache(), "MISS");
    assert_eq!(app.get(&path).await.x_cache(), "MISS");
    assert_eq!(app.get(&path).await.x_cache(), "HIT");

    sqlx::query("update videos set view_count = 6 where id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    app.purge(&[Scope::Feed, Scope::Video(id)]).await;
    let detail = app.get(&path).await;
    assert_eq!(detail.x_cache(), "MISS");
    assert_eq!(detail.json()["view_count"], 6);
    assert_eq!(detail.json()["version"], 2);
    let feed = app.get("/v1/videos?sort=popular").await;
    assert_eq!(feed.x_cache(), "MISS");
    assert_eq!(feed.json()["results"][0]["view_count"], 6);
    app.stop().await;
}

/// Walks a feed by cursor while videos are inserted, updated and deleted
/// between pages; the videos left alone must each appear exactly once, in order.
async fn walk_while_changing(pool: &PgPool, app: &TestApp, sort: &str) {
    // Ties on time in pairs, on views in fours.
    let mut originals = Vec::new();
    for i in 0..60 {
        originals.push(
            NewVideo::published(at(i / 2))
                .views(i % 4)
                .tags(&["walk"])
                .insert(pool)
                .await,
        );
    }
    let mut touched: HashSet<Uuid> = HashSet::new();
    let mut seen: Vec<Uuid> = Vec::new();
    let mut next = Some(format!("/v1/videos?sort={sort}&tag=walk&page_size=7"));
    let mut round = 0_i64;
    while let Some(path) = next {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{path}");
        seen.extend(reply.ids());
        let cursor = reply.json()["next_cursor"].as_str().map(str::to_owned);
        next = cursor.map(|c| format!("/v1/videos?cursor={c}&page_size=7"));

        round += 1;
        // Others change: new videos at both ends and in the middle...
        for minutes in [-round, 15 + round, 100 + round] {
            NewVideo::published(at(minutes))
                .views(round % 5)
                .tags(&["walk"])
                .insert(pool)
                .await;
        }
        // ...an unvisited and a visited original deleted, another one unpublished,
        // another re-counted (which moves it in `popular`).
        let pick =
            |k: usize| originals[(usize::try_from(round).unwrap() * 7 + k) % originals.len()];
        let (gone, unpublished, recounted) = (pick(3), pick(11), pick(23));
        let visited = seen[seen.len() / 2];
        for id in [gone, visited] {
            sqlx::query("delete from videos where id = $1")
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        }
        sqlx::query("update videos set status = 'draft' where id = $1")
            .bind(unpublished)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("update videos set view_count = view_count + 3 where id = $1")
            .bind(recounted)
            .execute(pool)
            .await
            .unwrap();
        touched.extend([gone, visited, unpublished, recounted]);
        app.purge(&[Scope::Feed, Scope::Tag("walk".into())]).await;
        assert!(round < 100, "the walk ends");
    }

    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for id in &seen {
        *counts.entry(*id).or_default() += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "{sort}: a video was returned twice"
    );
    let survivors: Vec<Uuid> = originals
        .iter()
        .copied()
        .filter(|id| !touched.contains(id))
        .collect();
    assert!(survivors.len() > 10, "the test leaves enough videos alone");
    let seen_survivors: Vec<Uuid> = seen
        .iter()
        .copied()
        .filter(|id| survivors.contains(id))
        .collect();
    // In the order the database gives them now.
    let order = if sort == "popular" {
        "view_count desc, published_at desc, id desc"
    } else {
        "published_at desc, id desc"
    };
    let expected: Vec<Uuid> = sqlx::query_scalar::<_, Uuid>(&format!(
        "select id from videos where id = any($1) order by {order}"
    ))
    .bind(&survivors)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        seen_survivors, expected,
        "{sort}: every untouched video once, in order"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_cursor_walk_sees_every_surviving_video_once_newest(pool: PgPool) {
    let app = TestApp::start(&pool).await;
    walk_while_changing(&pool, &app, "newest").await;
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_cursor_walk_sees_every_surviving_video_once_popular(pool: PgPool) {
    let app = TestApp::start(&pool).await;
    walk_while_changing(&pool, &app, "popular").await;
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn processes_share_entries_and_no_in_process_copy_outlives_a_purge(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    set_title(&pool, id, "before").await;
    let prefix = common::random_prefix();
    let url = common::database_url(&pool);
    let first = TestApp::start_with(
        common::config(&url, Some(common::redis()), &prefix),
        Hooks::default(),
    )
    .await;
    let second = TestApp::start_with(
        common::config(&url, Some(common::redis()), &prefix),
        Hooks::default(),
    )
    .await;
    let detail = format!("/v1/videos/{id}");
    for path in ["/v1/videos", detail.as_str()] {
        assert_eq!(first.get(path).await.x_cache(), "MISS");
        // The other process finds the entry in Redis, then keeps a copy.
        assert_eq!(second.get(path).await.x_cache(), "HIT");
        assert_eq!(second.get(path).await.x_cache(), "HIT");
        assert_eq!(first.get(path).await.x_cache(), "HIT");
    }
    assert_eq!(first.stats.queries() + second.stats.queries(), 2);

    set_title(&pool, id, "after").await;
    second.purge(&[Scope::Feed, Scope::Video(id)]).await;
    for path in ["/v1/videos", detail.as_str()] {
        for app in [&first, &second] {
            let reply = app.get(path).await;
            assert_eq!(reply.status, 200);
            let body = String::from_utf8_lossy(&reply.body).into_owned();
            assert!(
                body.contains("\"after\"") && !body.contains("\"before\""),
                "{path}: {body}"
            );
        }
    }
    first.stop().await;
    second.stop().await;
}
