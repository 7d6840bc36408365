//! The console's security, over HTTP: sessions and their cookie, CSRF,
//! headers, escaping, slowed-down guessing.

use reqwest::{header, StatusCode};
use sqlx::PgPool;
use write_api::config::ConsoleArgs;

use crate::common::{set_cookie, set_cookie_line, sha256, video, App, TOKEN};

fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn admin_redirects_to_sign_in_and_sign_in_starts_a_hashed_session(pool: PgPool) {
    let app = App::start(pool).await;
    for path in [
        "/admin",
        "/admin/videos",
        "/admin/videos/new",
        "/admin/import",
    ] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[header::LOCATION], "/admin/sign-in");
        assert_security_headers(&response);
    }
    let form = app.get("/admin/sign-in", None).await;
    assert_security_headers(&form);
    assert!(form.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = form.text().await.unwrap();
    assert!(
        html.contains(r#"<label for="token">Admin token</label>"#),
        "{html}"
    );
    assert!(html.contains(">Sign in</button>"), "{html}");

    let response = app.sign_in_with(TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .contains(TOKEN));
    let line = set_cookie_line(&response, "admin_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
        assert!(
            line.split("; ").any(|f| f == flag),
            "{flag} missing: {line}"
        );
    }
    let session = set_cookie(&response, "admin_session").unwrap();
    assert!(session.len() >= 40);
    // Only the digest is stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select id_hash from admin_sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec![sha256(&session)]);

    let list = app.get("/admin/videos", Some(&session)).await;
    assert_eq!(list.status(), StatusCode::OK);
    assert_security_headers(&list);
    assert_eq!(list.headers()[header::CACHE_CONTROL], "no-store");
    let html = list.text().await.unwrap();
    for label in ["Search", "Status", "Tag", "Sort"] {
        assert!(html.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(html.contains(">New video</a>") && html.contains(">Sign out</button>"));
    let home = app.get("/admin", Some(&session)).await;
    assert_eq!(home.headers()[header::LOCATION], "/admin/videos");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_insecure_cookie_setting_drops_only_secure(pool: PgPool) {
    let app = App::start_with(
        pool,
        ConsoleArgs {
            admin_insecure_cookie: true,
            ..ConsoleArgs::default()
        },
    )
    .await;
    let response = app.sign_in_with(TOKEN).await;
    let line = set_cookie_line(&response, "admin_session").unwrap();
    assert!(!line.contains("Secure"), "{line}");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn wrong_tokens_are_refused_and_then_slowed_down(pool: PgPool) {
    let app = App::start(pool).await;
    for _ in 0..5 {
        let response = app.sign_in_with("guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&response, "admin_session").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("That admin token is not valid."));
        assert!(!html.contains("guess"), "the typed token is echoed");
    }
    // Even the right token must wait now.
    let response = app.sign_in_with(TOKEN).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert!(set_cookie(&response, "admin_session").is_none());
    assert_eq!(app.sessions().await, 0);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn forms_without_the_session_csrf_token_are_refused_and_change_nothing(pool: PgPool) {
    let app = App::start(pool).await;
    let session = app.sign_in().await;
    let cookie = format!("admin_session={session}");
    let csrf = app.csrf(&session).await;
    let kept = app.create(video("kept")).await;
    let id = kept["id"].as_str().unwrap();
    let version = kept["version"].to_string();
    let other = app.sign_in().await;
    let others_csrf = app.csrf(&other).await;
    assert_ne!(csrf, others_csrf);

    let new = [
        ("title", "forged"),
        ("video_url", "https://cdn.example.com/forged.mp4"),
        ("status", "published"),
    ];
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/videos".into(), new.to_vec()),
        (
            format!("/admin/videos/{id}"),
            vec![
                ("title", "forged"),
                ("video_url", "https://x.example/a"),
                ("status", "draft"),
                ("version", &version),
            ],
        ),
        (
            format!("/admin/videos/{id}/unpublish"),
            vec![("version", &version)],
        ),
        (
            format!("/admin/videos/{id}/delete"),
            vec![("version", &version)],
        ),
        ("/admin/sign-out".into(), vec![]),
    ];
    for (path, fields) in &posts {
        for token in [None, Some(""), Some("wrong"), Some(others_csrf.as_str())] {
            let mut form = fields.clone();
            if let Some(token) = token {
                form.push(("csrf", token));
            }
            let response = app.post(path, Some(&cookie), &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
            assert_security_headers(&response);
            assert!(response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        // The right token from another site.
        let mut form = fields.clone();
        form.push(("csrf", &csrf));
        let response = app
            .client
            .post(app.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "http://evil.example")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} cross-site"
        );
        let response = app
            .client
            .post(app.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::REFERER, "http://evil.example/page")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} cross-site referer"
        );
    }
    // Nothing changed: one video, as it was, and both sessions alive.
    assert_eq!(app.videos().await, 1);
    let now: (String, String, i64) =
        sqlx::query_as("select title, status, version from videos where id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        now,
        (
            "kept".into(),
            "published".into(),
            kept["version"].as_i64().unwrap()
        )
    );
    assert_eq!(app.sessions().await, 2);
    assert_eq!(
        app.get("/admin/videos", Some(&session)).await.status(),
        StatusCode::OK
    );

    // The sign-in form needs its own one-off token too.
    let response = app
        .post("/admin/sign-in", None, &[("token", TOKEN), ("csrf", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.sessions().await, 2);

    // With the token and from this origin, the same create works.
    let mut form = new.to_vec();
    form.push(("csrf", &csrf));
    let response = app.post("/admin/videos", Some(&cookie), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.videos().await, 2);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn sessions_expire_when_idle_and_after_their_maximum_age(pool: PgPool) {
    let app = App::start_with(
        pool,
        ConsoleArgs {
            admin_session_idle_secs: 600,
            admin_session_max_secs: 3600,
            ..ConsoleArgs::default()
        },
    )
    .await;
    let idle = app.sign_in().await;
    let old = app.sign_in().await;
    let fresh = app.sign_in().await;
    for (session, column, age) in [
        (&idle, "last_seen_at", "601 seconds"),
        (&old, "created_at", "3601 seconds"),
    ] {
        sqlx::query(&format!(
            "update admin_sessions set {column} = now() - interval '{age}' where id_hash = $1"
        ))
        .bind(sha256(session))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    // Busy but old: still expired. Idle for under the limit: alive.
    sqlx::query("update admin_sessions set last_seen_at = now() - interval '590 seconds' where id_hash = $1")
        .bind(sha256(&fresh))
        .execute(&app.pool)
        .await
        .unwrap();
    for session in [&idle, &old] {
        let response = app.get("/admin/videos", Some(session)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/admin/sign-in");
    }
    assert_eq!(
        app.get("/admin/videos", Some(&fresh)).await.status(),
        StatusCode::OK
    );
    // Each request renews the idle time.
    let seen: bool = sqlx::query_scalar(
        "select last_seen_at > now() - interval '5 seconds' from admin_sessions where id_hash = $1",
    )
    .bind(sha256(&fresh))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(seen);
    // A made-up session id opens nothing.
    let response = app.get("/admin/videos", Some("made-up")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn sign_out_ends_the_session_on_the_server(pool: PgPool) {
    let app = App::start(pool).await;
    let session = app.sign_in().await;
    let csrf = app.csrf(&session).await;
    let response = app
        .post(
            "/admin/sign-out",
            Some(&format!("admin_session={session}")),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/admin/sign-in?signed_out=1"
    );
    let line = set_cookie_line(&response, "admin_session").unwrap();
    assert!(line.contains("Max-Age=0"), "{line}");
    assert_eq!(app.sessions().await, 0);
    // A browser that kept the cookie gets nothing with it.
    let response = app.get("/admin/videos", Some(&session)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/admin/sign-in");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn html_is_escaped_everywhere(pool: PgPool) {
    let app = App::start(pool).await;
    let nasty = r#"<script>alert("x")</script>"#;
    let created = app
        .create(serde_json::json!({
            "title": nasty,
            "description": "</textarea><script>alert(2)</script>",
            "video_url": "https://cdn.example.com/v/a.mp4?a=1&b=\"2\"",
            "tags": ["<b>bold</b>"],
        }))
        .await;
    let session = app.sign_in().await;
    let id = created["id"].as_str().unwrap();
    for path in [
        "/admin/videos".to_owned(),
        "/admin/videos?q=%22%3E%3Cscript%3Ealert(3)%3C/script%3E".to_owned(),
        format!("/admin/videos/{id}"),
        format!("/admin/videos/{id}/delete"),
    ] {
        let response = app.get(&path, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script"), "{path}: {html}");
        assert!(!html.contains("<b>bold"), "{path}");
        assert!(html.contains("&lt;script&gt;"), "{path}");
    }
    // A bad filter is a page that says so, escaped too.
    let response = app
        .get("/admin/videos?sort=%3Cscript%3E", Some(&session))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script") && html.contains("sort"), "{html}");
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn import_is_all_or_nothing_with_errors_by_row(pool: PgPool) {
    let app = App::start(pool).await;
    let session = app.sign_in().await;
    let csrf = app.csrf(&session).await;
    let import = |file: &'static str, name: &'static str, token: String| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", token)
            .part("file", reqwest::multipart::Part::text(file).file_name(name));
        app.client
            .post(app.url("/admin/import"))
            .header(header::COOKIE, format!("admin_session={session}"))
            .header(header::ORIGIN, &app.base)
            .multipart(form)
            .send()
    };
    let bad_csv = "title,video_url,tags\nA,https://cdn.example.com/a.mp4,\"x, y\"\nB,not-a-url,\n";
    let response = import(bad_csv, "videos.csv", csrf.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("row 2: video_url: must be an absolute URL"),
        "{html}"
    );
    assert_eq!(app.videos().await, 0);

    let response = import(bad_csv, "videos.csv", "wrong".into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let json = r#"[{"title": "A", "video_url": "https://cdn.example.com/a.mp4", "tags": ["x"]},
                   {"title": "B", "video_url": "https://cdn.example.com/b.mp4", "status": "draft"}]"#;
    let response = import(json, "videos.json", csrf.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Imported 2 videos."));
    assert_eq!(app.videos().await, 2);
}
