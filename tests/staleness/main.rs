//! The staleness checker: writers and readers hammer the real stack for a
//! bounded time; every acknowledged write (ack time, version made) and every
//! read (start time, versions seen) is recorded; afterwards it counts the reads
//! that started more than [`FRESH_WITHIN`] after an acknowledged write yet
//! showed an older version (guarantee 1). Healthy, and with Redis flapping.
//! Run with `--nocapture` to see the figures.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod runs;

use std::{
    cell::RefCell,
    collections::HashMap,
    time::{Duration, Instant},
};

use common::{Env, Stack, FRESH_WITHIN};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use test_support::PrivateRedis;
use uuid::Uuid;

const VIDEOS: usize = 12;
const WRITERS: usize = 4;
const READERS: usize = 8;
/// How long the checker runs: 8 s in the test suite; longer soaks with
/// `STALENESS_SECONDS=300 cargo test -p videofeed --test staleness`.
fn run_for() -> Duration {
    let seconds = std::env::var("STALENESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    Duration::from_secs(seconds)
}
/// Each writer's pause between writes: enough writes to race the readers,
/// few enough that the 2-core test machine is not only busy writing.
const WRITE_PAUSE: Duration = Duration::from_millis(40);

const PAGES: [&str; 4] = [
    "/v1/videos?page_size=100",
    "/v1/videos?page_size=100&sort=popular",
    "/v1/videos?page_size=100&tag=summer",
    "/v1/videos?page_size=100&tag=linen",
];

/// One video's version as one read saw it.
struct Seen {
    start: Instant,
    id: Uuid,
    version: i64,
    path: String,
}

#[derive(Default)]
struct Log {
    /// Per video: (ack time, version the write made).
    acks: HashMap<Uuid, Vec<(Instant, i64)>>,
    seen: Vec<Seen>,
    writes: usize,
    reads: usize,
    /// Requests that did not give the expected 2xx: (what, status).
    failures: Vec<(String, String)>,
    cache: HashMap<String, usize>,
}

struct Report {
    writes: usize,
    reads: usize,
    observations: usize,
    violations: Vec<String>,
    /// Reads that showed an older version than one already acknowledged when
    /// they started (allowed within the freshness window).
    stale_reads: usize,
    /// The longest time from a write's ack to the start of a read that still
    /// showed an older version.
    worst_lag: Duration,
}

impl Log {
    fn analyse(mut self) -> Report {
        let mut violations = Vec::new();
        let mut stale_reads = 0;
        let mut worst_lag = Duration::ZERO;
        // Per video: acks by time, with the running maximum of versions, so
        // "the newest version acknowledged before t" is a binary search.
        let mut timelines: HashMap<Uuid, (Vec<Instant>, Vec<i64>)> = HashMap::new();
        for (id, acks) in &mut self.acks {
            acks.sort();
            let times = acks.iter().map(|a| a.0).collect();
            let maxima = acks
                .iter()
                .scan(0, |max, a| {
                    *max = (*max).max(a.1);
                    Some(*max)
                })
                .collect();
            timelines.insert(*id, (times, maxima));
        }
        for seen in &self.seen {
            let Some((times, maxima)) = timelines.get(&seen.id) else {
                continue;
            };
            let before = times.partition_point(|t| *t < seen.start);
            if before == 0 || maxima[before - 1] <= seen.version {
                continue;
            }
            stale_reads += 1;
            // The first write this read missed.
            let missed = maxima[..before].partition_point(|v| *v <= seen.version);
            let lag = seen.start - times[missed];
            worst_lag = worst_lag.max(lag);
            let due = times.partition_point(|t| *t + FRESH_WITHIN < seen.start);
            if due > 0 && maxima[due - 1] > seen.version {
                violations.push(format!(
                    "{} showed {} at version {} {lag:?} after version {} was acknowledged",
                    seen.path, seen.id, seen.version, maxima[missed]
                ));
            }
        }
        Report {
            writes: self.writes,
            reads: self.reads,
            observations: self.seen.len(),
            violations,
            stale_reads,
            worst_lag,
        }
    }
}

async fn writer(stack: &Stack, log: &RefCell<Log>, ids: &[Uuid], n: usize, until: Instant) {
    let mut round = 0usize;
    while Instant::now() < until {
        let id = ids[(n + round * WRITERS) % ids.len()];
        let patch = match round % 4 {
            0 => json!({"view_count": (round * 7919 + n) % 100_000}),
            1 => json!({"title": format!("Writer {n} round {round}")}),
            // Always in `summer`, in and out of `linen`: tag feeds change too.
            2 => json!({"tags": ["summer", "linen"]}),
            _ => json!({"tags": ["summer"]}),
        };
        round += 1;
        let response = stack
            .http
            .patch(stack.write.url(&format!("/v1/videos/{id}")))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&patch)
            .send()
            .await;
        let acked = Instant::now();
        let outcome = match response {
            Ok(r) if r.status() == StatusCode::OK => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                Ok(body["version"].as_i64().unwrap())
            }
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        };
        // Borrowed only between awaits: the tasks share one thread.
        {
            let mut log = log.borrow_mut();
            match outcome {
                Ok(version) => {
                    log.acks.entry(id).or_default().push((acked, version));
                    log.writes += 1;
                }
                Err(failure) => log.failures.push((format!("PATCH {id}"), failure)),
            }
        }
        tokio::time::sleep(WRITE_PAUSE).await;
    }
}

