//! The HTTP plumbing every API shares: request ids, tracing spans, metrics,
//! problem+json errors, a request timeout, CORS for public reads, the
//! operational endpoints and a graceful, bounded shutdown.

use std::time::Duration;

use axum::{
    extract::ConnectInfo,
    http::{header, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{problem, telemetry, Problem};

mod common;
mod cors;
mod request_span;

pub use common::{CommonLayer, SpanLevel};
pub use cors::PublicCors;
pub use request_span::request_span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps an app's routes in the layers every API has (see [`common`]). Apply
/// last, after the app's own routes and layers, so that every response passes
/// through them. `request_timeout` bounds every request (408).
pub fn with_common_layers(router: Router, request_timeout: Duration) -> Router {
    with_layers(router, CommonLayer::new(Some(request_timeout)))
}

/// The common layers for a public, cached read API whose hits do no I/O:
/// no request timeout (the app bounds its I/O itself and applies the timeout
/// where I/O can block, so a hit pays for no timer), the request span at
/// DEBUG (see [`SpanLevel::Debug`]; the id is still in every response), and
/// CORS for `GET`/`HEAD` from any origin exposing `expose`.
pub fn with_read_layers(router: Router, expose: &[HeaderName]) -> Router {
    with_layers(
        router,
        CommonLayer::new(None)
            .span(SpanLevel::Debug)
            .cors(PublicCors::exposing(expose)),
    )
}

fn with_layers(router: Router, layer: CommonLayer) -> Router {
    router
        .fallback(|| async { Problem::not_found("No such resource.") })
        .layer(layer)
}

/// `/healthz` and `/metrics`; each binary adds its own `/readyz`.
pub fn ops_router() -> Router {
    let handle = telemetry::metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
}

/// The body of `/readyz`: each dependency and whether it is usable.
#[derive(Debug, Default, Serialize)]
pub struct Readiness {
    checks: std::collections::BTreeMap<&'static str, Check>,
    #[serde(skip)]
    ready: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            checks: Default::default(),
            ready: true,
        }
    }

    /// A dependency the process cannot serve without.
    pub fn required(mut self, name: &'static str, result: Result<(), String>) -> Self {
        self.ready &= result.is_ok();
        self.checks.insert(name, Check::from(result, true));
        self
    }

    /// A dependency that is reported but not needed to serve (Redis for the read API).
    pub fn optional(mut self, name: &'static str, result: Result<(), String>) -> Self {
        self.checks.insert(name, Check::from(result, false));
        self
    }
}

impl Check {
    fn from(result: Result<(), String>, required: bool) -> Self {
        Self {
            ok: result.is_ok(),
            required,
            error: result.err(),
        }
    }
}

impl IntoResponse for Readiness {
    fn into_response(self) -> Response {
        if self.ready {
            return (
                StatusCode::OK,
                Json(serde_json::json!({"status": "ready", "checks": self.checks})),
            )
                .into_response();
        }
        let failing: Vec<&str> = self
            .checks
            .iter()
            .filter(|(_, c)| c.required && !c.ok)
            .map(|(name, _)| *name)
            .collect();
        let problem = Problem::unavailable(format!("not ready: {}", failing.join(", ")));
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        body["checks"] = serde_json::to_value(&self.checks).unwrap_or_default();
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(problem::CONTENT_TYPE),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(problem::RETRY_AFTER_SECONDS),
        );
        response
    }
}

/// Binds the listen address and logs the address actually bound (with port 0,
/// the one the OS chose) as `listening addr=...`, which tests read.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "listening");
    Ok(listener)
}

/// How long a client may take to send a request's headers. Past it the
/// connection is closed: a client that never finishes its headers (slowloris)
/// must not hold a connection and a task forever. `REQUEST_TIMEOUT_MS` takes
/// over once the headers are in.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until the token is cancelled, then stops accepting, lets in-flight
/// requests finish for at most `grace`, and returns.
///
/// An accept loop of our own rather than `axum::serve`, which gives hyper no
/// timer and so no header read timeout.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses are written whole; Nagle would only delay their last segment.
        let _ = stream.set_nodelay(true);
        // The peer address, for handlers that limit per client (`ConnectInfo`).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "in-flight requests still running after the grace period; exiting");
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// read-api's request span is DEBUG (a hit from memory builds none), yet
    /// what a request logs once it does I/O, inside `request_span()`, names
    /// its route and request id at the default level; what it logs before
    /// (the in-process hit) builds no span.
    #[tokio::test]
    async fn past_the_hit_a_read_request_logs_its_id_at_info() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = with_read_layers(
            Router::new().route(
                "/v1/things/{id}",
                get(|| async {
                    tracing::info!("served from memory");
                    request_span().in_scope(|| tracing::warn!("the database is slow"));
                    "ok"
                }),
            ),
            &[],
        );
        let response = app
            .oneshot(
                axum::http::Request::get("/v1/things/7")
                    .header(REQUEST_ID, "0123456789abcdef0123456789abcdef")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let slow = log.lines().find(|l| l.contains("the database is slow"));
        let slow = slow.unwrap_or_else(|| panic!("not logged: {log}"));
        assert!(
            slow.contains("request_id=\"0123456789abcdef0123456789abcdef\"")
                || slow.contains("request_id=0123456789abcdef0123456789abcdef"),
            "{slow}"
        );
        assert!(slow.contains("/v1/things/{id}"), "{slow}");
        let hit = log.lines().find(|l| l.contains("served from memory"));
        let hit = hit.unwrap_or_else(|| panic!("not logged: {log}"));
        assert!(
            !hit.contains("request"),
            "a hit builds no request span: {hit}"
        );
        // Outside a request there is nothing to name.
        assert!(request_span().is_none());
    }

    fn buggy_handler() -> &'static str {
        panic!("select secret_column from hidden_table at /srv/app/src/db.rs")
    }

    /// No route of the binaries panics on any input (the property tests in
    /// tests/hostile/ look for one); this handler stands in for the bug
    /// that would, behind the very layers every binary wraps its routes in.
    #[tokio::test]
    async fn a_panic_becomes_a_500_problem_that_reveals_nothing() {
        let app = with_common_layers(
            Router::new().route("/boom", get(|| async { buggy_handler() })),
            Duration::from_secs(5),
        );
        let response = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            crate::problem::CONTENT_TYPE
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["status"], 500, "{text}");
        for leak in [
            "secret_column",
            "hidden_table",
            "select",
            "/srv/app",
            ".rs",
            "panicked",
            "backtrace",
            "expect",
            "option",
            "http.rs",
        ] {
            assert!(
                !text.to_lowercase().contains(leak),
                "the body reveals {leak:?}: {text}"
            );
        }
    }
}
