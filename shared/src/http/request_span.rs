//! The request span of a read path, opened only once a request does I/O.

use std::sync::Arc;

use axum::http::HeaderValue;

use super::common::id_text;

/// What the request span of a [`SpanLevel::Debug`](super::SpanLevel::Debug) service would hold, for
/// [`request_span`].
pub(super) struct Deferred {
    pub(super) route: Arc<str>,
    pub(super) request_id: HeaderValue,
}

tokio::task_local! {
    pub(super) static DEFERRED: Deferred;
}

/// The request's span (route, request id) at INFO, for the part of a request
/// that does I/O in a service whose request span is [`SpanLevel::Debug`](super::SpanLevel::Debug): a
/// hit served from memory builds no span at all, yet every line logged once a
/// request reaches Redis or Postgres carries its id, as with
/// [`SpanLevel::Info`](super::SpanLevel::Info). Elsewhere (no such request: the span is already open,
/// or there is no request) `Span::none()`.
pub fn request_span() -> tracing::Span {
    DEFERRED
        .try_with(|d| {
            tracing::info_span!(
                "request",
                route = d.route.as_ref(),
                request_id = id_text(&d.request_id),
            )
        })
        .unwrap_or_else(|_| tracing::Span::none())
}
