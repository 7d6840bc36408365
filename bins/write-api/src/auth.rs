//! Bearer-token authentication of every `/v1` request.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use shared::Problem;
use subtle::ConstantTimeEq;

/// The accepted tokens, kept only as SHA-256 digests: comparing fixed-size
/// digests in constant time leaks neither a token's bytes nor its length.
#[derive(Clone)]
pub struct AdminTokens(Arc<Vec<[u8; 32]>>);

impl AdminTokens {
    /// `None` when no non-empty token is given: the server refuses to start.
    pub fn new(tokens: &[String]) -> Option<Self> {
        let digests: Vec<[u8; 32]> = tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(digest)
            .collect();
        (!digests.is_empty()).then(|| Self(Arc::new(digests)))
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|token| self.accepts_token(token))
    }

    /// Whether `presented` is one of the tokens (the console's sign-in).
    pub fn accepts_token(&self, presented: &str) -> bool {
        let presented = presented.trim();
        if presented.is_empty() {
            return false;
        }
        let presented = digest(presented);
        // Every token is compared, so the time does not tell which one matched.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.ct_eq(&presented)
            })
            .into()
    }
}

// Debug must never print a token, not even a digest.
impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} tokens)", self.0.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Answers 401 (with `WWW-Authenticate: Bearer`) before routing, so unknown
/// paths and wrong methods under `/v1` reveal nothing without a token.
pub async fn require_bearer(
    State(tokens): State<AdminTokens>,
    request: Request,
    next: Next,
) -> Response {
    if tokens.accepts(request.headers()) {
        next.run(request).await
    } else {
        Problem::unauthorized().into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accepts_any_configured_token() {
        let tokens = AdminTokens::new(&["one".into(), " two ".into()]).unwrap();
        assert!(tokens.accepts(&headers("Bearer one")));
        assert!(tokens.accepts(&headers("bearer two")));
        assert!(!tokens.accepts(&headers("Bearer three")));
        assert!(!tokens.accepts(&headers("Bearer on")));
        assert!(!tokens.accepts(&headers("Basic one")));
        assert!(!tokens.accepts(&headers("Bearer")));
        assert!(!tokens.accepts(&headers("one")));
        assert!(!tokens.accepts(&HeaderMap::new()));
    }

    #[test]
    fn refuses_to_exist_without_a_token() {
        assert!(AdminTokens::new(&[]).is_none());
        assert!(AdminTokens::new(&["".into(), "  ".into()]).is_none());
    }

    #[test]
    fn debug_hides_tokens() {
        let tokens = AdminTokens::new(&["secret".into()]).unwrap();
        assert_eq!(format!("{tokens:?}"), "AdminTokens(1 tokens)");
    }
}
