//! RFC 9457 problem details: the one shape every error of every API takes.

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The failing field, as a path into the request: `title`, `tags[3]`,
    /// `videos[2].video_url`, or a query parameter's name.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem whose type is just its status (`about:blank`, RFC 9457 §4.2.1).
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
        }
    }

    fn typed(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::typed(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::typed(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut p = Self::typed(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation failed",
            "The request body has invalid fields; see errors.",
        );
        p.errors = errors;
        p
    }

    pub fn unauthorized() -> Self {
        Self::typed(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "A valid `Authorization: Bearer <token>` header is required.",
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::typed(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::typed(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::typed(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// A 500 that says nothing of its cause; log the cause before calling this.
    pub fn internal() -> Self {
        Self::typed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "Something went wrong on our side; it has been logged.",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        // Serializing a struct of strings cannot fail; the fallback keeps it panic-free.
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Turns every error response that is not already
/// problem+json (axum's own rejections, 404 and 405 from routing, 408 and 413
/// from tower-http layers, a caught panic) into one, keeping its status and
/// headers and, for short plain-text bodies, their message as the detail.
pub async fn normalize(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()));
    // HTML error pages are the admin console's own, written for people.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_problem || is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = match body.collect().await {
        Ok(collected) => detail_from_body(status, &collected.to_bytes()),
        Err(_) => default_detail(status),
    };
    let mut problem = Problem::status(status, detail);
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(status = status.as_u16(), detail = ?problem.detail, "error response");
        problem = Problem {
            status: status.as_u16(),
            ..Problem::internal()
        };
    }
    let fresh = problem.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    // `insert`, not `extend`: `extend` appends, leaving the old
    // `Content-Type` first.
    for (name, value) in fresh.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    let (_, body) = fresh.into_parts();
    Response::from_parts(parts, Body::new(body))
}

fn detail_from_body(status: StatusCode, body: &Bytes) -> String {
    match std::str::from_utf8(body) {
        Ok(text) if !text.trim().is_empty() && text.len() <= 500 => text.trim().to_owned(),
        _ => default_detail(status),
    }
}

fn default_detail(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "No such resource.".into(),
        StatusCode::METHOD_NOT_ALLOWED => "This method is not allowed on this resource.".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.".into(),
        StatusCode::REQUEST_TIMEOUT => "The request took too long.".into(),
        other => other.canonical_reason().unwrap_or("Error").into(),
    }
}
