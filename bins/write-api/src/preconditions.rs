//! Versions as entity tags: `ETag: "3"` out, `If-Match` in (optimistic concurrency).

use axum::http::{header, HeaderMap, HeaderValue};
use shared::Problem;

use crate::error::ApiError;

/// The strong entity tag of a version: `"3"`.
pub fn etag(version: i64) -> HeaderValue {
    // Digits and quotes always make a valid header value; the fallback is never used.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Checks `If-Match` (RFC 9110 §13.1.1) against the current version: absent
/// or `*` passes; otherwise one listed tag must equal `"<version>"`. Weak tags
/// never match (If-Match uses the strong comparison).
pub fn check_if_match(headers: &HeaderMap, version: i64) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let current = format!("\"{version}\"");
    let matched = values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current);
    if matched {
        Ok(())
    } else {
        Err(Problem::precondition_failed(format!(
            "If-Match does not match the current version ({current})."
        ))
        .into())
    }
}

/// Whether `If-None-Match` (RFC 9110 §13.1.2) matches the current version,
/// so a GET can answer 304. Weak comparison: `W/"3"` matches `"3"`.
pub fn if_none_match(headers: &HeaderMap, version: i64) -> bool {
    let current = format!("\"{version}\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == current)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn if_match(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn etag_is_the_quoted_version() {
        assert_eq!(etag(3), "\"3\"");
    }

    #[test]
    fn if_none_match_rules() {
        let mut headers = HeaderMap::new();
        assert!(!if_none_match(&headers, 3));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"2\", W/\"3\""),
        );
        assert!(if_none_match(&headers, 3));
        assert!(!if_none_match(&headers, 4));
    }

    #[test]
    fn if_match_rules() {
        assert!(check_if_match(&HeaderMap::new(), 3).is_ok());
        assert!(check_if_match(&if_match(&["\"3\""]), 3).is_ok());
        assert!(check_if_match(&if_match(&["*"]), 3).is_ok());
        assert!(check_if_match(&if_match(&["\"1\", \"3\""]), 3).is_ok());
        assert!(check_if_match(&if_match(&["\"1\"", "\"3\""]), 3).is_ok());
        assert!(check_if_match(&if_match(&["\"2\""]), 3).is_err());
        assert!(check_if_match(&if_match(&["W/\"3\""]), 3).is_err());
        assert!(check_if_match(&if_match(&["3"]), 3).is_err());
    }
}