async fn reader(stack: &Stack, log: &RefCell<Log>, ids: &[Uuid], n: usize, until: Instant) {
    let mut round = 0usize;
    while Instant::now() < until {
        // Every other read a detail, else one of the feed pages.
        let path = match round % 2 {
            0 => format!("/v1/videos/{}", ids[(n + round) % ids.len()]),
            _ => PAGES[(n + round / 2) % PAGES.len()].to_owned(),
        };
        round += 1;
        let start = Instant::now();
        let response = stack.http.get(stack.read.url(&path)).send().await;
        let response = match response {
            Ok(r) if r.status() == StatusCode::OK => r,
            Ok(r) => {
                let status = r.status().to_string();
                log.borrow_mut().failures.push((path, status));
                continue;
            }
            Err(e) => {
                log.borrow_mut().failures.push((path, e.to_string()));
                continue;
            }
        };
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = response.json().await.unwrap();
        let videos = match body["results"].as_array() {
            Some(results) => results.clone(),
            None => vec![body],
        };
        let mut log = log.borrow_mut();
        log.reads += 1;
        *log.cache.entry(cache).or_default() += 1;
        for video in videos {
            log.seen.push(Seen {
                start,
                id: video["id"].as_str().unwrap().parse().unwrap(),
                version: video["version"].as_i64().unwrap(),
                path: path.clone(),
            });
        }
    }
}

async fn seed(stack: &Stack) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(VIDEOS);
    for i in 0..VIDEOS {
        let tags: &[&str] = if i % 2 == 0 {
            &["summer", "linen"]
        } else {
            &["summer"]
        };
        ids.push(stack.create(&format!("Video {i}"), tags, "published").await);
    }
    ids
}

/// Runs the writers and readers (and `meanwhile`) for [`run_for`].
async fn run(stack: &Stack, ids: &[Uuid], meanwhile: impl std::future::Future<Output = ()>) -> Log {
    let log = RefCell::new(Log::default());
    let until = Instant::now() + run_for();
    let writers = join_all((0..WRITERS).map(|n| writer(stack, &log, ids, n, until)));
    let readers = join_all((0..READERS).map(|n| reader(stack, &log, ids, n, until)));
    let bounded = tokio::time::timeout(run_for() + Duration::from_secs(20), async {
        futures::join!(writers, readers, meanwhile)
    });
    assert!(bounded.await.is_ok(), "the run did not end in time");
    log.into_inner()
}

fn check(what: &str, log: Log) {
    let failures = log.failures.clone();
    let cache = log.cache.clone();
    let report = log.analyse();
    println!(
        "{what}: {} writes, {} reads ({} video observations; X-Cache {cache:?}), \
         {} violations, {} stale reads inside the window, worst lag {:?}, {} failed requests",
        report.writes,
        report.reads,
        report.observations,
        report.violations.len(),
        report.stale_reads,
        report.worst_lag,
        failures.len(),
    );
    assert!(report.writes >= 50, "too few writes to prove anything");
    assert!(report.reads >= 100, "too few reads to prove anything");
    assert!(
        report.violations.is_empty(),
        "{what}: {} stale reads after the freshness window, e.g. {:#?}",
        report.violations.len(),
        &report.violations[..report.violations.len().min(10)]
    );
    assert!(
        failures.is_empty(),
        "{what}: failed requests {:?}",
        &failures[..failures.len().min(10)]
    );
}
