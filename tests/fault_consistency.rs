//! Faults, then the truth. Each test breaks one dependency of the running
//! stack (private Redis or Postgres servers, never the shared ones), checks
//! what the contract promises while it is broken (status codes, `X-Cache`,
//! `Retry-After`, `/readyz`, bounded latency), heals it without restarting any
//! process, and then compares every page the read API serves with the truth
//! the test computes itself with its own SQL.
//!
//! Figures (worst latency, time to recover, 503 counts) are printed to
//! stderr: `cargo test --test fault_consistency -- --nocapture`.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{seq_and_checkpoint, wait_until, Env, Proc, Stack, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_support::{PrivatePostgres, PrivateRedis};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    Connection, PgConnection, PgPool, Row,
};
use uuid::Uuid;

/// Reconnects and backoff after a heal, not the one-second promise.
const RECOVERY: Duration = Duration::from_secs(20);
/// Once the invalidator has caught up, how long the served pages may take to
/// equal the truth.
const CONVERGE: Duration = Duration::from_secs(2);
/// The breaker's promise: a dead or hung Redis never makes a read wait this
/// long (bounded, not hung: an unbounded Redis call would run into the HTTP
/// client's 10 s timeout; how fast bypassed reads are is the benchmarks' job).
const BOUNDED: Duration = Duration::from_secs(3);
/// How long after Redis fails an in-process (L1) copy may still answer: its
/// tracking lease (250 ms) plus a heartbeat period and scheduling slack.
const L1_LEASE_GRACE: Duration = Duration::from_millis(500);
/// A tag the seed gives many videos (second in its vocabulary).
const TAG: &str = "summer";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sort {
    Newest,
    Popular,
}

impl Sort {
    fn name(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Popular => "popular",
        }
    }

    /// The contract's order, written independently of the read API's SQL.
    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "published_at desc, id desc",
            Sort::Popular => "view_count desc, published_at desc, id desc",
        }
    }
}

/// One public feed request in page mode.
#[derive(Debug, Clone, Copy)]
struct Feed {
    sort: Sort,
    tag: Option<&'static str>,
    page: i64,
    page_size: i64,
}

impl Feed {
    fn path(&self) -> String {
        let mut path = format!(
            "/v1/videos?page={}&page_size={}&sort={}",
            self.page,
            self.page_size,
            self.sort.name()
        );
        if let Some(tag) = self.tag {
            path.push_str("&tag=");
            path.push_str(tag);
        }
        path
    }
}

/// The pages every consistency check compares: the first pages of both
/// sorts, a tag feed, and a big page.
fn checked_feeds() -> Vec<Feed> {
    let mut feeds = Vec::new();
    for sort in [Sort::Newest, Sort::Popular] {
        for page in 1..=4 {
            feeds.push(Feed {
                sort,
                tag: None,
                page,
                page_size: 20,
            });
        }
    }
    for page in 1..=3 {
        feeds.push(Feed {
            sort: Sort::Newest,
            tag: Some(TAG),
            page,
            page_size: 10,
        });
    }
    feeds.push(Feed {
        sort: Sort::Popular,
        tag: Some(TAG),
        page: 1,
        page_size: 10,
    });
    feeds.push(Feed {
        sort: Sort::Newest,
        tag: None,
        page: 1,
        page_size: 100,
    });
    feeds
}

/// What a request returns, reduced to what the truth determines.
#[derive(Debug, PartialEq)]
enum Seen {
    Page {
        total_videos: i64,
        total_pages: i64,
        page: i64,
        page_size: i64,
        /// Ids in order, each with its version.
        results: Vec<(Uuid, i64)>,
    },
    Video {
        id: Uuid,
        version: i64,
        title: String,
        view_count: i64,
    },
    NotFound,
    Other(u16),
}

