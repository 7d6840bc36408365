//! Server-side sessions in Postgres (`admin_sessions`). The cookie holds 32
//! random bytes; the table holds only their SHA-256, so reading the table (or
//! a backup) gives no usable session. A session ends after an idle time, after
//! an absolute time, or at sign-out.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap, HeaderValue},
    response::{IntoResponse, Redirect, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

use super::{error::PageError, ConsoleState};
use crate::config::ConsoleArgs;

pub const COOKIE: &str = "admin_session";

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    idle_secs: f64,
    max_secs: f64,
    secure: bool,
}

impl From<&ConsoleArgs> for Settings {
    fn from(args: &ConsoleArgs) -> Self {
        Self {
            idle_secs: f64::from(args.admin_session_idle_secs),
            max_secs: f64::from(args.admin_session_max_secs),
            secure: !args.admin_insecure_cookie,
        }
    }
}

impl Settings {
    /// A cookie scoped to the console; `value: None` deletes it.
    pub fn cookie(&self, name: &str, path: &str, value: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = match value {
            Some(value) => {
                format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}")
            }
            None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict{secure}; Max-Age=0"),
        };
        // Our names and base64url values are always valid header text.
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }
}

/// A signed-in admin's session.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: Vec<u8>,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
}

/// 32 random bytes, base64url: session ids and CSRF tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Starts a session; returns the cookie value (the only copy of the id).
pub async fn start(state: &ConsoleState) -> Result<String, sqlx::Error> {
    let settings = state.sessions;
    // Sign-ins are rare: a good moment to forget expired sessions.
    sqlx::query!(
        "delete from admin_sessions
         where last_seen_at < now() - make_interval(secs => $1)
            or created_at < now() - make_interval(secs => $2)",
        settings.idle_secs,
        settings.max_secs,
    )
    .execute(&state.pool)
    .await?;
    let id = random_token();
    sqlx::query!(
        "insert into admin_sessions (id_hash, csrf_token) values ($1, $2)",
        hash(&id),
        random_token(),
    )
    .execute(&state.pool)
    .await?;
    Ok(id)
}

/// The live session of the request's cookie, marking it as just used.
pub async fn find(state: &ConsoleState, headers: &HeaderMap) -> Result<Option<Session>, PageError> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let id_hash = hash(id);
    let settings = state.sessions;
    let csrf = sqlx::query_scalar!(
        "update admin_sessions set last_seen_at = now()
         where id_hash = $1
           and last_seen_at >= now() - make_interval(secs => $2)
           and created_at >= now() - make_interval(secs => $3)
         returning csrf_token",
        &id_hash,
        settings.idle_secs,
        settings.max_secs,
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(csrf.map(|csrf| Session { id_hash, csrf }))
}

/// Ends the session server-side: its cookie, if kept, opens nothing.
pub async fn end(state: &ConsoleState, session: &Session) -> Result<(), PageError> {
    sqlx::query!(
        "delete from admin_sessions where id_hash = $1",
        &session.id_hash
    )
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Pages behind sign-in take a `Session`; without one they send the
/// browser to the sign-in page.
impl FromRequestParts<ConsoleState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        match find(state, &parts.headers).await {
            Ok(Some(session)) => Ok(session),
            Ok(None) => Err(Redirect::to("/admin/sign-in").into_response()),
            Err(error) => Err(error.into_response()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; admin_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "admin"), None);
    }

    #[test]
    fn cookie_flags() {
        let settings = Settings::from(&ConsoleArgs::default());
        let set = settings.cookie(COOKIE, "/admin", Some("v"));
        assert_eq!(
            set,
            "admin_session=v; Path=/admin; HttpOnly; SameSite=Strict; Secure"
        );
        let dev = Settings::from(&ConsoleArgs {
            admin_insecure_cookie: true,
            ..ConsoleArgs::default()
        });
        assert!(!dev
            .cookie(COOKIE, "/admin", None)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
