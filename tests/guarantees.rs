//! Guarantees proved through the real binaries that the other suites leave
//! out: the TTL bounds a lost invalidator's damage; error bodies never carry
//! SQL, file paths or stack traces; a transaction that fails after its rows
//! are written leaves no video and no event.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::{result, seq_and_checkpoint, video_body, wait_until, Env, Proc, Stack, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use uuid::Uuid;

/// The read API's `CACHE_TTL_SECONDS` in the TTL test: short, yet long enough
/// that the stale read right after the write surely falls inside it.
const TTL: Duration = Duration::from_secs(4);

/// How long an in-process copy may outlive its Redis entry, as documented
/// (README, "How a request is served"): copies are at most 60 s old, and no
/// older than the TTL.
fn local_copy_lifetime(ttl: Duration) -> Duration {
    ttl.min(Duration::from_secs(60))
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn with_the_invalidator_down_the_ttl_bounds_how_long_a_write_stays_invisible(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let mut stack = Stack::start(Env::for_test(&connect)).await;
    stack.read = stack
        .env
        .read_api_with(&[("CACHE_TTL_SECONDS", TTL.as_secs().to_string())]);
    stack.wait_ready(&stack.read).await;
    let id = stack.create("v1", &["summer"], "published").await;
    // The create's purge done, then no invalidator at all.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let (newest, checkpoint) = seq_and_checkpoint(&pool).await;
            newest == checkpoint
        })
        .await
    );
    stack.invalidator.kill();

    // Pages no one has read yet: cached from now on.
    let paths = [
        "/v1/videos?page_size=7".to_owned(),
        "/v1/videos?page_size=7&tag=summer".to_owned(),
        format!("/v1/videos/{id}"),
    ];
    let stored = Instant::now();
    for path in &paths {
        let (status, cache, body) = stack.get(path).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "MISS"), "{path}");
        assert!(shows(&body, id, "v1"), "{path}: {body}");
        stack.warm(path).await;
    }

    stack.patch(id, json!({"title": "v2"})).await;
    let acked = Instant::now();
    // No purge comes: before the TTL runs out the old page is what is served.
    for path in &paths {
        let started = Instant::now();
        let (status, cache, body) = stack.get(path).await;
        assert!(
            started < stored + TTL,
            "the machine is too slow for this test: the read started {:?} after the store",
            started - stored
        );
        assert_eq!(
            (status, cache.as_str()),
            (StatusCode::OK, "HIT"),
            "{path}: {body}"
        );
        assert!(
            shows(&body, id, "v1"),
            "{path}: fresh with no invalidator running? {body}"
        );
    }

    // Every entry was stored after `stored`; the TTL expires it and an
    // in-process copy lives at most its own lifetime on top.
    let bound = TTL + local_copy_lifetime(TTL);
    let first_fresh = wait_until(bound + Duration::from_secs(5), || async {
        let mut fresh = true;
        for path in &paths {
            fresh &= shows(&stack.get(path).await.2, id, "v2");
        }
        fresh
    })
    .await;
    let fresh_after = acked.elapsed();
    tokio::time::sleep_until((stored + bound).into()).await;
    for path in &paths {
        let started = stored.elapsed();
        let (status, cache, body) = stack.get(path).await;
        assert!(
            status == StatusCode::OK && shows(&body, id, "v2"),
            "{path}: still stale ({cache}) in a read that started {started:?} after the page \
             was cached with CACHE_TTL_SECONDS={}: {body}",
            TTL.as_secs()
        );
    }
    assert!(first_fresh, "never fresh");
    eprintln!(
        "invalidator down, CACHE_TTL_SECONDS={}: every page fresh {fresh_after:?} after the \
         write (bound: {bound:?} after caching)",
        TTL.as_secs()
    );
}

/// Whether `page` (a feed page or a detail) shows `id` with `title`.
fn shows(page: &Value, id: Uuid, title: &str) -> bool {
    if page["id"] == json!(id.to_string()) {
        return page["title"] == json!(title);
    }
    result(page, id).is_some_and(|v| v["title"] == json!(title))
}

/// What an error body must never contain, whatever went wrong: SQL, the
/// database's own words, file paths, panics and stack traces, addresses.
const NEVER_SHOWN: &[&str] = &[
    "select ",
    "insert ",
    "update ",
    "delete ",
    " from ",
    " where ",
    "video_events",
    "relation",
    "constraint",
    "violates",
    "duplicate key",
    "trigger",
    "sqlx",
    "postgres",
    "error returned from database",
    "sqlstate",
    ".rs",
    "src/",
    "/home",
    "/root",
    "/tmp",
    "/usr",
    "panicked",
    "backtrace",
    "stack",
    "thread '",
    "127.0.0.1",
    "os error",
    "connection refused",
];