fn seen_page(status: StatusCode, body: &Value) -> Seen {
    match status {
        StatusCode::OK => Seen::Page {
            total_videos: body["total_videos"].as_i64().unwrap_or(-1),
            total_pages: body["total_pages"].as_i64().unwrap_or(-1),
            page: body["page"].as_i64().unwrap_or(-1),
            page_size: body["page_size"].as_i64().unwrap_or(-1),
            results: body["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    (
                        v["id"].as_str().and_then(|s| s.parse().ok()).unwrap(),
                        v["version"].as_i64().unwrap_or(-1),
                    )
                })
                .collect(),
        },
        StatusCode::NOT_FOUND => Seen::NotFound,
        other => Seen::Other(other.as_u16()),
    }
}

fn seen_video(status: StatusCode, body: &Value) -> Seen {
    match status {
        StatusCode::OK => Seen::Video {
            id: body["id"].as_str().and_then(|s| s.parse().ok()).unwrap(),
            version: body["version"].as_i64().unwrap_or(-1),
            title: body["title"].as_str().unwrap_or("").to_owned(),
            view_count: body["view_count"].as_i64().unwrap_or(-1),
        },
        StatusCode::NOT_FOUND => Seen::NotFound,
        other => Seen::Other(other.as_u16()),
    }
}

/// The page the contract says `feed` is, computed from `videos` directly.
async fn truth_page(pool: &PgPool, feed: &Feed) -> Seen {
    let total_videos: i64 = sqlx::query_scalar(
        "select count(*) from videos
         where status = 'published' and ($1::text is null or $1 = any(tags))",
    )
    .bind(feed.tag)
    .fetch_one(pool)
    .await
    .unwrap();
    let total_pages = (total_videos + feed.page_size - 1) / feed.page_size;
    // An empty feed's page 1 exists; any other page past the last is a 404.
    if feed.page > total_pages.max(1) {
        return Seen::NotFound;
    }
    let sql = format!(
        "select id, version from videos
         where status = 'published' and ($1::text is null or $1 = any(tags))
         order by {} limit $2 offset $3",
        feed.sort.order_by()
    );
    let results = sqlx::query(&sql)
        .bind(feed.tag)
        .bind(feed.page_size)
        .bind((feed.page - 1) * feed.page_size)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get("id"), row.get("version")))
        .collect();
    Seen::Page {
        total_videos,
        total_pages,
        page: feed.page,
        page_size: feed.page_size,
        results,
    }
}

async fn truth_video(pool: &PgPool, id: Uuid) -> Seen {
    sqlx::query(
        "select version, title, view_count from videos where id = $1 and status = 'published'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap()
    .map_or(Seen::NotFound, |row| Seen::Video {
        id,
        version: row.get("version"),
        title: row.get("title"),
        view_count: row.get("view_count"),
    })
}

/// The truth of every checked feed and of the detail pages of `videos`.
async fn truths(pool: &PgPool, videos: &[Uuid]) -> Vec<(String, Seen)> {
    let mut truths = Vec::new();
    for feed in checked_feeds() {
        truths.push((feed.path(), truth_page(pool, &feed).await));
    }
    for &id in videos {
        truths.push((format!("/v1/videos/{id}"), truth_video(pool, id).await));
    }
    truths
}

/// Every difference between what the read API serves and `truths`. A page
/// that matches must also match, as a cache HIT, on a second read: the
/// compared pages came from the cache too.
async fn differences(stack: &Stack, truths: &[(String, Seen)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, truth) in truths {
        let seen = |status, body: &Value| match truth {
            Seen::Video { .. } => seen_video(status, body),
            _ => seen_page(status, body),
        };
        let (status, _, body) = stack.get(path).await;
        let first = seen(status, &body);
        if first != *truth {
            found.push(format!("{path}: served {first:?}, truth {truth:?}"));
            continue;
        }
        if status == StatusCode::OK {
            let (status, cache, body) = stack.get(path).await;
            let second = seen(status, &body);
            if cache != "HIT" || second != *truth {
                found.push(format!(
                    "{path}: second read {cache:?} served {second:?}, truth {truth:?}"
                ));
            }
        }
    }
    found
}

/// How a consistency check went, for the printed figures.
struct Convergence {
    caught_up_after: Duration,
    pages_equal_after: Duration,
    /// Comparisons of every checked page with the truth until all matched.
    attempts: usize,
}

impl std::fmt::Display for Convergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalidator caught up after {:?}, pages equal to the truth {:?} later \
             (comparison {})",
            self.caught_up_after, self.pages_equal_after, self.attempts
        )
    }
}

