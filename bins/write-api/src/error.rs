//! The one error type of the write API and its problem+json responses.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use shared::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request body is larger than this route accepts")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Postgres is not usable yet (the schema is still being migrated).
    #[error("{0}")]
    Unavailable(String),
    /// A problem made by shared code (the feed query parser).
    #[error("{}", .0.title)]
    Problem(Problem),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn video_not_found() -> Self {
        Self::NotFound("No video with this id.".into())
    }

    fn into_problem(self) -> Problem {
        match self {
            Self::Unauthorized => Problem::unauthorized(),
            Self::BadRequest(detail) => Problem::bad_request(detail),
            Self::NotFound(detail) => Problem::not_found(detail),
            Self::Conflict(detail) => Problem::conflict(detail),
            Self::PreconditionFailed(detail) => Problem::precondition_failed(detail),
            Self::PayloadTooLarge => Problem::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large: at most 1 MiB, or 32 MiB for /v1/videos/batch.",
            ),
            Self::UnsupportedMediaType(detail) => {
                Problem::status(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail)
            }
            Self::Validation(errors) => Problem::validation(errors),
            Self::Unavailable(detail) => Problem::unavailable(detail),
            Self::Problem(problem) => problem,
            Self::Database(error) => database_problem(&error),
            Self::Internal(message) => {
                tracing::error!(%message, "internal error");
                Problem::internal()
            }
        }
    }
}

/// Unreachable Postgres is a 503 the client may retry; a unique violation is
/// the client's doing (422); anything else is our bug, logged and hidden.
fn database_problem(error: &sqlx::Error) -> Problem {
    if shared::db::is_unavailable(error) {
        tracing::warn!(%error, "postgres unavailable");
        return Problem::unavailable("The database is unavailable; retry shortly.");
    }
    if shared::db::is_unique_violation(error) {
        let constraint = match error {
            sqlx::Error::Database(db) => db.constraint().unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        let field = if constraint == "videos_pkey" {
            "id"
        } else {
            ""
        };
        return Problem::validation(vec![FieldError::new(
            field,
            "conflicts with an existing video",
        )]);
    }
    tracing::error!(%error, "database error");
    Problem::internal()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for (error, status) in [
            (ApiError::Unauthorized, 401),
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::video_not_found(), 404),
            (ApiError::Conflict("x".into()), 409),
            (ApiError::PreconditionFailed("x".into()), 412),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::UnsupportedMediaType("x".into()), 415),
            (ApiError::Validation(vec![]), 422),
            (ApiError::Unavailable("x".into()), 503),
            (ApiError::Database(sqlx::Error::PoolTimedOut), 503),
            (ApiError::Database(sqlx::Error::RowNotFound), 500),
            (ApiError::Internal("secret".into()), 500),
        ] {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let response = ApiError::Database(sqlx::Error::PoolClosed).into_response();
        assert!(response.headers().contains_key("retry-after"));
    }
}
