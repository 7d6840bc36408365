//! Security with the real binaries: no route of the write API answers without
//! a valid token (walking its OpenAPI route table), tokens never reach the
//! logs, and the read API never reveals a draft (property test).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::{assert_clean, ids, wait_until, Env, Stack, ADMIN_TOKEN};
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// Every (method, path) the write API documents, with `{id}` filled in, plus
/// wrong methods and unknown paths under `/v1`.
async fn route_table(stack: &Stack, id: Uuid) -> Vec<(Method, String)> {
    let spec: Value = stack
        .http
        .get(stack.write.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path.replace("{id}", &id.to_string());
        let documented: Vec<Method> = item
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|m| m.to_uppercase().parse().ok())
            .collect();
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ] {
            routes.push((method, path.clone()));
        }
        assert!(!documented.is_empty(), "{path} documents no method");
    }
    assert!(
        routes.iter().any(|(_, p)| p == "/v1/videos"),
        "the OpenAPI document lacks /v1/videos: {spec}"
    );
    for unknown in [
        "/v1",
        "/v1/",
        "/v1/nope",
        "/v1/videos/x/y",
        "/v1/videos/batch/1",
        "/v1/../v1/videos",
    ] {
        routes.push((Method::GET, unknown.to_owned()));
        routes.push((Method::POST, unknown.to_owned()));
    }
    routes
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn no_write_api_route_answers_without_a_valid_token(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let id = stack.create("Guarded", &["summer"], "published").await;
    let routes = route_table(&stack, id).await;
    let wrong = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!("Bearer  {ADMIN_TOKEN} extra")),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(ADMIN_TOKEN.to_owned()),
        Some(format!("Token {ADMIN_TOKEN}")),
    ];
    let body = common::video_body("Sneaky", &["summer"], "published");
    for (method, path) in &routes {
        for authorization in &wrong {
            let mut request = stack
                .http
                .request(method.clone(), stack.write.url(path))
                .json(&body);
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = request.send().await.unwrap();
            let what = format!("{method} {path} with {authorization:?}");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
            if *method != Method::HEAD {
                assert_clean(&what, response).await;
            }
        }
    }
    // Nothing got through: one video (the one created with the token), at
    // version 1.
    let (status, page) = stack.admin(Method::GET, "/v1/videos", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![id]);
    assert_eq!(page["results"][0]["version"], json!(1));
    // And the walk hit real routes: with the token they answer something else.
    let mut authorised = HashSet::new();
    for (method, path) in &routes {
        let response = stack
            .http
            .request(method.clone(), stack.write.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        authorised.insert(response.status());
    }
    assert!(authorised.contains(&StatusCode::OK), "{authorised:?}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn tokens_never_appear_in_the_logs(_pool_options: PgPoolOptions, connect: PgConnectOptions) {
    let env = Env::for_test(&connect);
    let secret = format!("tok-{}", Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", Uuid::new_v4().simple());
    let write = env.write_api_with(&[
        ("RUST_LOG", "debug".into()),
        ("ADMIN_TOKENS", format!("{secret},other-{secret}")),
    ]);
    let http = reqwest::Client::new();
    let ready = wait_until(Duration::from_secs(30), || async {
        http.get(write.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "write-api never became ready");
    let body = common::video_body("Logged?", &["summer"], "published");
    let mut sent = 0;
    for token in [&secret, &wrong] {
        for (method, path, body) in [
            (Method::POST, "/v1/videos".to_owned(), Some(&body)),
            (
                Method::POST,
                "/v1/videos".to_owned(),
                Some(&json!({"title": 5})),
            ),
            (Method::GET, "/v1/videos?page=abc".to_owned(), None),
            (Method::GET, format!("/v1/videos/{}", Uuid::new_v4()), None),
            (Method::DELETE, "/v1/nope".to_owned(), None),
        ] {
            let mut request = http
                .request(method, write.url(&path))
                .bearer_auth(token)
                .header("x-api-key", token.as_str())
                .header(header::COOKIE, format!("session={token}"));
            if let Some(body) = body {
                request = request.json(body);
            }
            request.send().await.unwrap();
            sent += 1;
        }
    }
    // Every request is logged (debug) by the time its log lines are in.
    let logged = wait_until(Duration::from_secs(5), || async {
        write.log().matches("request_id").count() >= sent
    })
    .await;
    let log = write.log();
    assert!(logged, "the requests were not logged: {log}");
    for token in [&secret, &wrong] {
        assert!(!log.contains(token.as_str()), "{token} in the log:\n{log}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        draft: bool,
        tags: Vec<&'static str>,
        view_count: u32,
        back_dated: bool,
    },
    /// Patch the n-th video created so far (modulo): drafts stay drafts.
    Touch {
        n: usize,
        view_count: u32,
    },
    Unpublish {
        n: usize,
    },
    Publish {
        n: usize,
    },
}

const TAGS: [&str; 3] = ["summer", "linen", "wool"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (
            any::<bool>(),
            proptest::sample::subsequence(TAGS.to_vec(), 0..=3),
            0u32..1000,
            any::<bool>()
        )
            .prop_map(|(draft, tags, view_count, back_dated)| Op::Create {
                draft,
                tags,
                view_count,
                back_dated
            }),
        1 => (any::<usize>(), 0u32..100_000).prop_map(|(n, view_count)| Op::Touch { n, view_count }),
        1 => any::<usize>().prop_map(|n| Op::Unpublish { n }),
        1 => any::<usize>().prop_map(|n| Op::Publish { n }),
    ]
}

/// Every page of a feed (page and cursor mode): the ids and the detail of
/// each.
async fn walk(stack: &Stack, query: &str) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut path = format!("/v1/videos?page_size=7{query}");
    for _ in 0..100 {
        let (status, _, page) = stack.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/videos?page_size=7&cursor={cursor}"),
            None => return seen,
        }
    }
    panic!("{query}: more than 100 pages");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_read_api_never_reveals_a_draft(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stack = Stack::start(Env::for_test(&connect)).await;
    let mut runner = TestRunner::default();
    let mut videos: Vec<(Uuid, bool)> = Vec::new(); // (id, ever published)
    let mut drafts_now: HashSet<Uuid> = HashSet::new();
    let mut shown_total = 0;
    for case in 0..16 {
        // When the last write of this case was acknowledged.
        let mut acked: Option<Instant> = None;
        let ops = proptest::collection::vec(op(), 1..8)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        for op in &ops {
            match op {
                Op::Create {
                    draft,
                    tags,
                    view_count,
                    back_dated,
                } => {
                    let mut body = common::video_body(
                        &format!("Case {case}"),
                        tags,
                        if *draft { "draft" } else { "published" },
                    );
                    body["view_count"] = json!(view_count);
                    if *back_dated {
                        body["published_at"] = json!("2026-01-01T00:00:00Z");
                    }
                    let (status, created) =
                        stack.admin(Method::POST, "/v1/videos", Some(body)).await;
                    assert_eq!(status, StatusCode::CREATED, "{op:?}: {created}");
                    acked = Some(Instant::now());
                    let id = created["id"].as_str().unwrap().parse().unwrap();
                    videos.push((id, !draft));
                    if *draft {
                        drafts_now.insert(id);
                    }
                }
                Op::Touch { n, view_count } if !videos.is_empty() => {
                    let id = videos[n % videos.len()].0;
                    stack
                        .patch(id, json!({"view_count": view_count, "tags": ["summer"]}))
                        .await;
                    acked = Some(Instant::now());
                }
                Op::Unpublish { n } if !videos.is_empty() => {
                    let id = videos[n % videos.len()].0;
                    stack.patch(id, json!({"status": "draft"})).await;
                    acked = Some(Instant::now());
                    drafts_now.insert(id);
                }
                Op::Publish { n } if !videos.is_empty() => {
                    let i = n % videos.len();
                    stack
                        .patch(videos[i].0, json!({"status": "published"}))
                        .await;
                    acked = Some(Instant::now());
                    videos[i].1 = true;
                    drafts_now.remove(&videos[i].0);
                }
                _ => {}
            }
        }
        // Drafts that were never published: never visible, not even for a
        // moment. (A video unpublished just now may show for up to the
        // freshness window.)
        let never_published: HashSet<Uuid> = videos
            .iter()
            .filter(|(_, published)| !published)
            .map(|(id, _)| *id)
            .collect();
        let mut shown = Vec::new();
        for query in [
            "",
            "&sort=popular",
            "&tag=summer",
            "&tag=linen&sort=popular",
            "&tag=wool",
        ] {
            shown.extend(walk(&stack, query).await);
        }
        shown_total = shown.len();
        let leaked: Vec<_> = shown
            .iter()
            .filter(|id| never_published.contains(id))
            .collect();
        assert!(
            leaked.is_empty(),
            "case {case} {ops:?}: drafts shown {leaked:?}"
        );
        for id in drafts_now.iter().filter(|id| never_published.contains(id)) {
            let path = format!("/v1/videos/{id}");
            let (status, _, body) = stack.get(&path).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "case {case}: never published draft {id} is shown at {path}: {body}"
            );
        }
        // Every read from here on starts a second after the last ack: no
        // draft may show anywhere.
        if let Some(acked) = acked {
            common::read_after(acked).await;
        }
        for id in &drafts_now {
            let path = format!("/v1/videos/{id}");
            let (status, _, body) = stack.get(&path).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "case {case}: draft {id} is shown at {path}: {body}"
            );
        }
        let mut shown = walk(&stack, "").await;
        shown.extend(walk(&stack, "&sort=popular").await);
        shown.extend(walk(&stack, "&tag=summer").await);
        let clean = !shown.iter().any(|id| drafts_now.contains(id));
        assert!(clean, "case {case}: a draft is still in a feed");
    }
    assert!(!drafts_now.is_empty(), "no draft was ever made");
    println!(
        "{} videos, {} drafts at the end; {} shown in the last walk",
        videos.len(),
        drafts_now.len(),
        shown_total
    );
}