/// Waits (bounded) for the invalidator to reach the outbox's end, then for
/// the served pages to equal the truth; panics with every difference if they
/// do not. Callers have no write in flight, so the truth is computed once.
async fn assert_consistent(stack: &Stack, pool: &PgPool, videos: &[Uuid]) -> Convergence {
    let started = Instant::now();
    let caught_up = wait_until(RECOVERY, || async {
        let (newest, checkpoint) = seq_and_checkpoint(pool).await;
        checkpoint == newest
    })
    .await;
    let (newest, checkpoint) = seq_and_checkpoint(pool).await;
    assert!(
        caught_up,
        "the invalidator did not catch up: checkpoint {checkpoint} of {newest}"
    );
    let catch_up = started.elapsed();
    let truths = truths(pool, videos).await;
    let started = Instant::now();
    let mut attempts = 0;
    let converged = wait_until(CONVERGE, || {
        attempts += 1;
        async { differences(stack, &truths).await.is_empty() }
    })
    .await;
    if !converged {
        let found = differences(stack, &truths).await;
        assert!(
            found.is_empty(),
            "pages differ from the truth {CONVERGE:?} after the catch-up:\n{}",
            found.join("\n")
        );
    }
    Convergence {
        caught_up_after: catch_up,
        pages_equal_after: started.elapsed(),
        attempts,
    }
}

/// A random number below `n` (v4 UUIDs are random; this saves a dependency).
fn random_below(n: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

/// Published videos on the first checked pages: changing them changes
/// cached pages.
async fn visible_videos(pool: &PgPool, n: i64) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = Vec::new();
    for sort in [Sort::Newest, Sort::Popular] {
        let sql = format!(
            "select id from videos where status = 'published' order by {} limit $1",
            sort.order_by()
        );
        let rows: Vec<Uuid> = sqlx::query_scalar(&sql)
            .bind(n)
            .fetch_all(pool)
            .await
            .unwrap();
        ids.extend(
            rows.into_iter()
                .filter(|id| !ids.contains(id))
                .collect::<Vec<_>>(),
        );
    }
    let tagged: Vec<Uuid> = sqlx::query_scalar(
        "select id from videos where status = 'published' and $1 = any(tags)
         order by published_at desc, id desc limit $2",
    )
    .bind(TAG)
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap();
    ids.extend(
        tagged
            .into_iter()
            .filter(|id| !ids.contains(id))
            .collect::<Vec<_>>(),
    );
    ids
}

/// Admin writes that change what the checked pages show: view counts (the
/// popular order), titles, drafts, creations, deletions.
struct Churn {
    videos: Vec<Uuid>,
    round: usize,
}

impl Churn {
    fn new(videos: &[Uuid]) -> Self {
        Self {
            videos: videos.to_vec(),
            round: 0,
        }
    }

    /// One write; returns its status (the write API may answer 503 during a
    /// fault).
    async fn next(&mut self, stack: &Stack) -> StatusCode {
        let round = self.round;
        self.round += 1;
        let index = round % self.videos.len();
        let path = format!("/v1/videos/{}", self.videos[index]);
        let (status, _) = match round % 6 {
            0 => {
                let views = 1_000_000 + random_below(1_000_000);
                stack
                    .admin(Method::PATCH, &path, Some(json!({ "view_count": views })))
                    .await
            }
            1 => {
                let title = format!("Churned {round}");
                stack
                    .admin(Method::PATCH, &path, Some(json!({ "title": title })))
                    .await
            }
            2 => {
                stack
                    .admin(Method::PATCH, &path, Some(json!({"status": "draft"})))
                    .await
            }
            3 => {
                stack
                    .admin(Method::PATCH, &path, Some(json!({"status": "published"})))
                    .await
            }
            4 => {
                let body = common::video_body(&format!("New {round}"), &[TAG], "published");
                let created = stack.admin(Method::POST, "/v1/videos", Some(body)).await;
                if let Some(id) = created.1["id"].as_str().and_then(|s| s.parse().ok()) {
                    self.videos.push(id);
                }
                created
            }
            _ => {
                let deleted = stack.admin(Method::DELETE, &path, None).await;
                // Each creation above replaces the deleted target.
                if deleted.0 == StatusCode::NO_CONTENT {
                    self.videos.swap_remove(index);
                }
                deleted
            }
        };
        status
    }
}

