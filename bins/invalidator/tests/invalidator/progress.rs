//! Progress through the outbox: batches in order, a checkpoint advanced only
//! after a purge and never moved back, epochs replaced when Redis or the
//! database lost history, pruning.

use super::*;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn bulk_changes_are_processed_in_order_in_batches(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    sqlx::query(
        "insert into videos (id, title, video_url, tags, status, published_at)
         select gen_random_uuid(), 'Bulk', 'https://cdn.example.com/v.mp4',
                array['bulk' || (i % 3)], 'published', now()
         from generate_series(1, 2500) i",
    )
    .execute(&h.pool)
    .await
    .unwrap();
    let scopes = [
        Scope::Feed,
        tag("bulk0"),
        tag("bulk1"),
        tag("bulk2"),
        tag("other"),
    ];
    h.mark(&scopes).await;

    let mut inv = Invalidator::new(h.pool.clone(), h.cache.clone(), "default", 1_000);
    assert_eq!(inv.process_batch().await.unwrap(), 1_000);
    assert_eq!(h.checkpoint().await, 1_000);
    assert_eq!(inv.process_available().await.unwrap(), 1_500);
    assert_eq!(h.checkpoint().await, 2_500);
    assert_eq!(h.purged(&scopes).await, scopes[..4].to_vec());
    assert_eq!(inv.process_available().await.unwrap(), 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn checkpoint_advances_only_after_a_successful_purge(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    // A privileged port nothing listens on (a port just released by this
    // test could be taken by another process meanwhile).
    let dead_url = "redis://127.0.0.1:1";
    let dead = Cache::new(dead_url, &h.prefix, Duration::from_millis(300)).unwrap();
    insert(&h.pool, "published", &["summer"]).await;
    h.mark(&[tag("summer")]).await;

    let mut failing = Invalidator::new(h.pool.clone(), dead, "default", 10_000);
    assert!(failing.process_available().await.is_err());
    assert!(failing.process_batch().await.is_err());
    assert_eq!(h.checkpoint().await, 0);
    assert_eq!(h.purged(&[tag("summer")]).await, Vec::<Scope>::new());

    let mut working = h.invalidator();
    assert_eq!(working.process_available().await.unwrap(), 1);
    assert_eq!(h.checkpoint().await, 1);
    assert_eq!(h.purged(&[tag("summer")]).await, vec![tag("summer")]);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn two_invalidators_of_one_name_never_move_the_checkpoint_back(pool: PgPool) {
    let h = Harness::new(pool).await;
    for _ in 0..50 {
        insert(&h.pool, "published", &["summer"]).await;
    }
    let mut a = Invalidator::new(h.pool.clone(), h.cache.clone(), "default", 7);
    let mut b = Invalidator::new(h.pool.clone(), h.cache.clone(), "default", 3);
    let (ra, rb) = tokio::join!(a.process_available(), b.process_available());
    // Each event is purged by one of them or both; none is lost.
    assert!(ra.unwrap() + rb.unwrap() >= 50);
    assert_eq!(h.checkpoint().await, 50);
    // The slower one saving an older position later changes nothing.
    checkpoint::save(&h.pool, "default", 10, None)
        .await
        .unwrap();
    assert_eq!(h.checkpoint().await, 50);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_redis_restart_since_the_checkpoint_replaces_the_epoch(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let _: () = h
        .redis
        .set(h.cache.keys().epoch(), "old-epoch")
        .await
        .unwrap();
    // The checkpoint says its purges went to another Redis server.
    checkpoint::save(&h.pool, "default", 0, Some("another-run-id"))
        .await
        .unwrap();
    let mut inv = h.invalidator();
    inv.sync_epoch().await.unwrap();
    assert_ne!(h.epoch().await.as_deref(), Some("old-epoch"));
    let stored = checkpoint::load(&h.pool, "default")
        .await
        .unwrap()
        .redis_run_id;
    assert!(stored.is_some_and(|id| id != "another-run-id"));

    // Same server again: the epoch stays.
    let epoch = h.epoch().await;
    let mut again = h.invalidator();
    again.sync_epoch().await.unwrap();
    again.process_available().await.unwrap();
    assert_eq!(h.epoch().await, epoch);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_database_restored_from_a_backup_replaces_the_epoch(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    for _ in 0..3 {
        insert(&h.pool, "published", &["summer"]).await;
    }
    let mut inv = h.invalidator();
    inv.process_available().await.unwrap();
    let epoch = h.epoch().await;
    assert!(epoch.is_some());

    // Restore seen by the running process: the checkpoint went back.
    sqlx::query("update invalidator_checkpoints set seq = 1")
        .execute(&h.pool)
        .await
        .unwrap();
    inv.process_available().await.unwrap();
    let after_live = h.epoch().await;
    assert_ne!(after_live, epoch);

    // Restore seen by a process that starts afterwards: Redis' high-water mark
    // is above the checkpoint.
    sqlx::query("update invalidator_checkpoints set seq = 1")
        .execute(&h.pool)
        .await
        .unwrap();
    let mut fresh = h.invalidator();
    fresh.process_available().await.unwrap();
    let after_start = h.epoch().await;
    assert_ne!(after_start, after_live);

    // No restore: a new process keeps the epoch.
    h.invalidator().process_available().await.unwrap();
    assert_eq!(h.epoch().await, after_start);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn pruning_keeps_what_a_checkpoint_still_needs(pool: PgPool) {
    let h = Harness::new(pool).await;
    for _ in 0..5 {
        insert(&h.pool, "published", &["summer"]).await;
    }
    let never = CancellationToken::new();
    // No checkpoint at all: nothing is known to be processed.
    assert_eq!(
        invalidator::prune::prune(&h.pool, Duration::ZERO, &never)
            .await
            .unwrap(),
        0
    );

    checkpoint::save(&h.pool, "default", 3, None).await.unwrap();
    checkpoint::save(&h.pool, "other", 4, None).await.unwrap();
    // Too recent for a one-hour retention.
    let hour = Duration::from_secs(3600);
    assert_eq!(
        invalidator::prune::prune(&h.pool, hour, &never)
            .await
            .unwrap(),
        0
    );
    sqlx::query("update video_events set recorded_at = now() - interval '2 hours'")
        .execute(&h.pool)
        .await
        .unwrap();
    assert_eq!(
        invalidator::prune::prune(&h.pool, hour, &never)
            .await
            .unwrap(),
        3
    );
    let left: Vec<i64> = sqlx::query_scalar("select seq from video_events order by seq")
        .fetch_all(&h.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![4, 5]);
    assert_eq!(h.newest_seq().await, 5);
}
