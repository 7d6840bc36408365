//! The one error type of the write API and its problem+json responses.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use shared::{FieldError, Problem};

/// A problem the handler could name is answered as it is; a database error
/// is judged when answered (503, 422 or a logged 500), an internal one is
/// logged and hidden.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} {}: {}", .0.status, .0.title, .0.detail.as_deref().unwrap_or_default())]
    Problem(Problem),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl ApiError {
    pub fn video_not_found() -> Self {
        Problem::not_found("No video with this id.").into()
    }

    /// A body over the route's limit.
    pub fn payload_too_large() -> Self {
        Problem::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large: at most 1 MiB, or 32 MiB for /v1/videos/batch.",
        )
        .into()
    }

    /// Field errors (422), as the parsers report them.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Problem::validation(errors).into()
    }

    /// Whether this is a problem with `status` (how the console tells a
    /// refused precondition or invalid fields from a failure).
    pub fn is(&self, status: StatusCode) -> bool {
        matches!(self, Self::Problem(p) if p.status == status.as_u16())
    }

    fn into_problem(self) -> Problem {
        match self {
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
        let cases: [(ApiError, u16); 12] = [
            (Problem::unauthorized().into(), 401),
            (Problem::bad_request("x").into(), 400),
            (ApiError::video_not_found(), 404),
            (Problem::conflict("x").into(), 409),
            (Problem::precondition_failed("x").into(), 412),
            (ApiError::payload_too_large(), 413),
            (
                Problem::status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "x").into(),
                415,
            ),
            (ApiError::validation(vec![]), 422),
            (Problem::unavailable("x").into(), 503),
            (ApiError::Database(sqlx::Error::PoolTimedOut), 503),
            (ApiError::Database(sqlx::Error::RowNotFound), 500),
            (ApiError::Internal("secret".into()), 500),
        ];
        for (error, status) in cases {
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
