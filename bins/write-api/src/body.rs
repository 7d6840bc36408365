//! JSON request bodies: media type (415), size (413) and syntax (400) are
//! checked here; the fields are validated by `shared::domain`.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{header, HeaderMap, StatusCode},
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::Problem;

use crate::error::ApiError;

/// Body limit of every route but the batch create.
pub const LIMIT: usize = 1024 * 1024;
/// Body limit of `POST /v1/videos/batch` (1000 videos of up to ~32 KiB each).
pub const BATCH_LIMIT: usize = 32 * 1024 * 1024;

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// An `application/json` body, parsed but not yet validated.
pub struct JsonBody(pub Value);

/// A JSON merge patch body: `application/merge-patch+json` or `application/json`.
pub struct MergePatchBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state, &[JSON]).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequest<S> for MergePatchBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state, &[MERGE_PATCH, JSON]).await.map(Self)
    }
}

async fn read<S: Send + Sync>(
    request: Request,
    state: &S,
    accepted: &[&str],
) -> Result<Value, ApiError> {
    if !media_type(request.headers()).is_some_and(|m| accepted.contains(&m.as_str())) {
        return Err(Problem::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "The body must be JSON, sent with `Content-Type: {}`.",
                accepted.join("` or `")
            ),
        )
        .into());
    }
    // Honours the route's DefaultBodyLimit.
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                Problem::bad_request(format!("Could not read the request body: {rejection}")).into()
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("The body is not valid JSON: {e}.")).into())
}

/// The media type of `Content-Type` without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence)
}

/// A digest of the body's canonical form (re-serialized, so whitespace does
/// not count): what an `Idempotency-Key` is bound to.
pub fn canonical_hash(value: &Value) -> Vec<u8> {
    Sha256::digest(value.to_string().as_bytes()).to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let mut headers = HeaderMap::new();
        assert_eq!(media_type(&headers), None);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(media_type(&headers).as_deref(), Some(JSON));
    }

    #[test]
    fn canonical_hash_ignores_formatting() {
        let a: Value = serde_json::from_str(r#"{"title": "x",  "video_url": "u"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"title":"x","video_url":"u"}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"title":"y","video_url":"u"}"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }
}
