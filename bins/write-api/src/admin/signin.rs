//! Sign-in with an admin token, and sign-out.
//!
//! The sign-in form has no session yet, so it carries a one-off token that
//! must equal a `SameSite=Strict` cookie set with the form (a double-submit
//! token): another site cannot sign a browser in with its own token.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension, Form,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    csrf,
    error::PageError,
    session::{self, Session},
    views, ConsoleState,
};

const SIGN_IN_COOKIE: &str = "admin_sign_in";
const SIGN_IN_PATH: &str = "/admin/sign-in";

#[derive(Debug, Deserialize)]
pub struct Shown {
    #[serde(default)]
    signed_out: Option<String>,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(shown): Query<Shown>,
) -> Result<Response, PageError> {
    if session::find(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin/videos").into_response());
    }
    let notice = shown
        .signed_out
        .is_some()
        .then(|| views::notice("ok", html! { "You have signed out." }));
    Ok(form_page(&state, StatusCode::OK, notice))
}

fn form_page(state: &ConsoleState, status: StatusCode, notice: Option<Markup>) -> Response {
    let token = session::random_token();
    let page = views::bare_page(
        "Sign in",
        html! {
            @if let Some(notice) = notice { (notice) }
            form.card method="post" action=(SIGN_IN_PATH) {
                input type="hidden" name="csrf" value=(token);
                label for="token" { "Admin token" }
                input #token type="password" name="token" required
                    autocomplete="current-password" autofocus;
                button type="submit" { "Sign in" }
            }
        },
    );
    let cookie = state
        .sessions
        .cookie(SIGN_IN_COOKIE, SIGN_IN_PATH, Some(&token));
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub async fn submit(
    State(state): State<ConsoleState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, PageError> {
    csrf::same_origin(&headers)?;
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    csrf::tokens_match(expected, &form.csrf)?;
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(c)| c.0.ip());
    if let Err(wait) = state.limiter.check(ip, Instant::now()) {
        let secs = wait.as_secs() + 1;
        let notice = views::notice(
            "error",
            html! { "Too many failed sign-ins from your address. Try again in " (secs) " seconds." },
        );
        let mut response = form_page(&state, StatusCode::TOO_MANY_REQUESTS, Some(notice));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return Ok(response);
    }
    if !state.tokens.accepts_token(&form.token) {
        state.limiter.failed(ip, Instant::now());
        tracing::warn!(%ip, "admin console: failed sign-in");
        let notice = views::notice("error", html! { "That admin token is not valid." });
        return Ok(form_page(&state, StatusCode::UNAUTHORIZED, Some(notice)));
    }
    state.limiter.succeeded(ip);
    let id = session::start(&state).await?;
    let mut response = Redirect::to("/admin/videos").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state.sessions.cookie(session::COOKIE, "/admin", Some(&id)),
    );
    headers.append(
        header::SET_COOKIE,
        state.sessions.cookie(SIGN_IN_COOKIE, SIGN_IN_PATH, None),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &form.csrf, &headers)?;
    session::end(&state, &session).await?;
    let mut response = Redirect::to("/admin/sign-in?signed_out=1").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        state.sessions.cookie(session::COOKIE, "/admin", None),
    );
    Ok(response)
}
