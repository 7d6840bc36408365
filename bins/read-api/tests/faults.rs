//! Degradation (guarantees 4 and 5) against private Redis and Postgres servers
//! that the tests stop, freeze (SIGSTOP) and restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{at, wait_until, NewVideo, TestApp};
use read_api::Hooks;
use sqlx::PgPool;
use test_support::{PrivatePostgres, PrivateRedis};

/// Half the Redis timeout the tests configure: a request that waited for
/// Redis takes the whole timeout and fails this; one served from Postgres on
/// a loaded machine stays far below it. (Behaviour, not speed: the benchmarks
/// measure how fast a bypassed request is.)
const NO_DELAY: Duration = Duration::from_millis(REDIS_TIMEOUT_MS / 2);
const REDIS_TIMEOUT_MS: u64 = 4_000;

async fn start_with_redis(pool: &PgPool, redis_url: &str) -> TestApp {
    let mut config = common::config(
        &common::database_url(pool),
        Some(redis_url),
        &common::random_prefix(),
    );
    config.redis_timeout_ms = REDIS_TIMEOUT_MS;
    // The production default: a connect that waits is the delay under test.
    config.redis_connect_timeout_ms = 250;
    // Long enough that no probe falls into a measured stretch; recovery comes
    // from the epoch refresher, which probes every second anyway.
    config.redis_cooloff_ms = 60_000;
    TestApp::start_with(config, Hooks::default()).await
}

/// Requests while Redis is unusable: after the breaker opens, every one is a
/// BYPASS served without waiting for Redis.
async fn assert_bypassed_without_delay(app: &TestApp, paths: &[&str]) {
    // The first calls find out (each bounded by the timeout) and open the breaker.
    for _ in 0..3 {
        let reply = app.get(paths[0]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.x_cache(), "BYPASS");
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        for path in paths {
            let started = Instant::now();
            let reply = app.get(path).await;
            slowest = slowest.max(started.elapsed());
            assert_eq!(reply.status, 200, "{path}");
            assert_eq!(reply.x_cache(), "BYPASS", "{path}");
        }
    }
    assert!(
        slowest < NO_DELAY,
        "a request waited for Redis: {slowest:?}"
    );
}

/// A copy held in process memory is vouched for by the tracking connection's
/// heartbeat lease (250 ms): it may answer a little after Redis froze, never
/// for long. Past that, requests go to Redis (and the breaker) as before.
async fn in_process_hits_stop_within_the_lease(app: &TestApp, path: &str) {
    let frozen = Instant::now();
    while app.get(path).await.x_cache() == "HIT" {
        assert!(
            frozen.elapsed() < Duration::from_millis(500),
            "an in-process copy was served {:?} after Redis froze",
            frozen.elapsed()
        );
    }
}

/// Caching works: a fresh key misses, then hits.
async fn caching_resumes(app: &TestApp, deadline: Duration) -> bool {
    wait_until(deadline, || async {
        let path = format!("/v1/videos?page_size={}", rand_page_size());
        app.get(&path).await.x_cache() == "MISS" && app.get(&path).await.x_cache() == "HIT"
    })
    .await
}

fn rand_page_size() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) % 100 + 1
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_hung_or_dead_redis_costs_no_delay_and_caching_resumes(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let detail = format!("/v1/videos/{id}");
    let mut redis = PrivateRedis::start().await.unwrap();
    let app = start_with_redis(&pool, &redis.url()).await;
    assert_eq!(app.get("/v1/videos").await.x_cache(), "MISS");
    assert_eq!(app.get("/v1/videos").await.x_cache(), "HIT");

    // Hung: connections stay open, nothing answers.
    redis.pause().unwrap();
    in_process_hits_stop_within_the_lease(&app, "/v1/videos").await;
    assert_bypassed_without_delay(&app, &["/v1/videos", &detail]).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "Redis is optional");
    assert_eq!(ready.json()["checks"]["redis"]["ok"], false);
    redis.resume().unwrap();
    assert!(
        caching_resumes(&app, Duration::from_secs(15)).await,
        "after a freeze"
    );

    // Dead: connections refused.
    redis.stop().await.unwrap();
    assert_bypassed_without_delay(&app, &["/v1/videos", &detail]).await;
    // Back, empty.
    redis.restart().await.unwrap();
    assert!(
        caching_resumes(&app, Duration::from_secs(15)).await,
        "after a restart"
    );
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_redis_down_at_start_is_picked_up_when_it_comes(pool: PgPool) {
    NewVideo::published(at(1)).insert(&pool).await;
    let mut redis = PrivateRedis::start().await.unwrap();
    redis.stop().await.unwrap();
    let app = start_with_redis(&pool, &redis.url()).await;
    let started = Instant::now();
    let reply = app.get("/v1/videos").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.x_cache(), "BYPASS");
    assert!(started.elapsed() < NO_DELAY, "no connect delay per request");

    redis.restart().await.unwrap();
    assert!(caching_resumes(&app, Duration::from_secs(15)).await);
    app.stop().await;
}

#[tokio::test]
async fn with_postgres_down_hits_are_served_and_misses_get_503() {
    let mut pg = PrivatePostgres::start().await.unwrap();
    pg.create_database("feed").await.unwrap();
    let url = pg.url("feed");
    let pool = PgPool::connect(&url).await.unwrap();
    shared::db::MIGRATOR.run(&pool).await.unwrap();
    let id = NewVideo::published(at(1)).insert(&pool).await;
    pool.close().await;

    let mut config = common::config(&url, Some(common::redis()), &common::random_prefix());
    config.database.database_acquire_timeout_ms = 500;
    let app = TestApp::start_with(config, Hooks::default()).await;
    let detail = format!("/v1/videos/{id}");
    for path in ["/v1/videos", &detail] {
        assert_eq!(app.get(path).await.x_cache(), "MISS");
    }

    pg.stop().await.unwrap();
    for path in ["/v1/videos", &detail] {
        let hit = app.get(path).await;
        assert_eq!(hit.status, 200, "{path}");
        assert_eq!(hit.x_cache(), "HIT");
    }
    for path in ["/v1/videos?page_size=3", "/v1/videos?sort=popular"] {
        let miss = app.get(path).await;
        miss.assert_problem(503);
        assert!(miss.header("retry-after").parse::<u32>().unwrap() > 0);
    }
    app.get("/readyz").await.assert_problem(503);

    pg.restart().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || async {
            app.get("/v1/videos?page_size=3").await.status == 200
        })
        .await,
        "misses are served again once Postgres is back"
    );
    assert_eq!(app.get("/readyz").await.status, 200);
    app.stop().await;
}
