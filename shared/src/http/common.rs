//! The middleware every API has, as one tower layer: request ids, the
//! request's trace span, metrics by route and status, problem+json for every
//! error, panic catching, and (where asked for) a request timeout and CORS.
//!
//! One service instead of a stack of seven, because on a cached hit these
//! layers cost more than the handler: each layer of the old stack boxed its
//! own future or cloned its inner service, the request id was a formatted
//! UUID v4, the metrics were looked up by label strings on every request and
//! CORS rebuilt its header values. Here a request costs one boxed future, a
//! counter-based id, metric handles found in a small per-route table, CORS
//! values built once and, where the span is at DEBUG, no span at all unless
//! that level is recorded.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock, RwLock,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use futures::FutureExt;
use metrics::{Counter, Histogram};
use tower::{Layer, Service};
use tracing::Instrument;

use super::{
    cors::PublicCors,
    request_span::{Deferred, DEFERRED},
    REQUEST_ID,
};
use crate::{problem, Problem};

/// Adds the common behaviour to every route it is layered on (`Router::layer`
/// calls [`Layer::layer`] once per route, so each route gets its own metric
/// handle table).
#[derive(Clone)]
pub struct CommonLayer {
    timeout: Option<Duration>,
    span: SpanLevel,
    cors: Option<PublicCors>,
}

/// The level of the request's span (method, route, request id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanLevel {
    /// Every line logged inside a request carries its id.
    Info,
    /// For a hot path: at the default level no span is built (formatting its
    /// fields was the largest single cost of a cached hit); the layer's own
    /// error lines carry the request id as a field instead.
    Debug,
}

impl CommonLayer {
    /// `timeout`: answer 408 when the inner service takes longer. `None` for
    /// services that bound their own I/O (so a request without I/O does not
    /// pay for a timer).
    pub fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            span: SpanLevel::Info,
            cors: None,
        }
    }

    pub fn span(mut self, level: SpanLevel) -> Self {
        self.span = level;
        self
    }

    /// Answers preflights and adds CORS headers to every response.
    pub fn cors(mut self, cors: PublicCors) -> Self {
        self.cors = Some(cors);
        self
    }
}

impl<S> Layer<S> for CommonLayer {
    type Service = Common<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Common {
            inner,
            timeout: self.timeout,
            span: self.span,
            cors: self.cors.clone(),
            metrics: Arc::default(),
        }
    }
}

#[derive(Clone)]
pub struct Common<S> {
    inner: S,
    timeout: Option<Duration>,
    span: SpanLevel,
    cors: Option<PublicCors>,
    metrics: Arc<RouteMetrics>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Common<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(cors) = &self.cors {
            // Preflights are answered here, before any route sees them.
            if request.method() == Method::OPTIONS {
                return std::future::ready(Ok(cors.preflight())).boxed();
            }
        }
        let start = Instant::now();
        let headers = request.headers_mut();
        // Kept out of any log line that prints the headers.
        if let Some(value) = headers.get_mut(header::AUTHORIZATION) {
            value.set_sensitive(true);
        }
        let request_id = match headers.get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = new_request_id();
                headers.insert(REQUEST_ID, id.clone());
                id
            }
        };
        let method = request.method().clone();
        let route = self.metrics.route(&request);
        // Field values are only evaluated when the level is recorded.
        let span = match self.span {
            SpanLevel::Info => tracing::info_span!(
                "request",
                method = method.as_str(),
                route = route.as_ref(),
                request_id = request_id.to_str().unwrap_or("-"),
            ),
            SpanLevel::Debug => tracing::debug_span!(
                "request",
                method = method.as_str(),
                route = route.as_ref(),
                request_id = request_id.to_str().unwrap_or("-"),
            ),
        };
        let deferred = (self.span == SpanLevel::Debug).then(|| Deferred {
            route: Arc::clone(&route),
            request_id: request_id.clone(),
        });
        let timeout = self.timeout;
        let cors = self.cors.clone();
        let metrics = Arc::clone(&self.metrics);
        // A panic in the synchronous part of the call is caught too.
        let called = {
            let _entered = span.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request)))
        };
        async move {
            let response = match called {
                Ok(future) => match deferred {
                    Some(deferred) => {
                        DEFERRED
                            .scope(deferred, run(future, timeout, &request_id))
                            .await
                    }
                    None => run(future, timeout, &request_id).await,
                },
                Err(_) => panicked(&request_id),
            };
            let mut response = if is_unnormalized_error(&response) {
                problem::normalize(response).await
            } else {
                response
            };
            let headers = response.headers_mut();
            if !headers.contains_key(REQUEST_ID) {
                headers.insert(REQUEST_ID, request_id.clone());
            }
            if let Some(cors) = &cors {
                cors.decorate(headers);
            }
            let status = response.status();
            let latency = start.elapsed();
            metrics.record(&method, &route, status, latency);
            let latency_ms = latency.as_secs_f64() * 1000.0;
            if status.is_server_error() {
                tracing::error!(
                    status = status.as_u16(),
                    latency_ms,
                    request_id = id_text(&request_id),
                    "response failed"
                );
            } else {
                tracing::debug!(
                    status = status.as_u16(),
                    latency_ms,
                    "finished processing request"
                );
            }
            Ok(response)
        }
        .instrument(span)
        .boxed()
    }
}

