//! Scale-out: the real binaries on a real three-master Redis Cluster (started
//! here from the machine's `redis-server`), including a master stopped during
//! reads and writes, and a master failing over to a replica that missed its
//! last purge; and several read APIs and invalidators on one Redis.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod failover;

use std::time::{Duration, Instant};

use common::{shows, wait_until, Env, Proc, Stack, FRESH_WITHIN};
use reqwest::StatusCode;
use serde_json::json;
use shared::cache::{KeySpace, Scope};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use test_support::PrivateRedisCluster;
use uuid::Uuid;

const FEED: &str = "/v1/videos?page_size=100";

fn tag_page(tag: &str) -> String {
    format!("/v1/videos?page_size=100&tag={tag}")
}

fn detail(id: Uuid) -> String {
    format!("/v1/videos/{id}")
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_cluster_caches_and_a_write_is_fresh_within_a_second(
    _pool: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let cluster = PrivateRedisCluster::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = cluster.url();
    let stack = Stack::start(env).await;
    let a = stack.create("Cluster one", &["summer"], "published").await;
    let paths = [FEED.to_owned(), tag_page("summer"), detail(a)];
    for path in &paths {
        let (status, cache, _) = stack.get(path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "MISS"), "{path}");
        // The create's own purge may land after that first store.
        stack.warm(path).await;
        let (status, cache, body) = stack.get(path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"), "{path}");
        assert!(shows(&body, a, "Cluster one"), "{path}: {body}");
    }

    stack.patch(a, json!({"title": "Cluster two"})).await;
    let acked = Instant::now();
    for path in &paths {
        stack
            .assert_fresh(acked, path, "title change", |s, page| {
                s == StatusCode::OK && shows(page, a, "Cluster two")
            })
            .await;
    }
    for path in &paths {
        stack.warm(path).await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_stopped_master_bypasses_only_its_slots_and_no_stale_page_survives(
    _pool: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut cluster = PrivateRedisCluster::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = cluster.url();
    let keys = KeySpace::new(&env.prefix).unwrap();
    let stack = Stack::start(env).await;

    // The master to stop: not the epoch's, so that only the restart check
    // (every master's run_id) can replace the epoch.
    let epoch_master = cluster.master_of(&keys.epoch()).await.unwrap();
    let victim = (epoch_master + 1) % PrivateRedisCluster::MASTERS;
    // One video per tag; tags spread over the masters by their hash slots.
    let mut videos = Vec::new();
    for i in 0..20 {
        let tag = format!("t{i}");
        let id = stack.create("v0", &[tag.as_str()], "published").await;
        let master = cluster
            .master_of(&keys.generation(&Scope::Tag(tag.clone())))
            .await
            .unwrap();
        videos.push((tag, id, master));
    }
    let (down, up): (Vec<_>, Vec<_>) = videos.iter().partition(|(_, _, m)| *m == victim);
    assert!(!up.is_empty() && !down.is_empty(), "tags did not spread");
    for (tag, _, _) in &videos {
        stack.warm(&tag_page(tag)).await;
    }
    let redis = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let redis = redis.get_async_connection().await.unwrap();
    let epoch = || {
        let (mut redis, key) = (redis.clone(), keys.epoch());
        async move {
            let mut get = redis::cmd("GET");
            get.arg(key);
            let read = get.query_async::<Option<String>>(&mut redis);
            tokio::time::timeout(Duration::from_millis(500), read)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        }
    };
    let epoch_before = epoch().await;
    assert!(epoch_before.is_some(), "no epoch in the cluster");

    cluster.stop(victim).await.unwrap();
    let stopped = Instant::now();
    // The stopped master's scopes degrade to BYPASS, served from Postgres.
    for (tag, id, _) in &down {
        let bypassed = wait_until(Duration::from_secs(10), || async {
            let (status, cache, body) = stack.get(&tag_page(tag)).await;
            status == StatusCode::OK && cache == "BYPASS" && shows(&body, *id, "v0")
        })
        .await;
        assert!(bypassed, "{tag} on the stopped master never bypassed");
    }
    eprintln!(
        "stopped master's scopes bypassed after {:?}",
        stopped.elapsed()
    );
    // The others keep being served from the cache.
    for (tag, id, _) in &up {
        for _ in 0..5 {
            let (status, cache, body) = stack.get(&tag_page(tag)).await;
            assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"), "{tag}");
            assert!(shows(&body, *id, "v0"), "{tag}: {body}");
        }
    }

    // Writes during the outage: the healthy masters' scopes are purged all
    // the same (the failed batch is retried, later ones purged ahead).
    for (_, id, _) in &videos {
        stack.patch(*id, json!({"title": "v1"})).await;
    }
    let acked = Instant::now();
    for (tag, id, _) in &videos {
        stack
            .assert_fresh(acked, &tag_page(tag), "during the outage", |s, page| {
                s == StatusCode::OK && shows(page, *id, "v1")
            })
            .await;
    }
    eprintln!(
        "every page fresh {:?} after the writes during the outage",
        acked.elapsed()
    );
    for (tag, id, _) in &down {
        let (status, cache, body) = stack.get(&tag_page(tag)).await;
        assert_eq!(
            (status, cache.as_str()),
            (StatusCode::OK, "BYPASS"),
            "{tag}"
        );
        assert!(shows(&body, *id, "v1"), "{tag}: {body}");
    }

    cluster.restart(victim).await.unwrap();
    // A master back under a new run_id may hold old generations (restored
    // from an old snapshot): every process replaces the epoch.
    let replaced = wait_until(Duration::from_secs(10), || async {
        epoch()
            .await
            .is_some_and(|now| Some(&now) != epoch_before.as_ref())
    })
    .await;
    assert!(
        replaced,
        "the epoch was not replaced after a master restart"
    );
    // Caching resumes on the restarted master's slots...
    for (tag, _, _) in &down {
        let resumed = wait_until(Duration::from_secs(15), || async {
            stack.get(&tag_page(tag)).await.1 == "HIT"
        })
        .await;
        assert!(resumed, "{tag}: caching never resumed after the restart");
    }
    // ...and every page served is the truth, cached or not.
    for (tag, id, _) in &videos {
        for path in [tag_page(tag), detail(*id)] {
            let (status, cache, body) = stack.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(shows(&body, *id, "v1"), "{path} ({cache}) stale: {body}");
        }
    }
    // And a write after the recovery is fresh within a second everywhere.
    for (_, id, _) in &videos {
        stack.patch(*id, json!({"title": "v2"})).await;
    }
    let acked = Instant::now();
    for (tag, id, _) in &videos {
        stack
            .assert_fresh(acked, &tag_page(tag), "after recovery", |s, page| {
                s == StatusCode::OK && shows(page, *id, "v2")
            })
            .await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn three_read_apis_and_two_invalidators_keep_every_read_fresh(
    _pool: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let env = Env::for_test(&connect);
    let mut stack = Stack::start(env.clone()).await;
    let reads = [env.read_api(), env.read_api()];
    let second_invalidator = env.invalidator();
    for proc in reads.iter().chain([&second_invalidator]) {
        stack.wait_ready(proc).await;
    }
    let readers: Vec<&Proc> = std::iter::once(&stack.read).chain(reads.iter()).collect();
    let a = stack.create("r0", &["summer"], "published").await;
    let paths = [FEED.to_owned(), tag_page("summer"), detail(a)];

    let mut turn = 0usize;
    for round in 1..=8 {
        if round == 5 {
            // One invalidator dies mid-run; the other carries on alone.
            stack.invalidator.kill();
        }
        // Every read API holds the current version (a stale copy would show).
        let before = format!("r{}", round - 1);
        for read in &readers {
            for path in &paths {
                let cached = wait_until(Duration::from_secs(5), || async {
                    let (status, cache, body) = stack.get_from(read, path).await;
                    status == StatusCode::OK && cache == "HIT" && shows(&body, a, &before)
                })
                .await;
                assert!(cached, "round {round}: {path} never a HIT of {before}");
            }
        }

        let title = format!("r{round}");
        stack.patch(a, json!({"title": title})).await;
        let acked = Instant::now();
        // Round-robin reads until a second after the ack...
        while acked.elapsed() < FRESH_WITHIN {
            let read = readers[turn % readers.len()];
            let path = &paths[turn % paths.len()];
            turn += 1;
            let (status, _, body) = stack.get_from(read, path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // ...and every read started after it shows the write, everywhere.
        for _ in 0..2 {
            for read in &readers {
                for path in &paths {
                    let (status, cache, body) = stack.get_from(read, path).await;
                    assert!(
                        status == StatusCode::OK && shows(&body, a, &title),
                        "round {round}: {path} on {} stale ({cache}) {:?} after the ack: {body}",
                        read.addr,
                        acked.elapsed()
                    );
                }
            }
        }
    }
}
