//! The invalidator killed in the middle of a batch.

use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{
    churn::*,
    common::{seq_and_checkpoint, wait_until, Env, Stack},
    truth::*,
    RECOVERY,
};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn invalidator_killed_mid_batch_catches_up_from_its_checkpoint(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let env = Env::for_test(&connect);
    env.seed(300);
    let mut stack = Stack::start(env).await;
    // Small batches: the seed below is hundreds of them, so the kill lands
    // between a first checkpoint move and the end.
    stack.invalidator = stack.env.invalidator_with(&[("BATCH_SIZE", "100".into())]);
    stack.wait_ready(&stack.invalidator).await;
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;

    let (_, before) = seq_and_checkpoint(&pool).await;
    let seed_env = stack.env.clone();
    tokio::task::spawn_blocking(move || seed_env.seed(50_000))
        .await
        .unwrap();
    let (newest, _) = seq_and_checkpoint(&pool).await;
    let mid_batch = wait_until(RECOVERY, || async {
        let (_, checkpoint) = seq_and_checkpoint(&pool).await;
        checkpoint > before && checkpoint < newest
    })
    .await;
    assert!(mid_batch, "the checkpoint never moved");
    stack.invalidator.kill();
    let (_, killed_at) = seq_and_checkpoint(&pool).await;
    assert!(
        killed_at < newest,
        "killed too late: checkpoint {killed_at} of {newest}"
    );

    // While it is dead: cached pages that only its catch-up can repair.
    let videos = visible_videos(&pool, 6).await;
    for feed in checked_feeds().iter().take(2) {
        stack.warm(&feed.path()).await;
    }
    let mut churn = Churn::new(&videos);
    for _ in 0..6 {
        let status = churn.next(&stack).await;
        assert!(
            status.is_success(),
            "write with the invalidator down: {status}"
        );
    }
    // The churn created a video, so the newest page 1 has changed; with no
    // invalidator the cache still holds the old one.
    let first = checked_feeds()[0];
    let (status, cache, body) = stack.get(&first.path()).await;
    assert_eq!(cache, "HIT");
    assert_ne!(
        seen_page(status, &body),
        truth_page(&pool, &first).await,
        "nothing stale while the invalidator was dead"
    );

    let restarted = Instant::now();
    stack.invalidator = stack.env.invalidator();
    stack.wait_ready(&stack.invalidator).await;
    let ready = restarted.elapsed();
    let converged = assert_consistent(&stack, &pool, &videos).await;
    eprintln!(
        "invalidator SIGKILL: killed at checkpoint {killed_at} ({} of {} seed events done); \
         restart to ready {ready:?}, then {converged}",
        killed_at - before,
        newest - before,
    );
}