async fn run<F>(future: F, timeout: Option<Duration>, request_id: &HeaderValue) -> Response
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let guarded = AssertUnwindSafe(future).catch_unwind();
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Problem::status(StatusCode::REQUEST_TIMEOUT, "The request took too long.")
                    .into_response()
            }
        },
        None => guarded.await,
    };
    match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => panicked(request_id),
    }
}

/// Error lines name their request themselves: with [`SpanLevel::Debug`] no
/// span does it for them.
fn panicked(request_id: &HeaderValue) -> Response {
    tracing::error!(
        request_id = id_text(request_id),
        "a request handler panicked"
    );
    Problem::internal().into_response()
}

pub(super) fn id_text(request_id: &HeaderValue) -> &str {
    request_id.to_str().unwrap_or("-")
}

fn is_unnormalized_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes()))
}

/// Request ids: 32 hex digits, a random per-process half and a counter, so
/// ids are unique across processes and restarts without formatting a UUID.
fn new_request_id() -> HeaderValue {
    static PROCESS: OnceLock<[u8; 16]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| hex16(rand::random::<u64>()));
    let mut id = [0_u8; 32];
    id[..16].copy_from_slice(process);
    id[16..].copy_from_slice(&hex16(COUNTER.fetch_add(1, Ordering::Relaxed)));
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn hex16(mut n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 16];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
    out
}

/// One route's metric handles, registered on first use of each method and
/// status, so a request costs a short scan instead of a registry lookup by
/// label strings.
#[derive(Default)]
struct RouteMetrics {
    /// The route's template; set on first request (the layer is built before
    /// the router knows it).
    route: OnceLock<Arc<str>>,
    handles: RwLock<Vec<Handles>>,
}

struct Handles {
    method: Method,
    status: StatusCode,
    requests: Counter,
    latency: Histogram,
}

impl RouteMetrics {
    fn route(&self, request: &Request) -> Arc<str> {
        let route = || -> Arc<str> {
            request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str)
                .into()
        };
        match request.extensions().get::<MatchedPath>() {
            // Every request of a route has the same template.
            Some(_) => Arc::clone(self.route.get_or_init(route)),
            // The fallback serves every unmatched path under one label.
            None => Arc::from("unmatched"),
        }
    }

    fn record(&self, method: &Method, route: &Arc<str>, status: StatusCode, latency: Duration) {
        let seconds = latency.as_secs_f64();
        {
            let handles = self
                .handles
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(h) = handles
                .iter()
                .find(|h| h.status == status && h.method == method)
            {
                h.requests.increment(1);
                h.latency.record(seconds);
                return;
            }
        }
        let labels = [
            ("method", method.as_str().to_owned()),
            ("route", route.to_string()),
            ("status", status.as_u16().to_string()),
        ];
        let handles = Handles {
            method: method.clone(),
            status,
            requests: metrics::counter!("http_requests_total", &labels),
            latency: metrics::histogram!("http_request_duration_seconds", &labels),
        };
        handles.requests.increment(1);
        handles.latency.record(seconds);
        let mut table = self
            .handles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Methods times statuses of one route: a short list. An unbounded
        // variety (arbitrary methods) stops being memoized past it.
        if table.len() < 64 {
            table.push(handles);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_eq!(&hex16(0xab), b"00000000000000ab");
    }
}
