//! The invalidator against a real Postgres (one database per test) and a real
//! Redis (one key prefix per test).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::time::Duration;

use clap::Parser;
use invalidator::{checkpoint, outbox, Cache, Config, Invalidator};
use redis::AsyncCommands;
use shared::cache::Scope;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use test_support::{redis_url, wait_until, RedisKeysGuard};
use tokio::task::JoinHandle;

fn prefix() -> String {
    test_support::key_prefix("test:inv")
}

struct Harness {
    pool: PgPool,
    prefix: String,
    cache: Cache,
    redis: redis::aio::MultiplexedConnection,
    /// The epoch, the high-water mark and the marks have no TTL: deleted
    /// when the test ends, failing or not.
    _keys: RedisKeysGuard,
}

impl Harness {
    async fn new(pool: PgPool) -> Self {
        let prefix = prefix();
        let cache = Cache::new(&redis_url(), &prefix, Duration::from_secs(2)).unwrap();
        let redis = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        Self {
            pool,
            _keys: RedisKeysGuard::new(redis_url(), prefix.clone()),
            prefix,
            cache,
            redis,
        }
    }

    fn invalidator(&self) -> Invalidator {
        Invalidator::new(self.pool.clone(), self.cache.clone(), "default", 10_000)
    }

    async fn generation(&mut self, scope: &Scope) -> Option<String> {
        self.redis
            .get(self.cache.keys().generation(scope))
            .await
            .unwrap()
    }

    async fn epoch(&mut self) -> Option<String> {
        self.redis.get(self.cache.keys().epoch()).await.unwrap()
    }

    /// Gives each scope a known generation, to see later which were replaced.
    async fn mark(&mut self, scopes: &[Scope]) {
        for scope in scopes {
            let _: () = self
                .redis
                .set(self.cache.keys().generation(scope), "marked")
                .await
                .unwrap();
        }
    }

    /// Whether `scope`'s generation changed since `mark` (a future that
    /// borrows nothing, for `wait_until`).
    fn was_purged(&self, scope: &Scope) -> impl std::future::Future<Output = bool> + 'static {
        let mut redis = self.redis.clone();
        let key = self.cache.keys().generation(scope);
        async move {
            redis
                .get::<_, Option<String>>(key)
                .await
                .unwrap()
                .as_deref()
                != Some("marked")
        }
    }

    /// The scopes of `scopes` whose generation changed since `mark`.
    async fn purged(&mut self, scopes: &[Scope]) -> Vec<Scope> {
        let mut purged = Vec::new();
        for scope in scopes {
            if self.generation(scope).await.as_deref() != Some("marked") {
                purged.push(scope.clone());
            }
        }
        purged
    }

    async fn checkpoint(&self) -> i64 {
        checkpoint::load(&self.pool, "default").await.unwrap().seq
    }

    async fn newest_seq(&self) -> i64 {
        outbox::newest_seq(&self.pool).await.unwrap()
    }
}

async fn insert(pool: &PgPool, status: &str, tags: &[&str]) -> Uuid {
    let id = Uuid::now_v7();
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    sqlx::query(
        "insert into videos (id, title, video_url, tags, status, published_at)
         values ($1, 'A title', 'https://cdn.example.com/v.mp4', $2, $3,
                 case when $3 = 'published' then now() end)",
    )
    .bind(id)
    .bind(&tags)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn exec(pool: &PgPool, sql: &str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(pool).await.unwrap();
}

fn tag(t: &str) -> Scope {
    Scope::Tag(t.into())
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn published_insert_purges_feed_and_its_tags_only(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    inv.process_available().await.unwrap();
    let id = insert(&h.pool, "published", &["summer", "linen"]).await;
    let all = [
        Scope::Feed,
        Scope::Video(id),
        tag("summer"),
        tag("linen"),
        tag("winter"),
        Scope::Video(Uuid::nil()),
    ];
    h.mark(&all).await;

    assert_eq!(inv.process_available().await.unwrap(), 1);

    let purged = h.purged(&all).await;
    // No detail: a new id has nothing cached (the read API never caches 404s).
    assert_eq!(purged, vec![Scope::Feed, tag("summer"), tag("linen")]);
    assert_eq!(h.checkpoint().await, h.newest_seq().await);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn drafts_purge_nothing_but_advance_the_checkpoint(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    let id = insert(&h.pool, "draft", &["summer"]).await;
    exec(
        &h.pool,
        "update videos set tags = '{winter}', title = 'Other' where id = $1",
        id,
    )
    .await;
    let all = [Scope::Feed, Scope::Video(id), tag("summer"), tag("winter")];
    h.mark(&all).await;

    assert_eq!(inv.process_available().await.unwrap(), 2);
    exec(&h.pool, "delete from videos where id = $1", id).await;
    assert_eq!(inv.process_available().await.unwrap(), 1);

    assert_eq!(h.purged(&all).await, Vec::<Scope>::new());
    assert_eq!(h.checkpoint().await, 3);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_kind_of_change_purges_exactly_its_scopes(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    let id = insert(&h.pool, "published", &["summer", "linen"]).await;
    inv.process_available().await.unwrap();
    let all = [
        Scope::Feed,
        Scope::Video(id),
        tag("summer"),
        tag("linen"),
        tag("wool"),
        tag("winter"),
    ];

    let cases: &[(&str, &[Scope])] = &[
        // Tag change: old and new tags.
        (
            "update videos set tags = '{linen,wool}' where id = $1",
            &[
                Scope::Feed,
                Scope::Video(id),
                tag("summer"),
                tag("linen"),
                tag("wool"),
            ],
        ),
        // view_count: every scope the video is in, nothing else.
        (
            "update videos set view_count = view_count + 10 where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("linen"), tag("wool")],
        ),
        // Unpublish, with a tag change: the old tags only.
        (
            "update videos set status = 'draft', tags = '{winter}' where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("linen"), tag("wool")],
        ),
        // Publish: the new tags only.
        (
            "update videos set status = 'published', tags = '{summer}' where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("summer")],
        ),
        // A no-op update emits no event and purges nothing.
        ("update videos set tags = '{summer}' where id = $1", &[]),
        // Delete of a published video.
        (
            "delete from videos where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("summer")],
        ),
    ];
    for (sql, expected) in cases {
        h.mark(&all).await;
        exec(&h.pool, sql, id).await;
        inv.process_available().await.unwrap();
        let mut expected = expected.to_vec();
        expected.sort();
        let mut purged = h.purged(&all).await;
        purged.sort();
        assert_eq!(purged, expected, "after `{sql}`");
    }
    assert_eq!(h.checkpoint().await, h.newest_seq().await);
}

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

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "invalidator_events_processed_total",
        "invalidation_lag_seconds_bucket",
        "invalidator_checkpoint_lag",
        "invalidator_purged_scopes_total",
    ] {
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
