//! `Idempotency-Key` on `POST /v1/videos`: the first successful response to a
//! key is stored in the creating transaction and replayed for the same key
//! and body; the same key with another body is a 409.

use std::time::Duration;

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::Response,
};
use shared::Problem;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response, so a client can tell it created nothing.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Characters of an `Idempotency-Key`.
pub const MAX_KEY_CHARS: usize = 255;

/// The key of a request, if it has one: 1..=[`MAX_KEY_CHARS`] characters, else 400.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII."))?;
    if (1..=MAX_KEY_CHARS).contains(&key.chars().count()) {
        Ok(Some(key.to_owned()))
    } else {
        Err(Problem::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters."
        ))
        .into())
    }
}

/// A response stored under a key.
pub struct Stored {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub etag: Option<String>,
}

impl Stored {
    pub fn into_response(self, replayed: bool) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in [(header::LOCATION, self.location), (header::ETAG, self.etag)] {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, value);
            }
        }
        if replayed {
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

pub enum Claim {
    /// The key is new: go on, then [`record`] the response in the same transaction.
    Claimed,
    /// The key was used with this body before: replay this.
    Replay(Stored),
}

/// Claims `key` inside the caller's transaction. The row is inserted first:
/// a concurrent request with the same key waits on the primary key until
/// this transaction ends, then sees the stored response (or, if this one
/// rolled back, claims the key itself). Keys older than 24 hours are expired.
pub async fn claim(
    tx: &mut PgConnection,
    key: &str,
    request_hash: &[u8],
) -> Result<Claim, ApiError> {
    sqlx::query!(
        "delete from idempotency_keys where key = $1 and created_at < now() - interval '24 hours'",
        key
    )
    .execute(&mut *tx)
    .await?;
    let inserted = sqlx::query!(
        "insert into idempotency_keys (key, request_hash, status, response_body)
         values ($1, $2, 0, '') on conflict (key) do nothing",
        key,
        request_hash
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Claimed);
    }
    let Some(row) = sqlx::query!(
        "select request_hash, status, response_body, location, etag from idempotency_keys where key = $1",
        key
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(Problem::conflict(
            "A request with this Idempotency-Key is being processed; retry.",
        )
        .into());
    };
    if row.request_hash != request_hash {
        return Err(Problem::conflict(
            "This Idempotency-Key was already used with a different request body.",
        )
        .into());
    }
    let status = u16::try_from(row.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ApiError::Internal(format!("stored idempotent status {}", row.status)))?;
    Ok(Claim::Replay(Stored {
        status,
        body: row.response_body,
        location: row.location,
        etag: row.etag,
    }))
}

/// Stores the response of a claimed key, in the claiming transaction.
pub async fn record(tx: &mut PgConnection, key: &str, response: &Stored) -> Result<(), ApiError> {
    sqlx::query!(
        "update idempotency_keys set status = $2, response_body = $3, location = $4, etag = $5
         where key = $1",
        key,
        i16::try_from(response.status.as_u16()).unwrap_or(i16::MAX),
        &response.body,
        response.location,
        response.etag,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes keys older than 24 hours every few minutes, so the table stays small.
pub fn prune_periodically(pool: PgPool, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
            let pruned = sqlx::query!(
                "delete from idempotency_keys where created_at < now() - interval '24 hours'"
            )
            .execute(&pool)
            .await;
            match pruned {
                Ok(done) => tracing::debug!(keys = done.rows_affected(), "pruned idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not prune idempotency keys"),
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with_key(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn key_length_is_checked() {
        assert_eq!(key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key(&with_key("k-1")).unwrap().as_deref(), Some("k-1"));
        assert!(key(&with_key(&"k".repeat(255))).is_ok());
        assert!(key(&with_key(&"k".repeat(256))).is_err());
        assert!(key(&with_key("")).is_err());
    }
}
