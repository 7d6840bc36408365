//! The console's failures as HTML pages (the API answers problem+json; people
//! get a page that says what happened and what to do).

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use maud::html;

use super::views;
use crate::error::ApiError;

#[derive(Debug)]
pub enum PageError {
    /// A form without the session's CSRF token, or from another origin.
    Forbidden,
    NotFound,
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        match error {
            error if error.is(StatusCode::NOT_FOUND) => Self::NotFound,
            other => Self::Api(other),
        }
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(ApiError::Database(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This form is stale or did not come from this console, so nothing was changed. \
                 Go back, reload the page and try again.",
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here: the video may have been deleted.",
            ),
            Self::Api(ApiError::Database(error)) if shared::db::is_unavailable(&error) => {
                tracing::warn!(%error, "postgres unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The database is unavailable. Nothing was changed; try again shortly.",
                )
            }
            Self::Api(error) => {
                tracing::error!(%error, "admin console error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server failed; the error was logged. Nothing was changed.",
                )
            }
        };
        let page = views::bare_page(
            title,
            html! {
                p { (text) }
                p { a href="/admin/videos" { "Back to the videos" } }
            },
        );
        let mut response = (status, page).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
        }
        response
    }
}
