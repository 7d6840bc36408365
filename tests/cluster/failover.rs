//! A master failing over to a replica that missed its last purge, while
//! writers and readers run.

use std::{
    cell::{Cell, RefCell},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::cache::{KeySpace, Scope};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use test_support::PrivateRedisCluster;
use uuid::Uuid;

use crate::{
    common::{self, shows, wait_until, Env, Stack, FRESH_WITHIN},
    detail, tag_page, FEED,
};

/// What the failover run saw: acknowledged writes (ack time, video,
/// version) and reads (start time, path, `X-Cache`, video, version).
#[derive(Default)]
struct Seen {
    acks: Vec<(Instant, Uuid, i64)>,
    reads: Vec<(Instant, String, String, Uuid, i64)>,
    failures: Vec<String>,
}

impl Seen {
    /// Reads that started over [`FRESH_WITHIN`] after a write was
    /// acknowledged, yet showed an older version of its video.
    fn violations(&self) -> Vec<String> {
        self.reads
            .iter()
            .filter_map(|(start, path, cache, id, version)| {
                let (acked, _, newer) = self.acks.iter().find(|(acked, acked_id, newer)| {
                    acked_id == id && newer > version && *acked + FRESH_WITHIN < *start
                })?;
                Some(format!(
                    "{path} ({cache}) showed version {version} {:?} after version {newer} \
                     was acknowledged",
                    *start - *acked
                ))
            })
            .collect()
    }
}

async fn patch_version(stack: &Stack, id: Uuid, patch: Value) -> Result<i64, String> {
    let response = stack
        .http
        .patch(stack.write.url(&format!("/v1/videos/{id}")))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&patch)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(response.status().to_string());
    }
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    body["version"]
        .as_i64()
        .ok_or_else(|| format!("no version in {body}"))
}

