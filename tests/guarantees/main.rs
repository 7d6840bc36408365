//! Guarantees proved through the real binaries that the other suites leave
//! out: the TTL bounds a lost invalidator's damage; error bodies never carry
//! SQL, file paths or stack traces; a transaction that fails after its rows
//! are written leaves no video and no event.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod error_bodies;
mod transactions;
mod ttl;

use std::time::{Duration, Instant};

use common::{seq_and_checkpoint, shows, video_body, wait_until, Env, Proc, Stack, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use uuid::Uuid;
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
