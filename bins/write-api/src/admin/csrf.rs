//! Cross-site request forgery defences for every state-changing request: a
//! token tied to the session in the form (compared in constant time), and a
//! same-origin `Origin` (or, without it, `Referer`) when the browser sends one.
//! `SameSite=Strict` on the cookie is the third layer.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::{error::PageError, session::Session};

/// Accepts the request only with the session's token and a same-origin source.
pub fn verify(session: &Session, presented: &str, headers: &HeaderMap) -> Result<(), PageError> {
    same_origin(headers)?;
    tokens_match(&session.csrf, presented)
}

pub fn tokens_match(expected: &str, presented: &str) -> Result<(), PageError> {
    // Slices of unequal length compare unequal (in time independent of content).
    let equal: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
    if equal && !expected.is_empty() {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

/// `Origin` (else `Referer`), when present, must name this host.
pub fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    let Some(source) = source else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let same = match (source.to_str().ok(), host) {
        (Some(source), Some(host)) => authority_matches(source, host),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

/// Whether URL `source` (`http://h:p/...`, or `null`) is on `host` (`h:p`).
fn authority_matches(source: &str, host: &str) -> bool {
    let (Ok(source), Ok(host)) = (
        url::Url::parse(source),
        url::Url::parse(&format!("http://{host}")),
    ) else {
        return false;
    };
    // The port as written; a missing one is the scheme's default on both sides.
    let port = |u: &url::Url| u.port().filter(|p| !matches!(p, 80 | 443));
    source.host_str().is_some()
        && source.host_str() == host.host_str()
        && port(&source) == port(&host)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn origin_must_be_this_host() {
        let host = (header::HOST, "127.0.0.1:8081");
        assert!(same_origin(&headers(std::slice::from_ref(&host))).is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "http://127.0.0.1:8081")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::REFERER, "http://127.0.0.1:8081/admin/videos?q=x")
        ]))
        .is_ok());
        for bad in [
            "http://127.0.0.1:8082",
            "http://evil.example",
            "null",
            "http://127.0.0.1.evil.example:8081",
        ] {
            assert!(
                same_origin(&headers(&[host.clone(), (header::ORIGIN, bad)])).is_err(),
                "{bad}"
            );
        }
        assert!(same_origin(&headers(&[
            (header::HOST, "admin.example"),
            (header::ORIGIN, "https://admin.example")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[(header::ORIGIN, "https://admin.example")])).is_err());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(tokens_match("abc", "abc").is_ok());
        assert!(tokens_match("abc", "abd").is_err());
        assert!(tokens_match("abc", "ab").is_err());
        assert!(tokens_match("abc", "").is_err());
        assert!(tokens_match("", "").is_err());
    }
}
