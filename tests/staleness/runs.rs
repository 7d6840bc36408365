//! The checker run on a healthy stack, with Redis flapping, with tracking
//! connections killed, and with Redis restored from an old snapshot; and the
//! checker checked.

use super::*;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_read_is_stale_a_second_after_an_acknowledged_write(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let ids = seed(&stack).await;
    let log = run(&stack, &ids, async {}).await;
    check("healthy", log);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_read_is_stale_a_second_after_an_acknowledged_write_with_redis_flapping(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    let stack = Stack::start(env).await;
    let ids = seed(&stack).await;
    let flaps = RefCell::new(0);
    let flapping = async {
        let until = Instant::now() + run_for() - Duration::from_millis(500);
        let mut round = 0;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(600)).await;
            if round == 4 {
                // Killed and back empty.
                redis.stop().await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                redis.restart().await.unwrap();
            } else {
                // Frozen: connections open, nothing answers.
                redis.pause().unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                redis.resume().unwrap();
            }
            round += 1;
            *flaps.borrow_mut() += 1;
        }
    };
    let log = run(&stack, &ids, flapping).await;
    println!("Redis flapped {} times", flaps.into_inner());
    check("Redis flapping", log);
}

/// The read API's in-process layer trusts Redis' pushed invalidations only
/// while its tracking connection is alive: killing that connection again and
/// again (invalidations sent meanwhile are lost) must cost no freshness.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_read_is_stale_a_second_after_an_acknowledged_write_with_tracking_connections_killed(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    let stack = Stack::start(env).await;
    let ids = seed(&stack).await;
    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let kills = RefCell::new(0);
    let killing = async {
        let until = Instant::now() + run_for() - Duration::from_millis(500);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut admin)
                .await
                .unwrap();
            // Tracking connections carry the `t` flag.
            for id in list.lines().filter_map(|l| {
                let tracking = l
                    .split(' ')
                    .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('t')));
                tracking.then(|| l.split(' ').find_map(|f| f.strip_prefix("id=")))?
            }) {
                let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut admin)
                    .await;
                *kills.borrow_mut() += 1;
            }
        }
    };
    let log = run(&stack, &ids, killing).await;
    let kills = kills.into_inner();
    println!("killed {kills} tracking connections");
    assert!(kills >= 5, "only {kills} tracking connections were killed");
    check("tracking connections killed", log);
}

/// Guarantee 7: Redis restarted with old data (a snapshot taken before a
/// write, generations and entries included) serves nothing staler than the
/// database within 10 s.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_restored_from_an_old_snapshot_serves_nothing_stale_within_10_s(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    const SUMMER: &str = "/v1/videos?page_size=100&tag=summer";
    let mut redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    let stack = Stack::start(env).await;
    let id = stack.create("Before", &["summer"], "published").await;
    let detail = format!("/v1/videos/{id}");
    stack.warm(SUMMER).await;
    stack.warm(&detail).await;

    // The snapshot: every key with its value and TTL.
    let mut conn = stack.env.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", stack.env.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 3, "nothing cached: {keys:?}");
    let mut snapshot = Vec::new();
    for key in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        snapshot.push((key, dump));
    }

    stack.patch(id, json!({"title": "After"})).await;
    stack
        .assert_fresh(Instant::now(), SUMMER, "before the restore", |s, page| {
            s == StatusCode::OK && page["results"][0]["title"] == json!("After")
        })
        .await;

    // Restarted empty, then the old snapshot restored into it.
    redis.restart().await.unwrap();
    let mut conn = stack.env.redis().await;
    for (key, dump) in &snapshot {
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(dump.as_slice())
            .arg("REPLACE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let restored = Instant::now();
    let fresh = || async {
        let (s1, _, page) = stack.get(SUMMER).await;
        let (s2, _, video) = stack.get(&detail).await;
        s1 == StatusCode::OK
            && page["results"][0]["title"] == json!("After")
            && s2 == StatusCode::OK
            && video["title"] == json!("After")
    };
    let recovered = common::wait_until(Duration::from_secs(10), fresh).await;
    assert!(recovered, "still stale 10 s after the restore");
    let took = restored.elapsed();
    // And it stays fresh: nothing stale comes back later.
    for _ in 0..20 {
        assert!(fresh().await, "stale again after the restore");
    }
    println!("fresh {took:?} after Redis came back with old data");
}

/// The checker itself: it must see a violation when there is one.
#[test]
fn the_checker_counts_a_read_that_missed_a_write_acknowledged_over_a_second_before() {
    let (id, t0) = (Uuid::new_v4(), Instant::now());
    let seen = |after_ms, version| Seen {
        start: t0 + Duration::from_millis(after_ms),
        id,
        version,
        path: "/v1/videos".into(),
    };
    let mut log = Log::default();
    log.acks
        .insert(id, vec![(t0, 2), (t0 + Duration::from_millis(1500), 3)]);
    // Before the ack; fresh; stale inside the window; stale past it.
    log.seen = vec![
        seen(0, 1),
        seen(100, 2),
        seen(900, 1),
        seen(1200, 1),
        seen(1600, 2),
    ];
    let report = log.analyse();
    assert_eq!(report.stale_reads, 3);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert_eq!(report.worst_lag, Duration::from_millis(1200));
}
