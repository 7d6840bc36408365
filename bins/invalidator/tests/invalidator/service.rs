//! The whole service (`invalidator::run`): notifications, polling, malformed
//! events and shutdown.

use super::*;

type Service = JoinHandle<Result<(), invalidator::Error>>;

/// Starts the whole service (`invalidator::run`) with `args` and its ops
/// endpoints on a free port; returns it and its base URL once it is ready.
/// `run` binds the port itself, so another process may take it between the
/// choice and the bind: a start that fails is retried on another port.
async fn start_service(args: &[&str], shutdown: &CancellationToken) -> (Service, String) {
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = test_support::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut argv = vec!["invalidator", "--listen-addr", listen.as_str()];
        argv.extend_from_slice(args);
        let config = Config::try_parse_from(argv).unwrap();
        let service = tokio::spawn(invalidator::run(config, shutdown.clone()));
        let base = format!("http://{listen}");
        let ready = wait_until(Duration::from_secs(20), || async {
            service.is_finished()
                || http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(ready, "never ready");
        if !service.is_finished() {
            return (service, base);
        }
        failures.push(format!("{:?}", service.await));
    }
    panic!("the service did not start: {failures:?}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_running_service_follows_notifications_and_stops_on_shutdown(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = PgPoolOptions::new().connect_with(connect).await.unwrap();
    let database_url = test_support::database_url(&pool);
    let mut h = Harness::new(pool).await;
    let redis = redis_url();
    let shutdown = CancellationToken::new();
    let (service, base) = start_service(
        &[
            "--database-url",
            &database_url,
            "--redis-url",
            &redis,
            "--redis-key-prefix",
            &h.prefix,
            // Far longer than the wait below: only a notification explains
            // a purge in time.
            "--poll-interval-ms",
            "600000",
        ],
        &shutdown,
    )
    .await;
    let http = reqwest::Client::new();

    h.mark(&[Scope::Feed]).await;
    insert(&h.pool, "published", &["summer"]).await;
    let purged = wait_until(Duration::from_secs(20), || h.was_purged(&Scope::Feed)).await;
    assert!(
        purged,
        "not purged within 20 s of the commit, without a poll"
    );
    assert!(h.generation(&tag("summer")).await.is_some());
    assert!(
        wait_until(Duration::from_secs(5), || async {
            h.checkpoint().await == 1
        })
        .await,
        "checkpoint not advanced"
    );

    let names = [
        "invalidator_events_processed_total",
        "invalidation_lag_seconds_bucket",
        "invalidator_checkpoint_lag",
        "invalidator_purged_scopes_total",
    ];
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The lag gauge is set once the pass that stored the checkpoint ends.
    wait_until(Duration::from_secs(5), || async {
        let text = metrics().await;
        names.iter().all(|name| text.contains(name))
    })
    .await;
    let metrics = metrics().await;
    for name in names {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), service).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_malformed_event_replaces_the_epoch_and_does_not_block(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    inv.process_available().await.unwrap();
    let epoch = h.epoch().await;
    // Only a hand-written row can look like this.
    sqlx::query(
        "insert into video_events (video_id, op, new_status, new_tags) values ($1, 'insert', 'bogus', '{}')",
    )
    .bind(Uuid::nil())
    .execute(&h.pool)
    .await
    .unwrap();
    insert(&h.pool, "published", &["summer"]).await;

    assert_eq!(inv.process_available().await.unwrap(), 2);
    assert_ne!(h.epoch().await, epoch);
    assert_eq!(h.checkpoint().await, 2);
    assert!(h.generation(&tag("summer")).await.is_some());
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_outbox_is_polled_when_no_notification_comes(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = PgPoolOptions::new().connect_with(connect).await.unwrap();
    let database_url = test_support::database_url(&pool);
    let mut h = Harness::new(pool).await;
    let redis = redis_url();
    let shutdown = CancellationToken::new();
    let (service, _) = start_service(
        &[
            "--database-url",
            &database_url,
            "--redis-url",
            &redis,
            "--redis-key-prefix",
            &h.prefix,
            "--poll-interval-ms",
            "200",
        ],
        &shutdown,
    )
    .await;
    // Started once it has created the epoch.
    let epoch_key = h.cache.keys().epoch();
    let started = wait_until(Duration::from_secs(20), || {
        let (mut redis, key) = (h.redis.clone(), epoch_key.clone());
        async move { redis.get::<_, Option<String>>(key).await.unwrap().is_some() }
    })
    .await;
    assert!(started, "no epoch written");

    // Written straight into the outbox: no trigger, so no NOTIFY. The first
    // may be found by the catch-up on start; once that catch-up is over (its
    // high-water mark written), only the poll can find the second.
    for seq in 1..=2 {
        h.mark(&[Scope::Feed]).await;
        sqlx::query(
            "insert into video_events (video_id, op, new_status, new_tags, new_published_at, new_view_count)
             values ($1, 'insert', 'published', '{}', now(), 0)",
        )
        .bind(Uuid::now_v7())
        .execute(&h.pool)
        .await
        .unwrap();
        let mark_key = format!("{}invalidator:default:hwm", h.prefix);
        let done = wait_until(Duration::from_secs(20), || {
            let (mut redis, key) = (h.redis.clone(), mark_key.clone());
            let purged = h.was_purged(&Scope::Feed);
            async move {
                let mark: Option<i64> = redis.get(key).await.unwrap();
                mark == Some(seq) && purged.await
            }
        })
        .await;
        assert!(
            done,
            "event {seq}, without a notification, was not picked up by the poll"
        );
    }

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), service).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
