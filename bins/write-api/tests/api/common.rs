use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use shared::config::{DatabaseArgs, HttpArgs, LogFormat, TelemetryArgs};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use write_api::config::ServeArgs;

pub const TOKEN: &str = "test-token";

pub fn args() -> ServeArgs {
    ServeArgs {
        database: DatabaseArgs {
            database_url: String::new(),
            database_max_connections: 10,
            database_acquire_timeout_ms: 2000,
        },
        telemetry: TelemetryArgs {
            log_filter: "warn".into(),
            log_format: LogFormat::Pretty,
        },
        http: HttpArgs {
            request_timeout_ms: 10_000,
            shutdown_grace_ms: 1_000,
        },
        listen_addr: "127.0.0.1:0".into(),
        admin_tokens: vec!["other-token".into(), TOKEN.into()],
        console: Default::default(),
    }
}

pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    shutdown: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl App {
    /// Starts the app and waits (bounded) until it is ready.
    pub async fn start(pool: PgPool) -> Self {
        let app = Self::start_unready(pool).await;
        let ready = wait_until(Duration::from_secs(10), || async {
            app.get_anon("/readyz").await.status() == StatusCode::OK
        })
        .await;
        assert!(ready, "the app did not become ready");
        app
    }

    pub async fn start_unready(pool: PgPool) -> Self {
        let shutdown = CancellationToken::new();
        let running = write_api::start(&args(), pool.clone(), shutdown.clone())
            .await
            .unwrap();
        Self {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            pool,
            shutdown,
        }
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

/// A problem+json response's status, body and the fields its `errors` name.
pub async fn problem(response: Response, status: StatusCode) -> (Value, Vec<String>) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    let fields = body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (body, fields)
}

/// Polls `condition` until it holds or `deadline` passes.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
