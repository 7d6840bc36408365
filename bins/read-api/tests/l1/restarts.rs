//! Redis restarted under the in-process layer: empty, or from an old snapshot.

use super::*;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_restarted_empty_ends_every_in_process_copy_within_the_lease(pool: PgPool) {
    let (id, mut redis, app) = held_in_memory(&pool).await;
    // A write whose purge went to the Redis that is now gone.
    set_title(&pool, id, "after").await;
    redis.stop().await.unwrap();
    let stopped = Instant::now();
    redis.restart().await.unwrap();
    // Nothing in memory outlives the last heartbeat the old Redis answered.
    tokio::time::sleep_until((stopped + LEASE).into()).await;
    for _ in 0..20 {
        let reply = app.get("/v1/videos").await;
        assert!(
            shows(&reply, "after"),
            "a copy outlived Redis by more than the lease ({})",
            reply.x_cache()
        );
    }
    until_local_hit(&app, "/v1/videos").await;
    assert!(shows(&app.get("/v1/videos").await, "after"));
    app.stop().await;
}

/// Redis back from an old snapshot (its RDB written before a write): the
/// old generations and pages come back with it. Guarantee 7 gives the epoch
/// refresh 10 s to orphan them; once the epoch is replaced, no page from
/// before it is served, from memory either, beyond the lease.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_restarted_with_old_data_serves_nothing_stale_once_the_epoch_moved(pool: PgPool) {
    let id = NewVideo::published(at(1)).insert(&pool).await;
    set_title(&pool, id, "before").await;
    let mut redis = PrivateRedis::start().await.unwrap();
    let prefix = common::random_prefix();
    let app = start(&pool, &redis.url(), &prefix, Hooks::default()).await;
    assert_eq!(app.get("/v1/videos").await.x_cache(), "MISS");
    until_local_hit(&app, "/v1/videos").await;
    let mut conn = redis_conn(&redis.url()).await;
    let keys = shared::cache::KeySpace::new(&prefix).unwrap();
    let (epoch_key, feed_generation) = (keys.epoch(), keys.generation(&Scope::Feed));
    let get = |key: &str| redis::cmd("GET").arg(key).clone();
    let old_epoch: Option<String> = get(&epoch_key).query_async(&mut conn).await.unwrap();
    let old_generation: Option<String> =
        get(&feed_generation).query_async(&mut conn).await.unwrap();
    // The snapshot: the server's dump.rdb, which a restart loads.
    let () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();

    set_title(&pool, id, "after").await;
    app.purge(&[Scope::Feed]).await;
    fresh_within_a_second(&app, "/v1/videos", "after").await;
    until_local_hit(&app, "/v1/videos").await;

    redis.restart().await.unwrap();
    let restarted = Instant::now();
    let mut conn = redis_conn(&redis.url()).await;
    let generation: Option<String> = get(&feed_generation).query_async(&mut conn).await.unwrap();
    assert_eq!(
        generation, old_generation,
        "Redis did not come back with the old generation"
    );
    let epoch = || {
        let (mut conn, key) = (conn.clone(), epoch_key.clone());
        async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut conn)
                .await
                .unwrap()
        }
    };
    let moved = wait_until(Duration::from_secs(10), || async {
        epoch().await != old_epoch
    })
    .await;
    assert!(moved, "the epoch was not replaced after a restart");
    let replaced = Instant::now();
    tokio::time::sleep_until((replaced + LEASE).into()).await;
    for _ in 0..20 {
        let reply = app.get("/v1/videos").await;
        assert!(
            shows(&reply, "after"),
            "stale {:?} after the epoch was replaced ({})",
            replaced.elapsed(),
            reply.x_cache()
        );
    }
    println!(
        "epoch replaced {:?} after Redis came back with old data",
        replaced - restarted
    );
    until_local_hit(&app, "/v1/videos").await;
    assert!(shows(&app.get("/v1/videos").await, "after"));
    app.stop().await;
}
