//! Redis killed or hung under reads and writes.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use test_support::PrivateRedis;

use crate::{
    churn::*,
    common::{wait_until, Env, Stack},
    truth::*,
    BOUNDED, L1_LEASE_GRACE, RECOVERY,
};

#[derive(Clone, Copy, Debug)]
enum RedisFault {
    Killed,
    Hung,
}

/// Redis killed (restarted empty) or hung (SIGSTOP, then SIGCONT) while reads
/// and writes go on.
async fn redis_fault(pool: PgPool, connect: PgConnectOptions, fault: RedisFault) {
    let mut redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    env.seed(300);
    let stack = Stack::start(env).await;
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;

    match fault {
        RedisFault::Killed => redis.stop().await.unwrap(),
        RedisFault::Hung => redis.pause().unwrap(),
    }
    let fault_started = Instant::now();
    let mut paths: Vec<String> = checked_feeds().iter().map(Feed::path).collect();
    paths.extend(videos.iter().map(|id| format!("/v1/videos/{id}")));
    let (mut slowest, mut reads, mut writes) = (Duration::ZERO, 0, 0);
    let mut churn = Churn::new(&videos);
    let mut not_bypass = BTreeMap::<String, usize>::new();
    while fault_started.elapsed() < Duration::from_secs(4) {
        for path in &paths {
            let started = Instant::now();
            let (status, cache, _) = stack.get(path).await;
            slowest = slowest.max(started.elapsed());
            reads += 1;
            // Details of videos the churn drafted or deleted are 404s.
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::NOT_FOUND && path.starts_with("/v1/videos/")),
                "{fault:?}: {path}: {status}"
            );
            // A 404 carries no `X-Cache` (not cached at all). An in-process
            // copy may answer until its tracking lease runs out (250 ms, see
            // read-api's cache::tracking); from then on no layer answers.
            let after_lease = started.duration_since(fault_started) > L1_LEASE_GRACE;
            if status == StatusCode::OK && cache != "BYPASS" && after_lease {
                *not_bypass.entry(cache).or_default() += 1;
            }
        }
        let status = churn.next(&stack).await;
        assert!(status.is_success(), "{fault:?}: a write got {status}");
        writes += 1;
    }
    // Even the calls that find the fault out (before the breaker opens) are
    // served from Postgres: past the in-process lease, no cache layer answers
    // without Redis.
    assert!(
        not_bypass.is_empty(),
        "{fault:?}: reads not BYPASS while Redis was down: {not_bypass:?}"
    );
    assert!(slowest < BOUNDED, "{fault:?}: a read took {slowest:?}");
    let (status, body) = ready_status(&stack, &stack.read).await;
    assert_eq!(status, Some(StatusCode::OK), "read-api /readyz: {body}");
    assert_eq!(body["checks"]["redis"]["ok"], json!(false), "{body}");
    assert!(
        becomes_ready(
            &stack,
            &stack.invalidator,
            StatusCode::SERVICE_UNAVAILABLE,
            RECOVERY
        )
        .await,
        "{fault:?}: the invalidator's /readyz did not notice"
    );

    match fault {
        RedisFault::Killed => redis.restart().await.unwrap(),
        RedisFault::Hung => redis.resume().unwrap(),
    }
    let healed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || caching_works(&stack)).await,
        "{fault:?}: caching did not resume"
    );
    let caching_back = healed.elapsed();
    let converged = assert_consistent(&stack, &pool, &videos).await;
    let (status, body) = ready_status(&stack, &stack.read).await;
    assert_eq!(status, Some(StatusCode::OK));
    assert_eq!(body["checks"]["redis"]["ok"], json!(true), "{body}");
    eprintln!(
        "redis {fault:?}: {reads} reads (slowest {slowest:?}, not BYPASS {not_bypass:?}), \
         {writes} writes; caching back {caching_back:?} after the heal, {converged}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_killed_then_restarted_empty_serves_the_truth(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    redis_fault(pool, connect, RedisFault::Killed).await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_hung_then_resumed_serves_the_truth(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    redis_fault(pool, connect, RedisFault::Hung).await;
}
