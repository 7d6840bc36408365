//! The in-process layer (L1) that Redis invalidates by push: hits without a
//! Redis round trip, and every way an invalidation could be missed (a race
//! with a lookup, a killed tracking connection, FLUSHALL, a frozen Redis,
//! Redis restarted empty or with old data, two instances on one Redis).

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod restarts;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{at, set_title, wait_until, NewVideo, TestApp};
use read_api::Hooks;
use shared::cache::Scope;
use sqlx::PgPool;
use test_support::PrivateRedis;

/// Guarantee 1's bound.
const FRESH_WITHIN: Duration = Duration::from_secs(1);
/// The tracking lease (`cache::tracking::LEASE`): how long an in-process copy
/// may be served after the last heartbeat Redis answered.
const LEASE: Duration = Duration::from_millis(250);

async fn start(pool: &PgPool, redis_url: &str, prefix: &str, hooks: Hooks) -> TestApp {
    let config = common::config(&common::database_url(pool), Some(redis_url), prefix);
    TestApp::start_with(config, hooks).await
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(series)?;
            // A series given up to an open label value matches any value.
            let value = if series.ends_with('"') && !series.ends_with("\"}") {
                rest.rsplit_once(' ')?.1
            } else {
                rest
            };
            value.trim().parse().ok()
        })
        .unwrap_or(0.0)
}

