//! The console tests' app: the write API started in-process
//! ([`test_support::write_api`]) with a client that follows no redirects and
//! keeps no cookies (tests send the cookies they mean to).

use std::{ops::Deref, time::Duration};

use reqwest::{header, redirect::Policy, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use test_support::write_api::{serve_args, WriteApi};
use write_api::config::{ConsoleArgs, ServeArgs};

pub const TOKEN: &str = "console-test-token";

pub fn args(console: ConsoleArgs) -> ServeArgs {
    serve_args(&[TOKEN], console)
}

pub struct App(WriteApi);

impl Deref for App {
    type Target = WriteApi;

    fn deref(&self) -> &WriteApi {
        &self.0
    }
}

impl App {
    pub async fn start(pool: PgPool) -> Self {
        Self::start_with(pool, ConsoleArgs::default()).await
    }

    pub async fn start_with(pool: PgPool, console: ConsoleArgs) -> Self {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self(WriteApi::start(&args(console), pool, client).await)
    }

    pub async fn get(&self, path: &str, session: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(session) = session {
            request = request.header(header::COOKIE, format!("admin_session={session}"));
        }
        request.send().await.unwrap()
    }

    /// A form post as a browser on this origin sends it.
    pub async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(header::ORIGIN, &self.base)
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// Signs in like a browser: the form (and its one-off cookie), then the
    /// post. Returns the session cookie's value.
    pub async fn sign_in(&self) -> String {
        let response = self.sign_in_with(TOKEN).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/admin/videos");
        set_cookie(&response, "admin_session").unwrap()
    }

    pub async fn sign_in_with(&self, token: &str) -> Response {
        let form = self.get("/admin/sign-in", None).await;
        assert_eq!(form.status(), StatusCode::OK);
        let pre = set_cookie(&form, "admin_sign_in").unwrap();
        let csrf = csrf_of(&form.text().await.unwrap());
        self.post(
            "/admin/sign-in",
            Some(&format!("admin_sign_in={pre}")),
            &[("csrf", &csrf), ("token", token)],
        )
        .await
    }

    /// The CSRF token in the forms of a page.
    pub async fn csrf(&self, session: &str) -> String {
        let page = self.get("/admin/videos", Some(session)).await;
        assert_eq!(page.status(), StatusCode::OK);
        csrf_of(&page.text().await.unwrap())
    }

    /// Creates a video through the JSON API.
    pub async fn create(&self, body: Value) -> Value {
        let response = self
            .client
            .post(self.url("/v1/videos"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn patch(&self, id: &str, body: Value) -> Value {
        let response = self
            .client
            .patch(self.url(&format!("/v1/videos/{id}")))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn videos(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("select count(*) from videos")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn sessions(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("select count(*) from admin_sessions")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

pub fn video(title: &str) -> Value {
    json!({"title": title, "video_url": format!("https://cdn.example.com/v/{}.mp4", title.len())})
}

/// The value of cookie `name` set by a response.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    set_cookie_line(response, name).and_then(|line| {
        line.split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, v)| v.to_owned())
    })
}

/// The whole `Set-Cookie` line of cookie `name`.
pub fn set_cookie_line(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

pub fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}
