//! With the invalidator down, the TTL bounds how long a write stays invisible.

use super::*;

/// The read API's `CACHE_TTL_SECONDS` in the TTL test: short, yet long enough
/// that the stale read right after the write surely falls inside it.
const TTL: Duration = Duration::from_secs(4);

/// How long an in-process copy may outlive its Redis entry, as documented
/// (README, "How a request is served"): copies are at most 60 s old, and no
/// older than the TTL.
fn local_copy_lifetime(ttl: Duration) -> Duration {
    ttl.min(Duration::from_secs(60))
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn with_the_invalidator_down_the_ttl_bounds_how_long_a_write_stays_invisible(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let mut stack = Stack::start(Env::for_test(&connect)).await;
    stack.read = stack
        .env
        .read_api_with(&[("CACHE_TTL_SECONDS", TTL.as_secs().to_string())]);
    stack.wait_ready(&stack.read).await;
    let id = stack.create("v1", &["summer"], "published").await;
    // The create's purge done, then no invalidator at all.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let (newest, checkpoint) = seq_and_checkpoint(&pool).await;
            newest == checkpoint
        })
        .await
    );
    stack.invalidator.kill();

    // Pages no one has read yet: cached from now on.
    let paths = [
        "/v1/videos?page_size=7".to_owned(),
        "/v1/videos?page_size=7&tag=summer".to_owned(),
        format!("/v1/videos/{id}"),
    ];
    let stored = Instant::now();
    for path in &paths {
        let (status, cache, body) = stack.get(path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "MISS"), "{path}");
        assert!(shows(&body, id, "v1"), "{path}: {body}");
        stack.warm(path).await;
    }

    stack.patch(id, json!({"title": "v2"})).await;
    let acked = Instant::now();
    // No purge comes: before the TTL runs out the old page is what is served.
    for path in &paths {
        let started = Instant::now();
        let (status, cache, body) = stack.get(path).await;
        assert!(
            started < stored + TTL,
            "the machine is too slow for this test: the read started {:?} after the store",
            started - stored
        );
        assert_eq!(
            (status, cache.as_str()),
            (StatusCode::OK, "HIT"),
            "{path}: {body}"
        );
        assert!(
            shows(&body, id, "v1"),
            "{path}: fresh with no invalidator running? {body}"
        );
    }

    // Every entry was stored after `stored`; the TTL expires it and an
    // in-process copy lives at most its own lifetime on top.
    let bound = TTL + local_copy_lifetime(TTL);
    let first_fresh = wait_until(bound + Duration::from_secs(5), || async {
        let mut fresh = true;
        for path in &paths {
            fresh &= shows(&stack.get(path).await.2, id, "v2");
        }
        fresh
    })
    .await;
    let fresh_after = acked.elapsed();
    tokio::time::sleep_until((stored + bound).into()).await;
    for path in &paths {
        let started = stored.elapsed();
        let (status, cache, body) = stack.get(path).await;
        assert!(
            status == StatusCode::OK && shows(&body, id, "v2"),
            "{path}: still stale ({cache}) in a read that started {started:?} after the page \
             was cached with CACHE_TTL_SECONDS={}: {body}",
            TTL.as_secs()
        );
    }
    assert!(first_fresh, "never fresh");
    eprintln!(
        "invalidator down, CACHE_TTL_SECONDS={}: every page fresh {fresh_after:?} after the \
         write (bound: {bound:?} after caching)",
        TTL.as_secs()
    );
}
