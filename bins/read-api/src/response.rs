//! Turns a cache entry into the HTTP response: validators, cache headers,
//! 304 on a matching `If-None-Match`, and the entry's precomputed gzip for
//! clients that accept it (cached bytes are sent as stored, never recompressed).

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::Response,
};
use shared::cache::CachedResponse;

use crate::read_through::CacheStatus;

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");
const VARY: HeaderValue = HeaderValue::from_static("accept-encoding");
const RESPONSE_HEADERS: usize = 12;

impl CacheStatus {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Bypass => "BYPASS",
        })
    }
}

pub fn respond(request: &HeaderMap, entry: &CachedResponse, status: CacheStatus) -> Response {
    let not_modified = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|v| none_match_hits(v.as_bytes(), entry.etag.as_bytes()));
    let gzip = !not_modified && !entry.gzip.is_empty() && accepts_gzip(request);
    let mut response = if not_modified {
        Response::new(Body::empty())
    } else if gzip {
        Response::new(Body::from(entry.gzip.clone()))
    } else {
        Response::new(Body::from(entry.body.clone()))
    };
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    // Room for these, the request id and CORS' three at once: a map grown
    // insert by insert reallocates and rehashes on the way.
    *headers = HeaderMap::with_capacity(RESPONSE_HEADERS);
    headers.insert(header::ETAG, entry.etag_header.clone());
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    headers.insert(X_CACHE, status.header());
    headers.insert(header::VARY, VARY);
    if !not_modified {
        headers.insert(header::CONTENT_TYPE, JSON);
    }
    if gzip {
        headers.insert(header::CONTENT_ENCODING, GZIP);
    }
    response
}

/// Whether an `If-None-Match` value (`*` or a list of entity tags) matches
/// `etag`, by the weak comparison RFC 9110 prescribes for it.
fn none_match_hits(value: &[u8], etag: &[u8]) -> bool {
    let etag = etag.strip_prefix(b"W/").unwrap_or(etag);
    value.split(|b| *b == b',').any(|candidate| {
        let candidate = candidate.trim_ascii();
        candidate == b"*" || candidate.strip_prefix(b"W/").unwrap_or(candidate) == etag
    })
}

/// Whether `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*`, with q > 0).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let wanted = name.eq_ignore_ascii_case("gzip")
                || name.eq_ignore_ascii_case("x-gzip")
                || name == "*";
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            wanted && !refused
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn if_none_match_forms() {
        let etag = b"\"abc\"";
        assert!(none_match_hits(b"\"abc\"", etag));
        assert!(none_match_hits(b"\"x\", \"abc\"", etag));
        assert!(none_match_hits(b"W/\"abc\"", etag));
        assert!(none_match_hits(b"*", etag));
        assert!(!none_match_hits(b"\"abd\"", etag));
        assert!(!none_match_hits(b"abc", etag));
        assert!(!none_match_hits(b"", etag));
    }

    #[test]
    fn accept_encoding_forms() {
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "br;q=1.0, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "br, identity"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn not_modified_keeps_validators_and_drops_the_body() {
        let entry = CachedResponse::new(bytes::Bytes::from_static(b"{}"));
        let request = headers(&[(header::IF_NONE_MATCH, &entry.etag)]);
        let response = respond(&request, &entry, CacheStatus::Hit);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], entry.etag.as_str());
        assert_eq!(response.headers()[X_CACHE], "HIT");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    }
}
