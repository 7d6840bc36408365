//! The invalidator under faults, with the three real binaries: killed and
//! restarted, Postgres restarted under it, Redis down while events arrive,
//! two invalidators at once, SIGTERM.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::{ids, result, seq_and_checkpoint, wait_until, Env, Stack};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use test_support::PrivateRedis;
use uuid::Uuid;

const FEED: &str = "/v1/videos?page_size=100";
const SUMMER: &str = "/v1/videos?page_size=100&tag=summer";

/// Generous: these tests wait for reconnects and backoff, not for the
/// one-second promise of a healthy system.
const RECOVERY: Duration = Duration::from_secs(20);

async fn caught_up(pool: &PgPool, within: Duration) -> bool {
    wait_until(within, || async {
        let (newest, checkpoint) = seq_and_checkpoint(pool).await;
        checkpoint == newest
    })
    .await
}

async fn shows_title(stack: &Stack, path: &str, id: Uuid, title: &str) -> bool {
    let (status, _, page) = stack.get(path).await;
    status == StatusCode::OK && result(&page, id).is_some_and(|v| v["title"] == json!(title))
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn killed_invalidator_catches_up_on_restart(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let mut stack = Stack::start(Env::for_test(&connect)).await;
    let a = stack.create("Before", &["summer"], "published").await;
    stack.warm(FEED).await;
    stack.warm(SUMMER).await;

    stack.invalidator.kill();
    stack.patch(a, json!({"title": "After"})).await;
    let b = stack
        .create("Created while down", &["summer"], "published")
        .await;
    // Nobody purges now: the cache still serves the old page. (This is what
    // makes the freshness below the invalidator's doing.)
    let (_, cache, page) = stack.get(SUMMER).await;
    assert_eq!(cache, "HIT");
    assert!(!ids(&page).contains(&b));

    stack.invalidator = stack.env.invalidator();
    let fresh = wait_until(RECOVERY, || async {
        shows_title(&stack, FEED, a, "After").await
            && shows_title(&stack, SUMMER, a, "After").await
            && ids(&stack.get(SUMMER).await.2).contains(&b)
    })
    .await;
    assert!(fresh, "not fresh after the restart");
    assert!(caught_up(&pool, RECOVERY).await);
}

#[tokio::test]
async fn invalidator_reconnects_to_a_restarted_postgres_and_catches_up() {
    let (mut pg, pool, env) = common::private_postgres().await;
    let stack = Stack::start(env).await;
    let a = stack.create("Before", &["summer"], "published").await;
    stack.warm(SUMMER).await;

    pg.restart().await.unwrap();
    // A write straight into Postgres right after the restart, likely before
    // the invalidator's LISTEN connection is back: only the catch-up after
    // the reconnect can purge it.
    let write = wait_until(RECOVERY, || async {
        sqlx::query("update videos set title = 'After restart' where id = $1")
            .bind(a)
            .execute(&pool)
            .await
            .is_ok()
    })
    .await;
    assert!(write, "could not write after the Postgres restart");

    let fresh = wait_until(RECOVERY, || async {
        shows_title(&stack, SUMMER, a, "After restart").await
    })
    .await;
    assert!(fresh, "not fresh after the Postgres restart");
    stack.wait_ready(&stack.invalidator).await;

    // And it follows notifications again on the new connection.
    stack.warm(SUMMER).await;
    // The write API may answer 503 until its own pool has reconnected.
    let patched = wait_until(RECOVERY, || async {
        let path = format!("/v1/videos/{a}");
        let patch = Some(json!({"title": "Later"}));
        stack.admin(reqwest::Method::PATCH, &path, patch).await.0 == StatusCode::OK
    })
    .await;
    assert!(patched, "the write API did not recover");
    let acked = Instant::now();
    stack
        .assert_fresh(acked, SUMMER, "write after reconnect", move |s, page| {
            s == StatusCode::OK && result(page, a).is_some_and(|v| v["title"] == json!("Later"))
        })
        .await;
    let errors = common::metric(
        &stack.metrics(&stack.invalidator).await,
        "invalidator_postgres_errors_total",
    );
    assert!(errors >= 1.0, "the lost connection was not counted");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn events_during_a_redis_outage_are_purged_once_redis_is_back(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let mut redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    let stack = Stack::start(env).await;
    let a = stack.create("Before", &["summer"], "published").await;
    stack.warm(SUMMER).await;
    let (before, _) = seq_and_checkpoint(&pool).await;

    // Frozen: connections stay open, nothing answers (a partition).
    redis.pause().unwrap();
    stack.patch(a, json!({"title": "During outage"})).await;
    let b = stack
        .create("Also during outage", &["summer"], "published")
        .await;
    let not_ready = wait_until(RECOVERY, || async {
        stack
            .http
            .get(stack.invalidator.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(not_ready, "/readyz did not notice the frozen Redis");
    // Frozen long enough for purges to time out and be retried.
    let failed = wait_until(RECOVERY, || async {
        common::metric(
            &stack.metrics(&stack.invalidator).await,
            "invalidator_redis_errors_total",
        ) >= 2.0
    })
    .await;
    assert!(failed, "no Redis failure counted while Redis was frozen");
    // The checkpoint waits for Redis.
    assert_eq!(seq_and_checkpoint(&pool).await.1, before);

    redis.resume().unwrap();
    let fresh = wait_until(RECOVERY, || async {
        shows_title(&stack, SUMMER, a, "During outage").await
            && ids(&stack.get(SUMMER).await.2).contains(&b)
    })
    .await;
    assert!(fresh, "cached pages not purged after Redis came back");
    assert!(caught_up(&pool, RECOVERY).await);

    // Killed and restarted empty: nothing lost, the invalidator reconnects.
    redis.stop().await.unwrap();
    stack
        .patch(a, json!({"title": "While Redis was dead"}))
        .await;
    redis.restart().await.unwrap();
    assert!(
        caught_up(&pool, RECOVERY).await,
        "checkpoint stuck after the Redis restart"
    );
    stack.wait_ready(&stack.invalidator).await;
    let fresh = wait_until(RECOVERY, || async {
        shows_title(&stack, SUMMER, a, "While Redis was dead").await
    })
    .await;
    assert!(fresh);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn two_invalidators_at_once_do_no_harm_and_sigterm_exits_zero(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let mut stack = Stack::start(Env::for_test(&connect)).await;
    let mut second = stack.env.invalidator();
    stack.wait_ready(&second).await;

    let a = stack.create("Start", &["summer"], "published").await;
    for round in 0..10 {
        stack.warm(SUMMER).await;
        let title = format!("Round {round}");
        stack.patch(a, json!({ "title": title })).await;
        let acked = Instant::now();
        stack
            .assert_fresh(acked, SUMMER, "two invalidators", move |s, page| {
                s == StatusCode::OK && result(page, a).is_some_and(|v| v["title"] == json!(title))
            })
            .await;
    }
    assert!(caught_up(&pool, RECOVERY).await);

    // SIGTERM: the batch in hand is finished, then exit 0.
    let status = second.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "second invalidator: {status:?}"
    );
    let status = stack.invalidator.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "invalidator: {status:?}"
    );
}
