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
