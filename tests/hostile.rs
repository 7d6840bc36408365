//! Hostile input against the real binaries: property tests over query strings
//! and request bodies, bounded fuzzing of the cursor decoder and the body
//! validation, and the nasty cases by name. Never a panic, never a 5xx, every
//! 4xx a problem+json whose `status` is the HTTP status.
//!
//! The long fuzzing mode is `cargo fuzz` in `fuzz/` (docs/reliability.md).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use common::{assert_clean, Env, Stack};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::{
    domain::{parse_batch, NewVideo, VideoPatch},
    feed::{Cursor, FeedQuery},
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Cases per property against the running stack (each is an HTTP round trip).
const HTTP_CASES: usize = 96;

/// `n` values of `strategy` (random seed: every run explores new inputs; a
/// failure message carries the input).
fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::default();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

const FIELDS: [&str; 13] = [
    "id",
    "title",
    "description",
    "video_url",
    "thumbnail_url",
    "duration_seconds",
    "tags",
    "view_count",
    "status",
    "published_at",
    "created_at",
    "updated_at",
    "version",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&FIELDS[..]).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        "\\PC{0,40}".prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        proptest::sample::select(vec![
            "",
            " ",
            "draft",
            "published",
            "https://cdn.example.com/v.mp4",
            "javascript:alert(1)",
            "2026-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "'; drop table videos; --",
            "\u{202e}\u{200d}\u{0301}",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like a video, each field valid or junk: most requests get
/// past the syntax checks into the validation.
fn video_like() -> impl Strategy<Value = Value> {
    let valid = [
        ("title", json!("A title")),
        ("video_url", json!("https://cdn.example.com/v/1.mp4")),
        ("tags", json!(["summer", "Linen "])),
        ("status", json!("published")),
        ("view_count", json!(3)),
        ("duration_seconds", json!(60)),
        ("description", json!("")),
        ("thumbnail_url", Value::Null),
        ("published_at", json!("2026-01-01T00:00:00Z")),
    ];
    let fields: Vec<_> = valid
        .into_iter()
        .map(|(name, good)| {
            prop_oneof![
                16 => Just(Some(good)),
                1 => Just(None),
                2 => json_value().prop_map(Some),
            ]
            .prop_map(move |v| v.map(|v| (name.to_owned(), v)))
        })
        .collect();
    (
        fields,
        proptest::option::weighted(0.2, (field_name(), json_value())),
    )
        .prop_map(|(fields, extra)| {
            Value::Object(fields.into_iter().flatten().chain(extra).collect())
        })
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..200).prop_map(|n| n.to_string()),
        Just("99999999999999999999".to_owned()),
        Just("%zz".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("%".to_owned()),
        Just("%00".to_owned()),
        Just("newest".to_owned()),
        Just("popular".to_owned()),
        Just("AQAAAA".to_owned()),
        "[A-Za-z0-9_-]{0,60}",
        "\\PC{0,20}",
        "[%&=+;#?/ a-z0-9]{0,20}",
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => proptest::sample::select(vec!["page", "page_size", "sort", "tag", "cursor", "status"])
            .prop_map(str::to_owned),
        1 => "[a-z%_]{0,8}",
    ];
    proptest::collection::vec((key, query_value(), any::<bool>()), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { k })
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn random_query_strings_get_a_page_or_a_problem_on_both_apis(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    for i in 0..5 {
        stack
            .create(&format!("Video {i}"), &["summer"], "published")
            .await;
    }
    for query in samples(query_string(), HTTP_CASES) {
        let path = format!("/v1/videos?{query}");
        let response = stack.http.get(stack.read.url(&path)).send().await.unwrap();
        assert_clean(&format!("read-api GET {path}"), response).await;
        let response = stack
            .http
            .get(stack.write.url(&path))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_clean(&format!("write-api GET {path}"), response).await;
    }
    for id in samples("[^/?#]{0,40}", HTTP_CASES / 2) {
        let path = format!("/v1/videos/{id}");
        let response = stack.http.get(stack.read.url(&path)).send().await.unwrap();
        assert_clean(&format!("read-api GET {path:?}"), response).await;
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn random_bodies_are_created_or_refused_with_a_problem(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let target = stack.create("Target", &["summer"], "published").await;
    let target_path = format!("/v1/videos/{target}");
    let bodies = samples(prop_oneof![video_like(), json_value()], HTTP_CASES);
    let mut created = 0;
    for body in bodies {
        for (method, path) in [
            (Method::POST, "/v1/videos"),
            (Method::PATCH, target_path.as_str()),
            (Method::POST, "/v1/videos/batch"),
        ] {
            let body = if path.ends_with("batch") {
                json!({ "videos": [body.clone()] })
            } else {
                body.clone()
            };
            let response = stack
                .http
                .request(method.clone(), stack.write.url(path))
                .bearer_auth(common::ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, _) = assert_clean(&format!("{method} {path} {body}"), response).await;
            created += usize::from(status == StatusCode::CREATED);
        }
    }
    // Raw bytes, under assorted content types.
    let raw = samples(
        (
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::sample::select(vec![
                "application/json",
                "application/merge-patch+json",
                "text/plain",
                "application/json; charset=utf-16",
                "",
            ]),
        ),
        HTTP_CASES,
    );
    for (bytes, content_type) in raw {
        for (method, path) in [
            (Method::POST, "/v1/videos"),
            (Method::PATCH, target_path.as_str()),
        ] {
            let mut request = stack
                .http
                .request(method.clone(), stack.write.url(path))
                .bearer_auth(common::ADMIN_TOKEN)
                .body(bytes.clone());
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            let what = format!("{method} {path} {content_type:?} {bytes:?}");
            let (status, _) = assert_clean(&what, response).await;
            assert!(status.is_client_error(), "{what}: {status}");
        }
    }
    println!("{created} of the random bodies were valid creates");
}

/// Header values a client controls: bytes a header may carry (visible ASCII,
/// spaces, tabs and obs-text).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,80}".prop_map(String::into_bytes),
        Just(b"\"1\"".to_vec()),
        Just(b"W/\"1\", \"2\"".to_vec()),
        Just(b"*".to_vec()),
        proptest::collection::vec(
            prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')],
            0..300
        ),
    ]
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn random_header_values_get_an_answer_or_a_problem(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let id = stack.create("Target", &["summer"], "published").await;
    let detail = format!("/v1/videos/{id}");
    let cases = samples(
        (
            proptest::sample::select(vec![
                "if-match",
                "if-none-match",
                "idempotency-key",
                "accept-encoding",
                "content-type",
                "authorization",
                "x-request-id",
                "accept",
            ]),
            header_value(),
        ),
        HTTP_CASES,
    );
    for (name, value) in cases {
        let value = reqwest::header::HeaderValue::from_bytes(&value).unwrap();
        let what = format!("{name}: {value:?}");
        let response = stack
            .http
            .get(stack.read.url(&detail))
            .header(name, value.clone())
            .send()
            .await
            .unwrap();
        assert_clean(&format!("read-api GET with {what}"), response).await;
        let mut request = stack
            .http
            .patch(stack.write.url(&detail))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&json!({"view_count": 1}));
        if name != "authorization" {
            request = request.header(name, value.clone());
        }
        let response = request.send().await.unwrap();
        assert_clean(&format!("write-api PATCH with {what}"), response).await;
        let response = stack
            .http
            .post(stack.write.url("/v1/videos"))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&common::video_body("Headers", &["summer"], "draft"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_clean(&format!("write-api POST with {what}"), response).await;
    }
}

proptest! {
    #![proptest_config(Config::with_cases(512))]

    /// Bounded mode of the `cursor_decode` fuzz target.
    #[test]
    fn cursor_decode_never_panics(text in "\\PC{0,600}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Cursor::decode(&text);
        // Base64 of random bytes gets past the base64 layer into the record.
        let decoded = Cursor::decode(&URL_SAFE_NO_PAD.encode(&bytes));
        if let Some(cursor) = decoded {
            // Whatever decodes is something encoding makes.
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
    }

    #[test]
    fn feed_query_parsing_never_panics(query in query_string()) {
        let _ = FeedQuery::parse_public(Some(&query));
        let _ = FeedQuery::parse_admin(Some(&query));
    }

    /// Bounded mode of the `video_input` fuzz target.
    #[test]
    fn video_validation_never_panics(body in prop_oneof![video_like(), json_value()], patch in prop_oneof![video_like(), json_value()]) {
        let now = Utc::now();
        let _ = parse_batch(&json!({ "videos": [body.clone()] }), now);
        let _ = VideoPatch::parse(&patch, now);
        let base = NewVideo::parse(&json!({"title": "t", "video_url": "https://e.com/v"}), "", now).unwrap();
        let created = NewVideo::parse(&body, "", now).map(NewVideo::into_fields);
        if let Ok(patch) = VideoPatch::parse(&patch, now) {
            let _ = patch.apply(created.unwrap_or_else(|_| base.into_fields()));
        }
    }
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn named_hostile_inputs_are_answered_cleanly(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;

    // SQL injection: stored verbatim, read back verbatim, harmless.
    let evil_title = "Robert'); DROP TABLE videos;--";
    let evil_tag = "' or '1'='1";
    let (status, body) = stack
        .admin(
            Method::POST,
            "/v1/videos",
            Some(json!({
                "title": evil_title,
                "description": "1; delete from video_events where true; --",
                "video_url": "https://cdn.example.com/v.mp4?q=' or 1=1--",
                "tags": [evil_tag, "summer"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, _, video) = stack.get(&format!("/v1/videos/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(video["title"], json!(evil_title));
    assert_eq!(video["tags"], json!([evil_tag, "summer"]));
    let (status, _, page) = stack.get("/v1/videos?tag=%27%20or%20%271%27%3D%271").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(common::ids(&page).len(), 1, "{page}");
    let (status, _, page) = stack.get("/v1/videos?tag=x%27%20or%201%3D1--").await;
    assert_eq!(
        (status, page["total_videos"].clone()),
        (StatusCode::OK, json!(0))
    );

    // Query strings: huge numbers, invalid percent-encoding, odd Unicode.
    for path in [
        "/v1/videos?page=99999999999999999999",
        "/v1/videos?page_size=99999999999999999999",
        "/v1/videos?page=-1",
        "/v1/videos?page=1e3",
        "/v1/videos?page=0x10",
        "/v1/videos?tag=%zz",
        "/v1/videos?tag=%ff%fe",
        "/v1/videos?tag=%",
        "/v1/videos?tag=%00",
        "/v1/videos?cursor=%zz",
        "/v1/videos?sort=%E2%80%AEnewest",
        "/v1/videos?tag=%F0%9F%91%97%E2%80%8D%CC%81",
        "/v1/videos/%zz",
        "/v1/videos/%ff",
        "/v1/videos/..%2F..%2Fetc%2Fpasswd",
    ] {
        for url in [stack.read.url(path), stack.write.url(path)] {
            let response = stack
                .http
                .get(&url)
                .bearer_auth(common::ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            let (status, _) = assert_clean(&url, response).await;
            assert!(
                status.is_success() || status.is_client_error(),
                "{url}: {status}"
            );
        }
    }
    // A malformed id is an unknown id, even one that is not UTF-8 once decoded.
    for path in [
        "/v1/videos/not-a-uuid",
        "/v1/videos/%00",
        "/v1/videos/%E2%80%AE",
        "/v1/videos/%ff",
        "/v1/videos/%zz",
    ] {
        for url in [stack.read.url(path), stack.write.url(path)] {
            let response = stack
                .http
                .get(&url)
                .bearer_auth(common::ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            let (status, _) = assert_clean(&url, response).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        }
    }
    let long_tag = format!("/v1/videos?tag={}", "a".repeat(60_000));
    let response = stack
        .http
        .get(stack.read.url(&long_tag))
        .send()
        .await
        .unwrap();
    assert_clean("a 60 KB tag", response).await;

    // Bodies: huge numbers, odd Unicode, thousands of tags, deep nesting.
    let valid = |patch: Value| {
        let mut body = json!({"title": "T", "video_url": "https://cdn.example.com/v.mp4"});
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    let thousands_of_tags: Vec<String> = (0..5000).map(|i| format!("tag{i}")).collect();
    for (body, want) in [
        (
            valid(json!({"view_count": 99999999999999999999u128 as f64})),
            422,
        ),
        (valid(json!({"view_count": -1})), 422),
        (valid(json!({"duration_seconds": i64::MAX})), 422),
        (valid(json!({"duration_seconds": 1e300})), 422),
        (valid(json!({"tags": thousands_of_tags})), 422),
        (valid(json!({"title": "\u{0}"})), 0),
        (valid(json!({"title": "a\u{0}b"})), 0),
        (valid(json!({"tags": ["a\u{0}b"]})), 422),
        (
            valid(json!({"title": "\u{202e}\u{200d}\u{0301}\u{1F457}\u{FEFF}"})),
            0,
        ),
        (valid(json!({"title": "x".repeat(201)})), 422),
        (
            valid(json!({"description": "\u{10FFFF}".repeat(5001)})),
            422,
        ),
        (
            valid(json!({"published_at": "+275760-09-13T00:00:00Z"})),
            422,
        ),
        (valid(json!({"published_at": "0000-01-01T00:00:00Z"})), 0),
    ] {
        let response = stack
            .http
            .post(stack.write.url("/v1/videos"))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let what = format!(
            "POST {}",
            &body.to_string()[..body.to_string().len().min(200)]
        );
        let (status, _) = assert_clean(&what, response).await;
        if want != 0 {
            assert_eq!(status.as_u16(), want, "{what}");
        }
    }
    for raw in [
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!(
            "{{\"title\": {}1{}}}",
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        ),
        r#"{"title": "\ud800", "video_url": "https://e.com/v"}"#.to_owned(),
        r#"{"title": "T", "video_url": "https://e.com/v", "view_count": 1e400}"#.to_owned(),
        r#"{"title": "T", "title": "U", "video_url": "https://e.com/v"}"#.to_owned(),
    ] {
        let response = stack
            .http
            .post(stack.write.url("/v1/videos"))
            .bearer_auth(common::ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let what = format!("POST {}", &raw[..raw.len().min(80)]);
        let (status, _) = assert_clean(&what, response).await;
        assert!(
            status.is_client_error() || status == StatusCode::CREATED,
            "{what}: {status}"
        );
    }
    // A body over the limit.
    let response = stack
        .http
        .post(stack.write.url("/v1/videos"))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&valid(json!({"description": "x".repeat(2 * 1024 * 1024)})))
        .send()
        .await
        .unwrap();
    let (status, _) = assert_clean("a 2 MiB body", response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Headers too large: refused (or ignored), never a crash; both APIs keep
    // serving.
    for url in [stack.read.url("/v1/videos"), stack.write.url("/v1/videos")] {
        for size in [100 * 1024, 1024 * 1024] {
            let response = stack
                .http
                .get(&url)
                .bearer_auth(common::ADMIN_TOKEN)
                .header("x-junk", "j".repeat(size))
                .send()
                .await;
            if let Ok(response) = response {
                let status = response.status();
                assert!(
                    status.is_success() || status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "{url} with a {size}-byte header: {status}"
                );
                if status.is_success() {
                    assert_clean(&url, response).await;
                }
            }
        }
        let response = stack
            .http
            .get(&url)
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{url} after huge headers"
        );
    }
}

/// Sends `head` on a raw connection and returns what the server answers
/// before it closes the connection (bounded).
fn raw_exchange(addr: &str, head: &str, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_slow_client_gets_a_request_timeout(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let env = Env::for_test(&connect);
    let write = env.write_api_with(&[("REQUEST_TIMEOUT_MS", "500".into())]);
    let http = reqwest::Client::new();
    let ready = common::wait_until(Duration::from_secs(30), || async {
        http.get(write.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "write-api never became ready");
    let addr = write.addr.clone();
    // Headers, then never the promised body.
    let head = format!(
        "POST /v1/videos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":",
        common::ADMIN_TOKEN
    );
    let (answer, took) =
        tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {took:?}: {answer:?}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("\"status\":408"), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The process is unharmed.
    let response = http.get(write.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A client that dribbles its headers and never finishes them (slowloris) is
/// cut off: `shared::http::serve` gives hyper a timer and a header read
/// timeout (`HEADER_READ_TIMEOUT`), without which such a connection would be
/// held forever.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_client_that_never_finishes_its_headers_is_cut_off(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let env = Env::for_test(&connect);
    let write = env.write_api_with(&[("REQUEST_TIMEOUT_MS", "500".into())]);
    let addr = write.addr.clone();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
    let (answer, took) =
        tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, Duration::from_secs(40)))
            .await
            .unwrap();
    // The servers' header read timeout is 10 s.
    assert!(
        took < Duration::from_secs(15),
        "connection still open after {took:?}: {answer:?}"
    );
}
