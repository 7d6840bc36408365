//! The admin console: server-rendered HTML under `/admin` for people who do
//! not type curl. It calls the same validation and the same transactions as
//! `/v1` (never the API over HTTP), behind a server-side session (see
//! [`session`]), a CSRF token on every form (see [`csrf`]) and strict
//! security headers (see [`headers`]).

mod actions;
mod csrf;
mod edit;
mod error;
mod form;
mod headers;
mod import;
mod limiter;
mod list;
mod session;
mod signin;
mod views;

use std::sync::Arc;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::header,
    middleware::from_fn,
    response::{IntoResponse, Redirect, Response},
    routing::{any, get, post},
    Router,
};
use sqlx::PgPool;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};

use crate::{auth::AdminTokens, config::ConsoleArgs};

/// Form posts are small; the import page takes a file up to the batch
/// endpoint's own limit (plus room for the multipart framing).
const FORM_LIMIT: usize = 1024 * 1024;
const IMPORT_LIMIT: usize = crate::body::BATCH_LIMIT + 64 * 1024;

#[derive(Clone)]
pub struct ConsoleState {
    pool: PgPool,
    tokens: AdminTokens,
    sessions: session::Settings,
    limiter: Arc<limiter::SignInLimiter>,
}

pub fn router(pool: PgPool, tokens: AdminTokens, args: &ConsoleArgs) -> Router {
    let state = ConsoleState {
        pool,
        tokens,
        sessions: session::Settings::from(args),
        limiter: Arc::new(limiter::SignInLimiter::default()),
    };
    let import = Router::new()
        .route("/admin/import", get(import::page).post(import::submit))
        .layer(DefaultBodyLimit::max(IMPORT_LIMIT));
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route("/admin/sign-in", get(signin::page).post(signin::submit))
        .route("/admin/sign-out", post(signin::sign_out))
        .route("/admin/videos", get(list::page).post(edit::create))
        .route("/admin/videos/new", get(edit::new_page))
        .route("/admin/videos/{id}", get(edit::edit_page).post(edit::save))
        .route("/admin/videos/{id}/publish", post(actions::publish))
        .route("/admin/videos/{id}/unpublish", post(actions::unpublish))
        .route(
            "/admin/videos/{id}/delete",
            get(actions::delete_page).post(actions::delete),
        )
        .route("/admin/console.css", get(stylesheet))
        .route(
            "/admin/{*rest}",
            any(|| async { error::PageError::NotFound }),
        )
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .merge(import)
        .layer(from_fn(headers::secure))
        .layer(SetSensitiveRequestHeadersLayer::new([header::COOKIE]))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .with_state(state)
}

/// `/admin`: the list when signed in, else the sign-in page.
async fn home(State(state): State<ConsoleState>, headers: header::HeaderMap) -> Response {
    match session::find(&state, &headers).await {
        Ok(Some(_)) => Redirect::to("/admin/videos").into_response(),
        Ok(None) => Redirect::to("/admin/sign-in").into_response(),
        Err(error) => error.into_response(),
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("console.css"),
    )
}
