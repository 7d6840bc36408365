//! The read API's errors and their problem+json responses.

use axum::response::{IntoResponse, Response};
use shared::Problem;

/// `Clone` because one failed query answers every request that shared it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// A client error with its problem (400, 404).
    #[error("{}", .0.title)]
    Problem(Problem),
    /// Postgres unreachable, or too busy to take the query in time.
    #[error("database unavailable")]
    Unavailable,
    /// The request took longer than `REQUEST_TIMEOUT_MS` (408).
    #[error("request timed out")]
    Timeout,
    /// Logged where it happened; the client learns nothing of it.
    #[error("internal error")]
    Internal,
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if shared::db::is_unavailable(&error) {
            tracing::warn!(%error, "database unavailable");
            Self::Unavailable
        } else {
            tracing::error!(%error, "database error");
            Self::Internal
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "cannot serialize a response");
        Self::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(problem) => problem.into_response(),
            Self::Unavailable => {
                Problem::unavailable("The database is unavailable or busy; retry shortly.")
                    .into_response()
            }
            Self::Timeout => Problem::status(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "The request took too long.",
            )
            .into_response(),
            Self::Internal => Problem::internal().into_response(),
        }
    }
}
