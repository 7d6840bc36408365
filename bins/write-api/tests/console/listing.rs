//! The console's list: the total, filters, and cursor pages both ways.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::common::{App, TOKEN};

/// The links of a page's `rel` (`next`, `prev`), unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let marker = format!(r#"rel="{rel}" href=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

fn rows(html: &str) -> usize {
    html.matches(r#"<td><a href="/admin/videos/"#).count()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn pages_go_forward_and_back_by_cursor(pool: PgPool) {
    let app = App::start(pool).await;
    let videos: Vec<_> = (0..30)
        .map(|i| {
            json!({"title": format!("Video {i:02}"), "video_url": "https://cdn.example.com/v.mp4",
                   "tags": if i % 2 == 0 { vec!["even"] } else { vec!["odd"] },
                   "status": if i < 3 { "draft" } else { "published" }})
        })
        .collect();
    let response = app
        .client
        .post(app.url("/v1/videos/batch"))
        .bearer_auth(TOKEN)
        .json(&json!({ "videos": videos }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let session = app.sign_in().await;
    let page = |path: String| {
        let app = &app;
        let session = session.clone();
        async move {
            let response = app.get(&path, Some(&session)).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.unwrap()
        }
    };

    let first = page("/admin/videos".into()).await;
    assert!(first.contains("30 videos"));
    assert_eq!(rows(&first), 25);
    assert!(link(&first, "prev").is_none());
    let second = page(link(&first, "next").unwrap()).await;
    assert_eq!(rows(&second), 5);
    assert!(link(&second, "next").is_none());
    let back = page(link(&second, "prev").unwrap()).await;
    assert_eq!(rows(&back), 25);
    assert!(link(&back, "prev").is_none());
    assert!(link(&back, "next").is_some());

    // Filters narrow the total and the rows, and survive paging.
    let drafts = page("/admin/videos?status=draft&q=&tag=".into()).await;
    assert!(drafts.contains("3 videos"), "{drafts}");
    assert_eq!(rows(&drafts), 3);
    let even = page("/admin/videos?tag=even&sort=popular".into()).await;
    assert!(even.contains("15 videos"));
    assert_eq!(rows(&even), 15);
    assert!(
        even.contains(r#"<option value="popular" selected>"#),
        "{even}"
    );
}
