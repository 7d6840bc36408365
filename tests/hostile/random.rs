//! Random query strings, bodies and header values against the running
//! stack, and the bounded modes of the fuzz targets.

use super::*;

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
