//! The API tests' app: the write API started in-process
//! ([`test_support::write_api`]) with a bearer token on every request.

use std::{ops::Deref, time::Duration};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::write_api::{serve_args, WriteApi};
use write_api::config::ServeArgs;

pub use test_support::{http::problem, wait_until};

pub const TOKEN: &str = "test-token";

pub fn args() -> ServeArgs {
    serve_args(&["other-token", TOKEN], Default::default())
}

pub struct App(WriteApi);

impl Deref for App {
    type Target = WriteApi;

    fn deref(&self) -> &WriteApi {
        &self.0
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl App {
    /// Starts the app and waits (bounded) until it is ready.
    pub async fn start(pool: PgPool) -> Self {
        Self(WriteApi::start(&args(), pool, client()).await)
    }

    pub async fn start_unready(pool: PgPool) -> Self {
        Self(WriteApi::start_unready(&args(), pool, client()).await)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn get_anon(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    /// Creates a video and returns its JSON.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.post("/v1/videos", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn videos(&self) -> i64 {
        sqlx::query_scalar!(r#"select count(*) as "n!" from videos"#)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn events(&self) -> i64 {
        sqlx::query_scalar!(r#"select count(*) as "n!" from video_events"#)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

pub fn video(title: &str) -> Value {
    json!({"title": title, "video_url": format!("https://cdn.example.com/v/{title}.mp4")})
}