async fn local_hits(app: &TestApp) -> f64 {
    metric(app, "cache_hits_total{layer=\"local\"}").await
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Reads `path` until it answers from process memory (the tracking
/// connection is up and vouches for the scope).
async fn until_local_hit(app: &TestApp, path: &str) {
    let reached = wait_until(Duration::from_secs(10), || async {
        let before = local_hits(app).await;
        app.get(path).await.x_cache() == "HIT" && local_hits(app).await > before
    })
    .await;
    assert!(reached, "{path} never became an in-process hit");
}

/// One published video, a private Redis and an app on it whose feed page is
/// served from process memory.
async fn held_in_memory(pool: &PgPool) -> (uuid::Uuid, PrivateRedis, TestApp) {
    let id = NewVideo::published(at(1)).insert(pool).await;
    let redis = PrivateRedis::start().await.unwrap();
    let app = start(
        pool,
        &redis.url(),
        &common::random_prefix(),
        Hooks::default(),
    )
    .await;
    assert_eq!(app.get("/v1/videos").await.x_cache(), "MISS");
    until_local_hit(&app, "/v1/videos").await;
    (id, redis, app)
}

fn shows(reply: &common::Reply, title: &str) -> bool {
    String::from_utf8_lossy(&reply.body).contains(&format!("\"title\":\"{title}\""))
}

/// Waits (bounded by guarantee 1's second) until `path` shows `title`, and
/// checks it stays that way.
async fn fresh_within_a_second(app: &TestApp, path: &str, title: &str) -> Duration {
    let started = Instant::now();
    let fresh = wait_until(FRESH_WITHIN, || async {
        shows(&app.get(path).await, title)
    })
    .await;
    assert!(fresh, "{path} still stale {FRESH_WITHIN:?} after the write");
    let lag = started.elapsed();
    for _ in 0..20 {
        assert!(
            shows(&app.get(path).await, title),
            "{path} went stale again"
        );
    }
    lag
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn in_process_hits_need_no_redis_round_trip_and_a_purge_ends_them(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let redis = PrivateRedis::start().await.unwrap();
    let app = start(
        &pool,
        &redis.url(),
        &common::random_prefix(),
        Hooks::default(),
    )
    .await;
    for path in ["/v1/videos", &format!("/v1/videos/{id}")] {
        assert_eq!(app.get(path).await.x_cache(), "MISS");
        until_local_hit(&app, path).await;
    }

    let mut conn = redis_conn(&redis.url()).await;
    let commands = |info: String| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let stats = || redis::cmd("INFO").arg("stats").clone();
    let before = commands(stats().query_async(&mut conn).await.unwrap());
    let hits_before = local_hits(&app).await;
    let started = Instant::now();
    for _ in 0..200 {
        let reply = app.get("/v1/videos").await;
        assert_eq!(
            reply.x_cache(),
            "HIT",
            "X-Cache stays HIT for in-process hits"
        );
    }
    let elapsed = started.elapsed();
    let after = commands(stats().query_async(&mut conn).await.unwrap());
    assert!(local_hits(&app).await >= hits_before + 200.0);
    // Heartbeats (20/s), the epoch refresh (2/s) and our two INFOs; no
    // command per request.
    let allowed = 10 + u64::try_from(elapsed.as_millis() / 40).unwrap();
    assert!(
        after - before <= allowed,
        "200 in-process hits in {elapsed:?} cost Redis {} commands",
        after - before
    );

    set_title(&pool, id, "after").await;
    app.purge(&[Scope::Feed, Scope::Video(id)]).await;
    fresh_within_a_second(&app, "/v1/videos", "after").await;
    fresh_within_a_second(&app, &format!("/v1/videos/{id}"), "after").await;
    until_local_hit(&app, "/v1/videos").await;
    app.stop().await;
}

/// An invalidation that arrives between a lookup's Redis reply and its
/// adoption of the generation it read: the lookup must not make its (older)
/// generation servable from memory.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_invalidation_between_a_lookup_and_its_adoption_wins(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    set_title(&pool, id, "before").await;
    let prefix = common::random_prefix();
    let warm = start(&pool, common::redis(), &prefix, Hooks::default()).await;
    assert_eq!(warm.get("/v1/videos").await.x_cache(), "MISS");

    // A second process, whose first lookup is held after Redis answered it.
    let (hook, mut gate) = common::gate();
    let hooks = Hooks {
        after_generation_read: Some(hook),
        ..Hooks::default()
    };
    let app = Arc::new(start(&pool, common::redis(), &prefix, hooks).await);
    // Its tracking connection is up once it vouches for anything; the hold
    // below needs it to be.
    let tracking_up = wait_until(Duration::from_secs(5), || async {
        metric(&app, "cache_tracking_connected{node=\"").await == 1.0
    })
    .await;
    assert!(tracking_up);
    let reader = tokio::spawn({
        let app = Arc::clone(&app);
        async move { app.get("/v1/videos").await }
    });
    let key = gate.wait_reached().await;
    assert!(key.ends_with("{feed}:gen"), "{key}");

    // A write and its purge; both processes receive the push.
    let invalidations = metric(&app, "cache_invalidations_received_total").await;
    set_title(&pool, id, "after").await;
    app.purge(&[Scope::Feed]).await;
    let pushed = wait_until(Duration::from_secs(5), || async {
        metric(&app, "cache_invalidations_received_total").await >= invalidations + 2.0
    })
    .await;
    assert!(pushed, "the purge's invalidation never arrived");

    gate.release();
    let held = reader.await.unwrap();
    assert_eq!(held.x_cache(), "HIT", "it read Redis before the write");
    assert!(shows(&held, "before"));
    // Its generation was overtaken: nothing may serve it from memory now.
    for _ in 0..5 {
        let next = app.get("/v1/videos").await;
        assert!(shows(&next, "after"), "a stale copy was adopted");
    }
    warm.stop().await;
    Arc::into_inner(app).unwrap().stop().await;
}

/// The client ids of tracking connections (flag `t`) on a server.
async fn tracking_clients(conn: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(conn)
        .await
        .unwrap();
    list.lines()
        .filter(|l| {
            l.split(' ')
                .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('t')))
        })
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_killed_tracking_connection_loses_no_invalidation(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let redis = PrivateRedis::start().await.unwrap();
    let app = start(
        &pool,
        &redis.url(),
        &common::random_prefix(),
        Hooks::default(),
    )
    .await;
    let mut conn = redis_conn(&redis.url()).await;
    let mut worst = Duration::ZERO;
    for round in 0..8 {
        assert_eq!(app.get("/v1/videos").await.status, 200);
        until_local_hit(&app, "/v1/videos").await;
        let killed = tracking_clients(&mut conn).await;
        assert_eq!(killed.len(), 1, "one tracking connection");
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&killed[0])
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        // A write purged while the tracking connection is down: its push is lost.
        let title = format!("round {round}");
        set_title(&pool, id, &title).await;
        app.purge(&[Scope::Feed]).await;
        worst = worst.max(fresh_within_a_second(&app, "/v1/videos", &title).await);
    }
    println!("worst lag after a killed tracking connection: {worst:?}");
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn flushall_drops_every_in_process_copy(pool: PgPool) {
    let (id, redis, app) = held_in_memory(&pool).await;
    // A change no purge announces: only the flush (a null invalidation) can
    // tell this process its copy is gone.
    set_title(&pool, id, "after").await;
    let mut conn = redis_conn(&redis.url()).await;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    fresh_within_a_second(&app, "/v1/videos", "after").await;
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn reads_a_second_after_redis_froze_never_come_from_memory(pool: PgPool) {
    let (id, mut redis, app) = held_in_memory(&pool).await;
    // The write commits, and Redis freezes before anyone can purge it.
    set_title(&pool, id, "after").await;
    let acknowledged = Instant::now();
    redis.pause().unwrap();
    tokio::time::sleep_until((acknowledged + FRESH_WITHIN).into()).await;
    for _ in 0..5 {
        let reply = app.get("/v1/videos").await;
        assert_eq!(reply.x_cache(), "BYPASS");
        assert!(shows(&reply, "after"), "a copy outlived a frozen Redis");
    }
    redis.resume().unwrap();
    app.stop().await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn two_instances_both_serve_a_write_within_a_second(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    let redis = PrivateRedis::start().await.unwrap();
    let prefix = common::random_prefix();
    let a = start(&pool, &redis.url(), &prefix, Hooks::default()).await;
    let b = start(&pool, &redis.url(), &prefix, Hooks::default()).await;
    // One after the other, so that each counter step is that instance's.
    for app in [&a, &b] {
        assert_eq!(app.get("/v1/videos").await.status, 200);
        until_local_hit(app, "/v1/videos").await;
    }
    for round in 0..3 {
        let title = format!("round {round}");
        set_title(&pool, id, &title).await;
        let acknowledged = Instant::now();
        // Purged by one process' connection: each instance has only its
        // own tracking connection's push to go by.
        a.purge(&[Scope::Feed]).await;
        for app in [&a, &b] {
            let fresh = wait_until(
                FRESH_WITHIN.saturating_sub(acknowledged.elapsed()),
                || async { shows(&app.get("/v1/videos").await, &title) },
            )
            .await;
            assert!(fresh, "an instance still stale a second after the write");
        }
        for app in [&a, &b] {
            until_local_hit(app, "/v1/videos").await;
            assert!(shows(&app.get("/v1/videos").await, &title));
        }
    }
    a.stop().await;
    b.stop().await;
}
