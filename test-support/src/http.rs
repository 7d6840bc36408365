//! Checks on HTTP answers both APIs share: problem+json errors and
//! Prometheus metrics.
#![allow(clippy::unwrap_used)] // Test support: a panic is the failing test's report.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// Asserts the error discipline of both APIs on one response: never a 5xx,
/// and every 4xx is problem+json whose `status` is the HTTP status. Returns
/// the status and body (Null if not JSON).
pub async fn assert_clean(what: &str, response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(
        !status.is_server_error(),
        "{what}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        assert!(
            content_type.starts_with("application/problem+json"),
            "{what}: {status} with content-type {content_type:?}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(body["status"], json!(status.as_u16()), "{what}: {body}");
    }
    (status, body)
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

/// The value of a Prometheus counter or gauge (summing its label sets).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
