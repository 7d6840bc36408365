//! The nasty cases by name, each answered cleanly.

use super::*;

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