async fn ready_status(stack: &Stack, proc: &Proc) -> (Option<StatusCode>, Value) {
    match stack.http.get(proc.url("/readyz")).send().await {
        Ok(response) => {
            let status = response.status();
            (Some(status), response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    }
}

async fn becomes_ready(stack: &Stack, proc: &Proc, status: StatusCode, within: Duration) -> bool {
    wait_until(within, || async {
        ready_status(stack, proc).await.0 == Some(status)
    })
    .await
}

/// A fresh path (a page size no check uses) is a MISS, then a HIT.
async fn caching_works(stack: &Stack) -> bool {
    let path = format!("/v1/videos?page_size={}", 21 + random_below(79));
    stack.get(&path).await.1 == "MISS" && stack.get(&path).await.1 == "HIT"
}

#[derive(Clone, Copy, Debug)]
enum RedisFault {
    Killed,
    Hung,
}

/// Redis killed (restarted empty) or hung (SIGSTOP, then SIGCONT) while reads
/// and writes go on.
async fn redis_fault(pool: PgPool, connect: PgConnectOptions, fault: RedisFault) {
    let mut redis = PrivateRedis::start().await.unwrap();
    let mut env = Env::for_test(&connect);
    env.redis_url = redis.url();
    env.seed(300);
    let stack = Stack::start(env).await;
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;

    match fault {
        RedisFault::Killed => redis.stop().await.unwrap(),
        RedisFault::Hung => redis.pause().unwrap(),
    }
    let fault_started = Instant::now();
    let mut paths: Vec<String> = checked_feeds().iter().map(Feed::path).collect();
    paths.extend(videos.iter().map(|id| format!("/v1/videos/{id}")));
    let (mut slowest, mut reads, mut writes) = (Duration::ZERO, 0, 0);
    let mut churn = Churn::new(&videos);
    let mut not_bypass = BTreeMap::<String, usize>::new();
    while fault_started.elapsed() < Duration::from_secs(4) {
        for path in &paths {
            let started = Instant::now();
            let (status, cache, _) = stack.get(path).await;
            slowest = slowest.max(started.elapsed());
            reads += 1;
            // Details of videos the churn drafted or deleted are 404s.
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::NOT_FOUND && path.starts_with("/v1/videos/")),
                "{fault:?}: {path}: {status}"
            );
            // A 404 carries no `X-Cache` (not cached at all). An in-process
            // copy may answer until its tracking lease runs out (250 ms, see
            // read-api's cache::tracking); from then on no layer answers.
            let after_lease = started.duration_since(fault_started) > L1_LEASE_GRACE;
            if status == StatusCode::OK && cache != "BYPASS" && after_lease {
                *not_bypass.entry(cache).or_default() += 1;
            }
        }
        let status = churn.next(&stack).await;
        assert!(status.is_success(), "{fault:?}: a write got {status}");
        writes += 1;
    }
    // Even the calls that find the fault out (before the breaker opens) are
    // served from Postgres: past the in-process lease, no cache layer answers
    // without Redis.
    assert!(
        not_bypass.is_empty(),
        "{fault:?}: reads not BYPASS while Redis was down: {not_bypass:?}"
    );
    assert!(slowest < BOUNDED, "{fault:?}: a read took {slowest:?}");
    let (status, body) = ready_status(&stack, &stack.read).await;
    assert_eq!(status, Some(StatusCode::OK), "read-api /readyz: {body}");
    assert_eq!(body["checks"]["redis"]["ok"], json!(false), "{body}");
    assert!(
        becomes_ready(
            &stack,
            &stack.invalidator,
            StatusCode::SERVICE_UNAVAILABLE,
            RECOVERY
        )
        .await,
        "{fault:?}: the invalidator's /readyz did not notice"
    );

    match fault {
        RedisFault::Killed => redis.restart().await.unwrap(),
        RedisFault::Hung => redis.resume().unwrap(),
    }
    let healed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || caching_works(&stack)).await,
        "{fault:?}: caching did not resume"
    );
    let caching_back = healed.elapsed();
    let converged = assert_consistent(&stack, &pool, &videos).await;
    let (status, body) = ready_status(&stack, &stack.read).await;
    assert_eq!(status, Some(StatusCode::OK));
    assert_eq!(body["checks"]["redis"]["ok"], json!(true), "{body}");
    eprintln!(
        "redis {fault:?}: {reads} reads (slowest {slowest:?}, not BYPASS {not_bypass:?}), \
         {writes} writes; caching back {caching_back:?} after the heal, {converged}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_killed_then_restarted_empty_serves_the_truth(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    redis_fault(pool, connect, RedisFault::Killed).await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn redis_hung_then_resumed_serves_the_truth(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    redis_fault(pool, connect, RedisFault::Hung).await;
}