/// Patches `ids` round-robin until `until` (which may move meanwhile).
async fn failover_writer(stack: &Stack, seen: &RefCell<Seen>, ids: &[Uuid], until: &Cell<Instant>) {
    let mut round = 0usize;
    while Instant::now() < until.get() {
        let id = ids[round % ids.len()];
        let written = patch_version(stack, id, json!({"title": format!("w{round}")})).await;
        let acked = Instant::now();
        match written {
            Ok(version) => seen.borrow_mut().acks.push((acked, id, version)),
            Err(e) => seen.borrow_mut().failures.push(format!("PATCH {id}: {e}")),
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Reads `paths` round-robin until `until` (which may move meanwhile),
/// recording every video's version.
async fn failover_reader(
    stack: &Stack,
    seen: &RefCell<Seen>,
    paths: &[String],
    until: &Cell<Instant>,
) {
    let mut round = 0usize;
    while Instant::now() < until.get() {
        let path = &paths[round % paths.len()];
        round += 1;
        let start = Instant::now();
        let (status, cache, body) = stack.get(path).await;
        if status != StatusCode::OK {
            seen.borrow_mut()
                .failures
                .push(format!("GET {path}: {status}"));
            continue;
        }
        let videos = match body["results"].as_array() {
            Some(results) => results.clone(),
            None => vec![body],
        };
        let mut seen = seen.borrow_mut();
        for video in videos {
            let (Some(id), Some(version)) = (
                video["id"].as_str().and_then(|s| s.parse().ok()),
                video["version"].as_i64(),
            ) else {
                continue;
            };
            seen.reads
                .push((start, path.clone(), cache.clone(), id, version));
        }
    }
}

/// A master fails over to its replica while writers and readers run, and the
/// replica missed the master's last purge (frozen and cut off while the master
/// applied it): the promoted replica holds the old generation and the page
/// stored under it, which only replacing the epoch can orphan. No read that
/// starts over a second after a write's ack may show an older version.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_failover_to_a_replica_that_missed_the_last_purge_serves_nothing_stale(
    _pool: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut cluster = PrivateRedisCluster::start_with_replicas().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(connect.clone())
        .await
        .unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = cluster.url();
    let keys = KeySpace::new(&env.prefix).unwrap();
    let mut stack = Stack::start(env).await;
    // Purges the master's slots failed meanwhile are retried soon after the
    // promotion (the backoff capped low, as docs/scale-out.md advises for
    // keeping the 1-second promise through a master outage).
    stack.invalidator.kill();
    stack.invalidator = stack
        .env
        .invalidator_with(&[("RETRY_MAX_DELAY_MS", "100".into())]);
    stack.wait_ready(&stack.invalidator).await;

    // The quiet video: written once, during the freeze, on a master other
    // than the epoch's (so only the slot map can tell what happened).
    let epoch_master = cluster.master_of(&keys.epoch()).await.unwrap();
    let mut quiet_tag = None;
    for i in 0..50 {
        let tag = format!("quiet{i}");
        let master = cluster
            .master_of(&keys.generation(&Scope::Tag(tag.clone())))
            .await
            .unwrap();
        if master != epoch_master {
            quiet_tag = Some((tag, master));
            break;
        }
    }
    let (quiet_tag, victim) = quiet_tag.unwrap();
    let replica = cluster.replica_of(victim).await.unwrap();
    let quiet = stack.create("q0", &[quiet_tag.as_str()], "published").await;
    let quiet_page = tag_page(&quiet_tag);
    let busy: Vec<Uuid> = {
        let mut ids = Vec::new();
        for i in 0..12 {
            let tag = format!("t{i}");
            ids.push(stack.create("w", &[tag.as_str()], "published").await);
        }
        ids
    };
    let mut paths = vec![quiet_page.clone(), detail(quiet), FEED.to_owned()];
    for (i, id) in busy.iter().enumerate() {
        paths.push(tag_page(&format!("t{i}")));
        paths.push(detail(*id));
    }
    for path in &paths {
        stack.warm(path).await;
    }
    // The quiet page's entry and generation are on the replica too.
    let victim_url = cluster.urls()[victim].clone();
    let mut on_victim = redis::Client::open(victim_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let quiet_generation = keys.generation(&Scope::Tag(quiet_tag.clone()));
    let probe = format!("{quiet_generation}:probe");
    let () = redis::cmd("SET")
        .arg(&probe)
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut on_victim)
        .await
        .unwrap();
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut on_victim)
        .await
        .unwrap();
    assert_eq!(replicated, 1, "the replica is not in sync");
    let generation_before: Option<String> = redis::cmd("GET")
        .arg(&quiet_generation)
        .query_async(&mut on_victim)
        .await
        .unwrap();
    assert!(generation_before.is_some());
    let epoch_before: Option<String> = {
        let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        redis::cmd("GET")
            .arg(keys.epoch())
            .query_async(&mut conn)
            .await
            .unwrap()
    };

    let seen = RefCell::new(Seen::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(60);
    let stop_at = Cell::new(until);
    let promoted = Cell::new(None::<Instant>);
    let lost_purge = Cell::new(false);
    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Frozen, and cut off: what the master sends from now on cannot sit
        // in the replica's socket buffer until it resumes.
        cluster.pause(replica).unwrap();
        let _cut: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("replica")
            .query_async(&mut on_victim)
            .await
            .unwrap();
        let version = patch_version(&stack, quiet, json!({"title": "q1"}))
            .await
            .unwrap();
        seen.borrow_mut()
            .acks
            .push((Instant::now(), quiet, version));
        let quiet_seq = common::seq_and_checkpoint(&pool).await.0;
        // The master applied the purge; its frozen replica did not.
        let purged = wait_until(Duration::from_secs(5), || {
            let (mut conn, key, before) = (
                on_victim.clone(),
                quiet_generation.clone(),
                generation_before.clone(),
            );
            async move {
                let now: Option<String> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(None);
                now != before
            }
        })
        .await;
        assert!(purged, "the quiet write was never purged");
        // And the invalidator is done with it: a batch failing later (on
        // the stopped master) is retried from a checkpoint past it, so
        // nothing purges the quiet scope again.
        let done = wait_until(Duration::from_secs(5), || async {
            common::seq_and_checkpoint(&pool).await.1 >= quiet_seq
        })
        .await;
        assert!(done, "the invalidator never checkpointed the quiet write");
        cluster.stop(victim).await.unwrap();
        cluster.resume(replica).unwrap();
        let stopped = Instant::now();
        let up = wait_until(Duration::from_secs(30), || async {
            cluster.is_master(replica).await == Some(true)
        })
        .await;
        assert!(up, "the replica was never promoted");
        promoted.set(Some(Instant::now()));
        eprintln!(
            "replica promoted {:?} after the master stopped",
            stopped.elapsed()
        );
        let mut on_replica = redis::Client::open(cluster.urls()[replica].as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let generation_after: Option<String> = redis::cmd("GET")
            .arg(&quiet_generation)
            .query_async(&mut on_replica)
            .await
            .unwrap();
        lost_purge.set(generation_after == generation_before);
        // Readers and writers carry on a while on the new master.
        stop_at.set(Instant::now() + Duration::from_secs(4));
    };
    let work = async {
        let writers = futures::future::join_all((0..2).map(|n| {
            let ids: Vec<Uuid> = busy.iter().skip(n).step_by(2).copied().collect();
            let (seen, stack, until) = (&seen, &stack, &stop_at);
            async move { failover_writer(stack, seen, &ids, until).await }
        }));
        let readers = futures::future::join_all((0..4).map(|n| {
            let mut mine = paths.clone();
            mine.rotate_left(n * 3);
            let (seen, stack, until) = (&seen, &stack, &stop_at);
            async move { failover_reader(stack, seen, &mine, until).await }
        }));
        // One more on the quiet page alone: the moments right after the
        // promotion are when its stale page could show.
        let quiet_reader =
            failover_reader(&stack, &seen, std::slice::from_ref(&quiet_page), &stop_at);
        futures::join!(writers, readers, quiet_reader);
    };
    futures::join!(fault, work);
    let seen = seen.into_inner();
    let promoted = promoted.get().unwrap();
    let after_promotion = seen.reads.iter().filter(|r| r.0 > promoted).count();
    let violations = seen.violations();
    eprintln!(
        "{} writes, {} video reads ({after_promotion} after the promotion), {} violations",
        seen.acks.len(),
        seen.reads.len(),
        violations.len()
    );
    assert!(
        seen.acks.len() >= 20 && after_promotion >= 50,
        "too little traffic"
    );
    assert!(
        violations.is_empty(),
        "{} stale reads, e.g. {:#?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    assert!(
        lost_purge.get(),
        "the promoted replica had the purge after all: the test proved nothing"
    );

    // The epoch was replaced, and caching resumes on the promoted master.
    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    let epoch_after: Option<String> = redis::cmd("GET")
        .arg(keys.epoch())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_ne!(epoch_after, epoch_before, "the failover kept the epoch");
    let resumed = wait_until(Duration::from_secs(15), || async {
        let (status, cache, body) = stack.get(&quiet_page).await;
        status == StatusCode::OK && cache == "HIT" && shows(&body, quiet, "q1")
    })
    .await;
    assert!(resumed, "caching never resumed on the promoted replica");
}
