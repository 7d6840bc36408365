//! The API documents stay true to the servers and to the prose contract:
//! every route of both routers is in its `/openapi.json` and in docs/api.md;
//! schemathesis, generating requests from each document with every check,
//! finds no disagreement with the running servers; `/docs` renders the
//! operations in headless Chromium from assets the binary serves itself.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{wait_until, Env, Proc, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A tool the test needs: found, or in CI a failure, else a skip.
fn require(tool: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            !in_ci(),
            "{tool} is missing, and CI=true makes that a failure"
        );
        eprintln!("SKIPPED: {tool} is missing (scripts/test installs or finds it)");
    }
    found
}

async fn ready(proc: &Proc) {
    let http = reqwest::Client::new();
    let up = wait_until(Duration::from_secs(30), || async {
        http.get(proc.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(up, "not ready; log:\n{}", proc.log());
}

/// read-api and write-api on the test's database, with `videos` seeded.
async fn start(connect: &PgConnectOptions, videos: u32) -> (Proc, Proc) {
    let env = Env::for_test(connect);
    if videos > 0 {
        env.seed(videos);
    }
    let (read, write) = (env.read_api(), env.write_api());
    ready(&read).await;
    ready(&write).await;
    (read, write)
}

async fn document(proc: &Proc) -> Value {
    let response = reqwest::get(proc.url("/openapi.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `METHOD /path` of every operation of a document.
fn operations(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    found
}

/// Routes outside the documents, served by read-api and write-api alike.
const OPERATIONAL: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_route_is_in_the_documents_and_the_contract(
    _: sqlx::pool::PoolOptions<sqlx::Postgres>,
    connect: PgConnectOptions,
) {
    let contract = std::fs::read_to_string(root().join("docs/api.md")).unwrap();
    let (read, write) = start(&connect, 0).await;
    let read_ops = operations(&document(&read).await);
    let write_ops = operations(&document(&write).await);
    assert_eq!(read_ops, ["GET /v1/videos", "GET /v1/videos/{id}"]);
    for expected in [
        "POST /v1/videos",
        "GET /v1/videos",
        "POST /v1/videos/batch",
        "GET /v1/videos/{id}",
        "PATCH /v1/videos/{id}",
        "DELETE /v1/videos/{id}",
    ] {
        assert!(write_ops.iter().any(|op| op == expected), "{expected}");
    }
    for operation in read_ops.iter().chain(&write_ops) {
        assert!(
            contract.contains(&format!("`{operation}`")),
            "docs/api.md does not name `{operation}`"
        );
    }
    // The documents cover the routers: a /v1 path not in them is a 404.
    let http = reqwest::Client::new();
    for proc in [&read, &write] {
        let status = http
            .get(proc.url("/v1/videos/x/y"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND);
        for path in OPERATIONAL {
            assert!(
                contract.contains(&format!("`GET {path}`")),
                "docs/api.md does not name `GET {path}`"
            );
            let response = http.get(proc.url(path)).send().await.unwrap();
            // `/docs` redirects to `/docs/`, which reqwest follows.
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
        }
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("(docs/api.md)"), "README links docs/api.md");
    assert!(!readme.contains("../shared/API.md"));
}

/// The write API's document: request bodies, parameters and headers exact.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_write_document_states_the_rules(
    _: sqlx::pool::PoolOptions<sqlx::Postgres>,
    connect: PgConnectOptions,
) {
    let (_read, write) = start(&connect, 0).await;
    let doc = document(&write).await;
    let create = &doc["components"]["schemas"]["VideoCreate"];
    assert_eq!(create["additionalProperties"], false);
    assert_eq!(
        create["required"],
        serde_json::json!(["title", "video_url"])
    );
    assert_eq!(create["properties"]["duration_seconds"]["maximum"], 86_400);
    assert_eq!(create["properties"]["tags"]["maxItems"], 20);
    assert_eq!(create["properties"]["video_url"]["maxLength"], 2048);
    let patch = &doc["paths"]["/v1/videos/{id}"]["patch"]["requestBody"]["content"];
    assert!(patch["application/json"].is_object());
    assert!(patch["application/merge-patch+json"].is_object());
    let post = &doc["paths"]["/v1/videos"]["post"];
    let key = post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["schema"]["maxLength"], 255);
    let created = &post["responses"]["201"];
    for header in ["Location", "ETag", "Idempotent-Replayed"] {
        assert!(created["headers"][header].is_object(), "{header}");
    }
    for link in ["GetVideo", "PatchVideo", "DeleteVideo"] {
        assert!(created["links"][link].is_object(), "{link}");
    }
    assert_eq!(
        post["responses"]["401"]["headers"]["WWW-Authenticate"]["schema"]["const"],
        "Bearer"
    );
    assert!(post["responses"]["503"]["headers"]["Retry-After"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let list = doc["paths"]["/v1/videos"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let status = list.iter().find(|p| p["name"] == "status").unwrap();
    assert_eq!(
        status["schema"]["enum"],
        serde_json::json!(["all", "draft", "published"])
    );
}

fn schemathesis() -> Option<PathBuf> {
    let output = Command::new(root().join("scripts/fuzz-api"))
        .arg("install")
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    Some(PathBuf::from(
        String::from_utf8(output.stdout).ok()?.trim().to_owned(),
    ))
}

/// schemathesis, with every check, positive and negative cases and the
/// stateful phase that follows the documents' links, finds nothing.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn schemathesis_finds_no_disagreement(
    _: sqlx::pool::PoolOptions<sqlx::Postgres>,
    connect: PgConnectOptions,
) {
    let Some(_) = require("schemathesis (scripts/fuzz-api)", schemathesis()) else {
        return;
    };
    let (read, write) = start(&connect, 30).await;
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(root().join("scripts/fuzz-api"))
            .args(["run", &read.url(""), &write.url(""), ADMIN_TOKEN])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}\nfuzzing took {:?}", started.elapsed());
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}"
    );
    // Both runs tested every operation and followed the links.
    assert_eq!(stdout.matches("No issues found").count(), 2, "{stdout}");
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// `/docs` works offline: headless Chromium renders the operations from
/// assets the binary serves (the page names no other origin).
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn docs_page_renders_the_operations_in_chromium(
    _: sqlx::pool::PoolOptions<sqlx::Postgres>,
    connect: PgConnectOptions,
) {
    let Some(chromium) = require("chromium", chromium()) else {
        return;
    };
    let (read, write) = start(&connect, 0).await;
    for (proc, operations) in [
        (&read, &["/v1/videos", "/v1/videos/{id}"][..]),
        (
            &write,
            &["/v1/videos", "/v1/videos/batch", "/v1/videos/{id}"][..],
        ),
    ] {
        let html = reqwest::get(proc.url("/docs/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for reference in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!html.contains(reference), "an outside asset: {html}");
        }
        let url = proc.url("/docs/");
        let profile = tempfile_dir();
        let (chromium, page, profile_dir) = (chromium.clone(), url.clone(), profile.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    &format!("--user-data-dir={}", profile_dir.display()),
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    &page,
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let _ = std::fs::remove_dir_all(&profile);
        let dom = String::from_utf8_lossy(&output.stdout);
        assert!(
            dom.contains("swagger-ui"),
            "Swagger UI did not render: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for operation in operations {
            assert!(
                dom.contains(&format!("data-path=\"{operation}\"")),
                "{operation} not rendered in {url}"
            );
        }
    }
}

/// A fresh directory for a Chromium profile, under target/.
fn tempfile_dir() -> PathBuf {
    let dir = root()
        .join("target/tmp")
        .join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