/// A private Postgres with a migrated, seeded `app` database, the shared
/// Redis under a fresh prefix, and a pool for the test's own SQL.
async fn private_postgres(videos: u32) -> (PrivatePostgres, PgPool, Env) {
    let pg = PrivatePostgres::start().await.unwrap();
    pg.create_database("app").await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg.url("app"))
        .await
        .unwrap();
    shared::db::MIGRATOR.run(&pool).await.unwrap();
    let env = Env::new(pg.url("app"));
    env.seed(videos);
    (pg, pool, env)
}

/// A problem+json 503 with a positive `Retry-After`.
async fn assert_unavailable(what: &str, response: reqwest::Response) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "{what}: Retry-After {retry_after:?}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: {content_type}"
    );
    assert_eq!(body["status"], json!(503), "{what}: {body}");
}

#[tokio::test]
async fn postgres_stopped_then_restarted_recovers_without_restarts_and_serves_the_truth() {
    let (mut pg, pool, env) = private_postgres(300).await;
    let stack = Stack::start(env).await;
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;
    // What the cache holds now, to compare the hits served without Postgres.
    let mut cached = Vec::new();
    for feed in checked_feeds() {
        cached.push((feed.path(), truth_page(&pool, &feed).await));
    }
    for &id in &videos {
        cached.push((format!("/v1/videos/{id}"), truth_video(&pool, id).await));
    }

    pg.stop().await.unwrap();
    let stopped = Instant::now();
    for (path, truth) in &cached {
        let (status, cache, body) = stack.get(path).await;
        assert_eq!(
            (status, cache.as_str()),
            (StatusCode::OK, "HIT"),
            "{path}: {body}"
        );
        let seen = match truth {
            Seen::Video { .. } => seen_video(status, &body),
            _ => seen_page(status, &body),
        };
        assert_eq!(&seen, truth, "{path}");
    }
    let misses = [
        "/v1/videos?page_size=7",
        "/v1/videos?sort=popular&page_size=13",
        "/v1/videos?page=2&page_size=11&tag=summer",
    ];
    let stack_ref = &stack;
    let slowest_miss = futures::future::join_all(misses.iter().map(|path| async move {
        let stack = stack_ref;
        let started = Instant::now();
        let response = stack.http.get(stack.read.url(path)).send().await.unwrap();
        assert_unavailable(&format!("read-api miss {path}"), response).await;
        started.elapsed()
    }))
    .await
    .into_iter()
    .max()
    .unwrap_or_default();
    let writes = [
        (
            Method::POST,
            "/v1/videos".to_owned(),
            Some(common::video_body("Down", &[TAG], "published")),
        ),
        (
            Method::PATCH,
            format!("/v1/videos/{}", videos[0]),
            Some(json!({"title": "Down"})),
        ),
        (Method::DELETE, format!("/v1/videos/{}", videos[1]), None),
    ];
    for (method, path, body) in writes {
        let mut request = stack
            .http
            .request(method.clone(), stack.write.url(&path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_unavailable(
            &format!("write-api {method} {path}"),
            request.send().await.unwrap(),
        )
        .await;
    }
    for proc in [&stack.write, &stack.read, &stack.invalidator] {
        assert!(
            becomes_ready(&stack, proc, StatusCode::SERVICE_UNAVAILABLE, RECOVERY).await,
            "/readyz of {} stayed {:?}",
            proc.url(""),
            ready_status(&stack, proc).await
        );
    }
    let outage = stopped.elapsed();

    pg.restart().await.unwrap();
    let restarted = Instant::now();
    let created = wait_until(RECOVERY, || async {
        let body = common::video_body("After the restart", &[TAG], "published");
        stack.admin(Method::POST, "/v1/videos", Some(body)).await.0 == StatusCode::CREATED
    })
    .await;
    assert!(created, "the write API did not recover");
    let writes_back = restarted.elapsed();
    let served = wait_until(RECOVERY, || async {
        stack.get(misses[0]).await.0 == StatusCode::OK
    })
    .await;
    assert!(served, "misses are not served again");
    let misses_back = restarted.elapsed();
    for proc in [&stack.write, &stack.read, &stack.invalidator] {
        assert!(
            becomes_ready(&stack, proc, StatusCode::OK, RECOVERY).await,
            "/readyz of {} stayed {:?}",
            proc.url(""),
            ready_status(&stack, proc).await
        );
    }
    let ready_back = restarted.elapsed();
    // Changes to cached pages after the heal: only the invalidator, back on
    // its LISTEN connection, can purge them.
    let mut churn = Churn::new(&videos);
    for _ in 0..12 {
        let status = churn.next(&stack).await;
        assert!(status.is_success(), "write after recovery: {status}");
    }
    let converged = assert_consistent(&stack, &pool, &videos).await;
    eprintln!(
        "postgres stopped: outage checks took {outage:?} (slowest 503 miss {slowest_miss:?}); \
         after the restart writes back {writes_back:?}, misses back {misses_back:?}, all ready \
         {ready_back:?}; {converged}"
    );
}

/// Read and write statuses seen under load, by code.
#[derive(Default, Debug)]
struct Tally {
    reads: BTreeMap<u16, usize>,
    writes: BTreeMap<u16, usize>,
    slowest_read: Duration,
    /// 503s whose `Retry-After` was missing or not a positive number.
    without_retry_after: usize,
}

fn retry_after_missing(response: &reqwest::Response) -> bool {
    let seconds = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    response.status() == StatusCode::SERVICE_UNAVAILABLE && seconds.unwrap_or(0) == 0
}

#[tokio::test]
async fn backends_terminated_under_load_recover_and_serve_the_truth() {
    let (_pg, pool, env) = private_postgres(300).await;
    let stack = Arc::new(Stack::start(env).await);
    let videos = visible_videos(&pool, 6).await;
    assert_consistent(&stack, &pool, &videos).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for reader in 0..3 {
        let (stack, stop) = (Arc::clone(&stack), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                // Cache-busting: most of these are misses that need Postgres.
                let feed = Feed {
                    sort: if random_below(2) == 0 {
                        Sort::Newest
                    } else {
                        Sort::Popular
                    },
                    tag: (reader == 0).then_some(TAG),
                    page: 1 + random_below(5) as i64,
                    page_size: 1 + random_below(100) as i64,
                };
                let started = Instant::now();
                let response = stack
                    .http
                    .get(stack.read.url(&feed.path()))
                    .send()
                    .await
                    .unwrap();
                tally.slowest_read = tally.slowest_read.max(started.elapsed());
                tally.without_retry_after += usize::from(retry_after_missing(&response));
                *tally.reads.entry(response.status().as_u16()).or_default() += 1;
            }
            tally
        }));
    }
    {
        let (stack, stop, videos) = (Arc::clone(&stack), Arc::clone(&stop), videos.clone());
        load.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut churn = Churn::new(&videos);
            while !stop.load(Ordering::Relaxed) {
                let status = churn.next(&stack).await;
                *tally.writes.entry(status.as_u16()).or_default() += 1;
            }
            tally
        }));
    }

    let mut killer = PgConnection::connect(&stack.env.database_url)
        .await
        .unwrap();
    let mut terminated = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let killed: Vec<bool> = sqlx::query_scalar(
            "select pg_terminate_backend(pid) from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid()
               and backend_type = 'client backend'",
        )
        .fetch_all(&mut killer)
        .await
        .unwrap();
        terminated += killed.into_iter().filter(|k| *k).count();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for task in load {
        let part = task.await.unwrap();
        for (code, n) in part.reads {
            *tally.reads.entry(code).or_default() += n;
        }
        for (code, n) in part.writes {
            *tally.writes.entry(code).or_default() += n;
        }
        tally.slowest_read = tally.slowest_read.max(part.slowest_read);
        tally.without_retry_after += part.without_retry_after;
    }
    assert!(terminated > 0, "no backend was terminated");
    let bad_reads: Vec<_> = tally
        .reads
        .keys()
        .filter(|c| ![200, 404, 503].contains(*c))
        .collect();
    let bad_writes: Vec<_> = tally
        .writes
        .keys()
        .filter(|c| ![200, 201, 204, 404, 503].contains(*c))
        .collect();
    assert!(
        bad_reads.is_empty() && bad_writes.is_empty(),
        "unexpected statuses under pg_terminate_backend: {tally:?}"
    );
    assert_eq!(
        tally.without_retry_after, 0,
        "503 without Retry-After: {tally:?}"
    );
    assert!(
        tally.reads.get(&200).copied().unwrap_or(0) > 0,
        "no read succeeded: {tally:?}"
    );

    // Recovery: nothing restarted.
    let healed = Instant::now();
    for proc in [&stack.write, &stack.read, &stack.invalidator] {
        assert!(
            becomes_ready(&stack, proc, StatusCode::OK, RECOVERY).await,
            "/readyz of {} stayed {:?}",
            proc.url(""),
            ready_status(&stack, proc).await
        );
    }
    let ready_back = healed.elapsed();
    // Misses right after the storm: a 503 now is a dead pooled connection
    // handed to a request although Postgres is fine again.
    let mut after_storm = BTreeMap::<u16, usize>::new();
    for i in 0..40 {
        let path = format!("/v1/videos?page=1&page_size={}&sort=popular", 41 + i);
        *after_storm
            .entry(stack.get(&path).await.0.as_u16())
            .or_default() += 1;
    }
    assert_eq!(
        after_storm.get(&503),
        None,
        "503 once Postgres was fine again: {after_storm:?}"
    );
    // A write after the storm is fresh within the one-second promise: dead
    // connections left idle in the invalidator's pool are retried at once, and
    // the write's notification cuts any backoff grown during the storm short.
    let id: Uuid = sqlx::query_scalar(
        "select id from videos where status = 'published' order by published_at desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let path = format!("/v1/videos/{id}");
    stack.warm(&path).await;
    let (status, _) = stack
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"title": "After the kills"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let acked = Instant::now();
    // For the figure only: when it first showed. The promise is checked below.
    wait_until(common::FRESH_WITHIN, || async {
        stack.get(&path).await.2["title"] == json!("After the kills")
    })
    .await;
    let fresh_after = acked.elapsed();
    stack
        .assert_fresh(acked, &path, "a write after the storm", |_, body| {
            body["title"] == json!("After the kills")
        })
        .await;
    let converged = assert_consistent(&stack, &pool, &videos).await;
    let lost = common::metric(
        &stack.metrics(&stack.invalidator).await,
        "invalidator_postgres_errors_total",
    );
    assert!(lost >= 1.0, "the invalidator counted no lost connection");
    eprintln!(
        "pg_terminate_backend: {terminated} backends terminated in 6 s; reads {:?} (slowest \
         {:?}), writes {:?}; all ready {ready_back:?} after; 40 misses then {after_storm:?}; \
         first write after it fresh after \
         {fresh_after:?}; {converged}",
        tally.reads, tally.slowest_read, tally.writes
    );
}

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
