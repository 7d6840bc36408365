//! CORS for a public read API: `GET` and `HEAD` from any origin, with any
//! request headers, and a fixed list of response headers exposed.
//!
//! The same headers `tower_http::cors::CorsLayer` sends for
//! `allow_origin(Any)`, `allow_methods([GET, HEAD])`, `allow_headers(Any)` and
//! `expose_headers(..)`, but with every value built once: that layer rebuilds
//! its `Vary` value and a header map of its own on every request, which was
//! 6 % of a cached hit's instructions (docs/benchmarks.md).

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderName, HeaderValue},
    response::Response,
};

/// What `CorsLayer`'s default `Vary` says: a preflight's answer depends on
/// these request headers.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);
const ANY: HeaderValue = HeaderValue::from_static("*");
const METHODS: HeaderValue = HeaderValue::from_static("GET,HEAD");

#[derive(Clone, Debug)]
pub struct PublicCors {
    expose: HeaderValue,
}

impl PublicCors {
    /// Exposes `headers` to scripts (besides the CORS-safelisted ones).
    pub fn exposing(headers: &[HeaderName]) -> Self {
        let list = headers
            .iter()
            .map(HeaderName::as_str)
            .collect::<Vec<_>>()
            .join(",");
        Self {
            // Header names joined by commas are always a valid value.
            expose: HeaderValue::from_str(&list).unwrap_or(ANY),
        }
    }

    /// The answer to any `OPTIONS` request (a preflight), without calling
    /// the route.
    pub fn preflight(&self) -> Response {
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        headers.insert(header::VARY, VARY);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, METHODS);
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ANY);
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
        response
    }

    /// Adds the CORS headers to the response of any other request.
    pub fn decorate(&self, headers: &mut HeaderMap) {
        // A route's own `Vary` (accept-encoding) stays: this one is added.
        headers.append(header::VARY, VARY);
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, self.expose.clone());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::{
        http::{Method, Request, StatusCode},
        routing::get,
        Router,
    };
    use tower::ServiceExt;
    use tower_http::cors::{Any, CorsLayer};

    use super::*;

    /// Every header but the request id, which only the common layer adds.
    fn sorted(headers: &HeaderMap) -> Vec<(String, String)> {
        let mut all: Vec<_> = headers
            .iter()
            .filter(|(k, _)| *k != crate::http::REQUEST_ID)
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        all.sort();
        all
    }

    /// Through a router, the headers are exactly those of tower-http's
    /// `CorsLayer` as read-api configured it before, for a plain request
    /// (with and without `Origin`) and for preflights.
    #[tokio::test]
    async fn same_headers_as_tower_http() {
        let expose = [header::ETAG, HeaderName::from_static("x-cache")];
        let routes = || {
            Router::new().route(
                "/",
                get(|| async { ([(header::VARY, "accept-encoding")], "ok") }),
            )
        };
        let reference = routes().layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::HEAD])
                .allow_headers(Any)
                .expose_headers(expose.clone()),
        );
        let ours = crate::http::with_read_layers(routes(), &expose);
        for (method, origin) in [
            (Method::GET, None),
            (Method::GET, Some("https://shop.example")),
            (Method::OPTIONS, Some("https://shop.example")),
            (Method::OPTIONS, None),
        ] {
            let request = || {
                let mut request = Request::builder().method(method.clone()).uri("/");
                if let Some(origin) = origin {
                    request = request
                        .header(header::ORIGIN, origin)
                        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET");
                }
                request.body(Body::empty()).unwrap()
            };
            let expected = reference.clone().oneshot(request()).await.unwrap();
            let got = ours.clone().oneshot(request()).await.unwrap();
            assert_eq!(expected.status(), StatusCode::OK);
            assert_eq!(got.status(), expected.status(), "{method} {origin:?}");
            assert_eq!(
                sorted(got.headers()),
                sorted(expected.headers()),
                "{method} {origin:?}"
            );
        }
    }
}