/// Asserts a problem+json error with `status` whose body holds none of
/// [`NEVER_SHOWN`] nor any of `secrets` (text the test planted in the
/// failure).
async fn assert_reveals_nothing(
    what: &str,
    response: reqwest::Response,
    status: &[StatusCode],
    secrets: &[&str],
) -> StatusCode {
    let got = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(status.contains(&got), "{what}: {got} {text}");
    assert_eq!(content_type, "application/problem+json", "{what}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], json!(got.as_u16()), "{what}: {text}");
    let lower = text.to_lowercase();
    for word in NEVER_SHOWN.iter().chain(secrets) {
        assert!(
            !lower.contains(&word.to_lowercase()),
            "{what}: the error body reveals {word:?}: {text}"
        );
    }
    got
}

async fn write_api_ready(env: &Env) -> (Proc, reqwest::Client) {
    let write = env.write_api();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ready = wait_until(Duration::from_secs(30), || async {
        http.get(write.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "write-api never ready; log:\n{}", write.log());
    (write, http)
}

fn admin(
    http: &reqwest::Client,
    write: &Proc,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    http.request(method, write.url(path))
        .bearer_auth(ADMIN_TOKEN)
}

async fn created_id(response: reqwest::Response) -> Uuid {
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// Text a failing trigger puts in its error: SQL, a path and a panic-like
/// line, none of which may reach a client.
const PLANTED: &str = "select secret_column from hidden_table at /srv/app/src/db.rs:42 panicked";

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn error_bodies_never_carry_sql_paths_or_stack_traces(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let env = Env::for_test(&connect);
    let (write, http) = write_api_ready(&env).await;
    let secrets = ["secret_column", "hidden_table", "/srv/app", "e2e_"];

    // A database error the API does not expect: a trigger raising one.
    sqlx::raw_sql(&format!(
        "create function e2e_explode() returns trigger language plpgsql as $$
         begin
           if new.title = 'explode' then raise exception '{PLANTED}'; end if;
           return new;
         end $$;
         create trigger e2e_explode before insert or update on videos
           for each row execute function e2e_explode();"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("explode", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "create failing in a trigger",
        response,
        &[StatusCode::INTERNAL_SERVER_ERROR],
        &secrets,
    )
    .await;
    let id = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body("calm", &[], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let response = admin(&http, &write, Method::PATCH, &format!("/v1/videos/{id}"))
        .json(&json!({"title": "explode"}))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "patch failing in a trigger",
        response,
        &[StatusCode::INTERNAL_SERVER_ERROR],
        &secrets,
    )
    .await;

    // Constraint violations: a check and a unique index of the test's own.
    sqlx::raw_sql(
        "alter table videos add constraint e2e_no_shouting check (title <> upper(title));
         create unique index e2e_unique_title on videos (title);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("SHOUTING", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "check violation",
        response,
        &[
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::INTERNAL_SERVER_ERROR,
        ],
        &secrets,
    )
    .await;
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("calm", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "unique violation",
        response,
        &[StatusCode::UNPROCESSABLE_ENTITY, StatusCode::CONFLICT],
        &secrets,
    )
    .await;
    let response = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": [video_body("fresh", &[], "published"), video_body("calm", &[], "published")]}))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "unique violation in a batch",
        response,
        &[StatusCode::UNPROCESSABLE_ENTITY, StatusCode::CONFLICT],
        &secrets,
    )
    .await;

    // The read API on a database whose table has gone.
    let read = env.read_api();
    let ready = wait_until(Duration::from_secs(30), || async {
        http.get(read.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "read-api never up; log:\n{}", read.log());
    sqlx::raw_sql("alter table videos rename to e2e_hidden_videos")
        .execute(&pool)
        .await
        .unwrap();
    for path in ["/v1/videos?page_size=3", &format!("/v1/videos/{id}")] {
        let response = http.get(read.url(path)).send().await.unwrap();
        assert_reveals_nothing(
            &format!("read-api {path} without its table"),
            response,
            &[
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::SERVICE_UNAVAILABLE,
            ],
            &secrets,
        )
        .await;
    }
    let response = admin(&http, &write, Method::GET, &format!("/v1/videos/{id}"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "write-api read without its table",
        response,
        &[
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ],
        &secrets,
    )
    .await;

    // Postgres unreachable: a 503 that does not say where it was looked for.
    let gone = Env::new("postgres://postgres@127.0.0.1:1/nowhere".into());
    let unreachable = gone.write_api();
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/videos",
            Some(video_body("a", &[], "published")),
        ),
        (Method::GET, "/v1/videos", None),
        (
            Method::POST,
            "/v1/videos/batch",
            Some(json!({"videos": [video_body("a", &[], "published")]})),
        ),
    ] {
        let mut request = admin(&http, &unreachable, method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_reveals_nothing(
            &format!("{method} {path} with Postgres unreachable"),
            request.send().await.unwrap(),
            &[StatusCode::SERVICE_UNAVAILABLE],
            &secrets,
        )
        .await;
    }
}

async fn counts(pool: &PgPool) -> (i64, i64) {
    let videos: i64 = sqlx::query_scalar("select count(*) from videos")
        .fetch_one(pool)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from video_events")
        .fetch_one(pool)
        .await
        .unwrap();
    (videos, events)
}

/// The title a test's deferred trigger refuses at commit, after the rows,
/// their events and their counters were all written.
const REFUSED: &str = "refused at commit";

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_transaction_that_fails_after_writing_leaves_no_video_and_no_event(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let env = Env::for_test(&connect);
    let (write, http) = write_api_ready(&env).await;
    let kept = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body("kept", &["summer"], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let doomed = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body(REFUSED, &["summer"], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let feed_counts = || async {
        sqlx::query_scalar::<_, String>(
            "select string_agg(format('%s:%s:%s', tag, published, draft), ',' order by tag) from feed_counts",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = (counts(&pool).await, feed_counts().await);
    let version = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select version from videos where id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let kept_version = version(kept).await;

    // Refused at commit: every row of the statement is written by then.
    sqlx::raw_sql(&format!(
        "create function e2e_refuse() returns trigger language plpgsql as $$
         begin
           if coalesce(new.title, old.title) = '{REFUSED}' then
             raise exception 'refused';
           end if;
           return null;
         end $$;
         create constraint trigger e2e_refuse after insert or update or delete on videos
           deferrable initially deferred
           for each row execute function e2e_refuse();"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let mut batch: Vec<Value> = (0..200)
        .map(|i| video_body(&format!("b{i}"), &["summer", "batch"], "published"))
        .collect();
    batch.push(video_body(REFUSED, &["summer"], "published"));
    let attempts = [
        (
            Method::POST,
            "/v1/videos/batch".to_owned(),
            json!({"videos": batch}),
        ),
        (
            Method::POST,
            "/v1/videos".to_owned(),
            video_body(REFUSED, &["winter"], "published"),
        ),
        (
            Method::PATCH,
            format!("/v1/videos/{kept}"),
            json!({"title": REFUSED, "tags": ["winter"]}),
        ),
        (Method::DELETE, format!("/v1/videos/{doomed}"), Value::Null),
    ];
    for (method, path, body) in attempts {
        let mut request = admin(&http, &write, method.clone(), &path);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_reveals_nothing(
            &format!("{method} {path} refused at commit"),
            response,
            &[StatusCode::INTERNAL_SERVER_ERROR],
            &["refused"],
        )
        .await;
        assert_eq!(
            (counts(&pool).await, feed_counts().await),
            before,
            "{method} {path}: (videos, events), feed counts changed"
        );
    }
    assert_eq!(version(kept).await, kept_version);
    sqlx::raw_sql("drop trigger e2e_refuse on videos")
        .execute(&pool)
        .await
        .unwrap();

    // The backend terminated in the middle of a batch, after its rows were
    // written: a trigger holds the statement there until the test kills it.
    sqlx::raw_sql(
        "create function e2e_stall() returns trigger language plpgsql as $$
         begin
           if new.title = 'stall' then perform pg_sleep(60); end if;
           return null;
         end $$;
         create trigger e2e_stall after insert on videos
           for each row execute function e2e_stall();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut batch: Vec<Value> = (0..200)
        .map(|i| video_body(&format!("s{i}"), &["summer"], "published"))
        .collect();
    batch.push(video_body("stall", &["summer"], "published"));
    let request = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": batch}))
        .send();
    let in_flight = tokio::spawn(request);
    let stalled = wait_until(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event = 'PgSleep'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert!(stalled, "the batch never reached its last row");
    let terminated: bool = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and wait_event = 'PgSleep'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(terminated);
    let response = in_flight.await.unwrap().unwrap();
    assert_reveals_nothing(
        "a batch whose backend was terminated",
        response,
        &[
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ],
        &["stall", "terminat"],
    )
    .await;
    assert_eq!(
        (counts(&pool).await, feed_counts().await),
        before,
        "the terminated batch left rows behind: (videos, events), feed counts"
    );

    // And the API is unharmed: the next batch goes through, one event each.
    sqlx::raw_sql("drop trigger e2e_stall on videos")
        .execute(&pool)
        .await
        .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": [video_body("after", &[], "published"), video_body("after 2", &[], "draft")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let ((videos, events), _) = before;
    assert_eq!(counts(&pool).await, (videos + 2, events + 2));
}
