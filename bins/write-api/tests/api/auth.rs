use reqwest::{Method, StatusCode};
use sqlx::PgPool;

use crate::common::{problem, video, App};

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/videos"),
    ("GET", "/v1/videos"),
    ("POST", "/v1/videos/batch"),
    ("GET", "/v1/videos/0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10"),
    ("PATCH", "/v1/videos/0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10"),
    ("DELETE", "/v1/videos/0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10"),
    // Unknown paths and wrong methods under /v1 need a token too.
    ("GET", "/v1/nothing-here"),
    ("GET", "/v1"),
    ("GET", "/v1/"),
    ("GET", "/v1/videos/"),
    ("PUT", "/v1/videos"),
    ("GET", "/v1/videos/batch"),
];

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_v1_route_needs_a_valid_token(pool: PgPool) {
    let app = App::start(pool).await;
    let created = app.create(video("kept")).await;
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer "),
            Some("Basic dGVzdC10b2tlbg=="),
            Some("test-token"),
        ] {
            let mut request = app
                .client
                .request(method.clone(), format!("{}{path}", app.base))
                .header("content-type", "application/json")
                .body(video("x").to_string());
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer",
                "{method} {path} {auth:?}"
            );
            let (body, _) = problem(response, StatusCode::UNAUTHORIZED).await;
            assert!(!body.to_string().contains("test-token"));
        }
    }
    // Nothing was created, changed or deleted.
    assert_eq!(app.videos().await, 1);
    let still = app
        .get(&format!("/v1/videos/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(still.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn any_configured_token_works_and_unknown_v1_paths_are_404_with_one(pool: PgPool) {
    let app = App::start(pool).await;
    let response = app
        .client
        .get(format!("{}/v1/videos", app.base))
        .header("authorization", "bearer other-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    problem(app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND).await;
    let response = app.request(Method::PUT, "/v1/videos").send().await.unwrap();
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn operational_endpoints_need_no_token(pool: PgPool) {
    let app = App::start(pool).await;
    assert_eq!(app.get_anon("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get_anon("/readyz").await.status(), StatusCode::OK);
    let metrics = app.get_anon("/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("http_requests_total"));
    let spec: serde_json::Value = app.get_anon("/openapi.json").await.json().await.unwrap();
    for path in ["/v1/videos", "/v1/videos/batch", "/v1/videos/{id}"] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(spec["paths"]["/v1/videos/{id}"]["patch"].is_object());
    problem(app.get_anon("/nope").await, StatusCode::NOT_FOUND).await;
}

#[test]
fn refuses_to_start_without_a_token() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://127.0.0.1:1/none")
            .unwrap();
        let mut args = crate::common::args();
        args.admin_tokens = vec![String::new(), " ".into()];
        let started =
            write_api::start(&args, pool, tokio_util::sync::CancellationToken::new()).await;
        assert!(matches!(started, Err(write_api::Error::NoAdminTokens)));
    });
}
