//! Admin search (`q`): titles containing the text, case- and
//! accent-insensitive, wildcards literal, combined with every other listing
//! parameter and both pagination modes.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    common::{problem, App},
    listing::{expected, ids, page, Filter},
};

/// Titles that tell the matching rules apart, with statuses, dates, views and
/// tags that make the sorts and filters matter.
async fn catalogue(app: &App) -> Vec<Value> {
    let specs = [
        (
            "Summer linen shirt",
            "published",
            Some("2026-01-01T00:00:00Z"),
            5,
            vec!["summer"],
        ),
        ("SUMMER dress", "draft", None, 0, vec!["summer"]),
        (
            "Late summer layers",
            "published",
            Some("2026-01-01T00:00:00Z"),
            5,
            vec!["autumn"],
        ),
        (
            "Été à Paris",
            "published",
            Some("2026-02-01T00:00:00Z"),
            9,
            vec!["summer"],
        ),
        (
            "Winter coat",
            "published",
            Some("2026-03-01T00:00:00Z"),
            1,
            vec!["winter"],
        ),
        (
            "50% off summer",
            "draft",
            Some("2025-12-01T00:00:00Z"),
            3,
            vec!["summer"],
        ),
        (
            "50 off summers",
            "published",
            Some("2025-11-01T00:00:00Z"),
            7,
            vec![],
        ),
        (
            "a_b summer",
            "published",
            Some("2025-10-01T00:00:00Z"),
            7,
            vec!["summer"],
        ),
        ("axb", "published", Some("2025-10-01T00:00:00Z"), 2, vec![]),
        (r"back\slash", "draft", None, 0, vec![]),
    ];
    let mut created = Vec::new();
    for (title, status, published_at, views, tags) in specs {
        let mut body = json!({"title": title, "video_url": "https://e.com/v", "status": status,
                              "view_count": views, "tags": tags});
        if let Some(at) = published_at {
            body["published_at"] = json!(at);
        }
        created.push(app.create(body).await);
    }
    created
}

fn titled(all: &[Value], want: &[&str]) -> Vec<String> {
    let mut titles: Vec<String> = all
        .iter()
        .filter(|v| want.contains(&v["title"].as_str().unwrap()))
        .map(|v| v["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

async fn titles_for(app: &App, q: &str) -> Vec<String> {
    let body = page(app, &format!("page_size=100&q={}", urlencode(q))).await;
    let mut titles: Vec<String> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(body["total_videos"], titles.len(), "q={q}");
    titles
}

/// Percent-encodes every byte: any text survives the query string.
fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn search_is_case_and_accent_insensitive_with_literal_wildcards(pool: PgPool) {
    let app = App::start(pool).await;
    let all = catalogue(&app).await;
    let summer = [
        "Summer linen shirt",
        "SUMMER dress",
        "Late summer layers",
        "50% off summer",
        "50 off summers",
        "a_b summer",
    ];
    for q in ["summer", "SUMMER", "sUmMeR", "summe"] {
        assert_eq!(titles_for(&app, q).await, titled(&all, &summer), "q={q}");
    }
    for q in ["ete", "ÉTÉ", "été à"] {
        assert_eq!(
            titles_for(&app, q).await,
            titled(&all, &["Été à Paris"]),
            "q={q}"
        );
    }
    // `%`, `_` and `\` match only themselves.
    assert_eq!(
        titles_for(&app, "%").await,
        titled(&all, &["50% off summer"])
    );
    assert_eq!(
        titles_for(&app, "50%").await,
        titled(&all, &["50% off summer"])
    );
    assert_eq!(titles_for(&app, "_").await, titled(&all, &["a_b summer"]));
    assert_eq!(titles_for(&app, "a_b").await, titled(&all, &["a_b summer"]));
    assert_eq!(titles_for(&app, r"\").await, titled(&all, &[r"back\slash"]));
    assert_eq!(titles_for(&app, "%%").await, Vec::<String>::new());
    assert_eq!(
        titles_for(&app, "nothing like it").await,
        Vec::<String>::new()
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn search_combines_with_filters_sorts_and_both_pagination_modes(pool: PgPool) {
    let app = App::start(pool).await;
    let all = catalogue(&app).await;
    let has = |v: &Value, q: &str| v["title"].as_str().unwrap().to_lowercase().contains(q);
    let tagged = |v: &Value, t: &str| v["tags"].as_array().unwrap().contains(&json!(t));
    let cases: Vec<(&str, Filter)> = vec![
        ("&q=summer", Box::new(move |v| has(v, "summer"))),
        (
            "&q=summer&status=draft",
            Box::new(move |v| has(v, "summer") && v["status"] == "draft"),
        ),
        (
            "&q=Summer&status=published",
            Box::new(move |v| has(v, "summer") && v["status"] == "published"),
        ),
        (
            "&q=summer&tag=summer",
            Box::new(move |v| has(v, "summer") && tagged(v, "summer")),
        ),
        (
            "&q=off&tag=summer&status=draft",
            Box::new(move |v| has(v, "off") && tagged(v, "summer") && v["status"] == "draft"),
        ),
        ("&q=zzz", Box::new(|_| false)),
    ];
    // Pages of 100 fetch the matches by title and sort them; pages of 2 and
    // cursor pages walk the listing's order (see `videos::search::page`):
    // both ways must give the same rows.
    for (filter, keep) in &cases {
        for sort in ["newest", "popular"] {
            let want = expected(&all, sort, keep);
            let first = page(&app, &format!("sort={sort}&page_size=100{filter}")).await;
            assert_eq!(ids(&first), want, "sort={sort}{filter}");
            assert_eq!(first["total_videos"], want.len(), "sort={sort}{filter}");

            // Cursors carry the search: `next_cursor` alone continues it.
            let mut walked = Vec::new();
            let mut query = format!("sort={sort}&page_size=2{filter}");
            loop {
                let page = page(&app, &query).await;
                assert_eq!(page["total_videos"], want.len(), "{query}");
                walked.extend(ids(&page));
                match page["next_cursor"].as_str() {
                    Some(cursor) => query = format!("cursor={cursor}&page_size=2"),
                    None => break,
                }
            }
            assert_eq!(walked, want, "cursor walk sort={sort}{filter}");

            // Page links keep `q`.
            let mut paged = Vec::new();
            let mut link = Some(format!("/v1/videos?page=1&page_size=2&sort={sort}{filter}"));
            while let Some(next) = link {
                let response = app.get(&next).await;
                assert_eq!(response.status(), StatusCode::OK, "{next}");
                let page: Value = response.json().await.unwrap();
                assert_eq!(page["total_pages"], want.len().div_ceil(2), "{next}");
                paged.extend(ids(&page));
                link = page["next"].as_str().map(str::to_owned);
            }
            assert_eq!(paged, want, "page walk sort={sort}{filter}");
        }
    }
    let first = page(&app, "page_size=1&q=50%25").await;
    assert_eq!(first["total_videos"], 1);
    let two = page(&app, "page_size=1&q=summer").await;
    assert_eq!(
        two["next"],
        "/v1/videos?page=2&page_size=1&sort=newest&q=summer"
    );
    // A cursor with a different `q` beside it is refused; the same one is fine.
    let cursor = two["next_cursor"].as_str().unwrap();
    problem(
        app.get(&format!("/v1/videos?cursor={cursor}&q=winter"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    page(&app, &format!("cursor={cursor}&q=summer")).await;
    problem(
        app.get("/v1/videos?page=99&q=summer").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn empty_or_over_long_search_is_400(pool: PgPool) {
    let app = App::start(pool).await;
    catalogue(&app).await;
    let at_limit = "é".repeat(200);
    page(&app, &format!("q={}", urlencode(&at_limit))).await;
    for bad in [
        "q=".to_owned(),
        format!("q={}", urlencode(&"é".repeat(201))),
        format!("q={}", "a".repeat(201)),
        "q=a&q=b".to_owned(),
        "q=a%00b".to_owned(),
    ] {
        let (body, _) = problem(
            app.get(&format!("/v1/videos?{bad}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains("`q`"),
            "{bad}: {body}"
        );
    }
}

/// Every video as the listing (without `q`) shows it now.
async fn everything(app: &App) -> Vec<Value> {
    page(app, "page_size=100").await["results"]
        .as_array()
        .unwrap()
        .clone()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn search_follows_title_status_tag_view_edits_and_deletes(pool: PgPool) {
    let app = App::start(pool.clone()).await;
    let all = catalogue(&app).await;
    let by_title = |title: &str| {
        let video = all.iter().find(|v| v["title"] == title).unwrap();
        format!("/v1/videos/{}", video["id"].as_str().unwrap())
    };
    let edits = [
        (by_title("Winter coat"), json!({"title": "Summer coat"})),
        (
            by_title("Summer linen shirt"),
            json!({"title": "Linen shirt"}),
        ),
        (
            by_title("Late summer layers"),
            json!({"tags": ["summer", "layers"]}),
        ),
        (
            by_title("a_b summer"),
            json!({"status": "draft", "view_count": 50}),
        ),
        (
            by_title("Été à Paris"),
            json!({"title": "Été à Nice, summer"}),
        ),
    ];
    for (path, body) in &edits {
        let response = app.patch(path, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{path} {body}");
    }
    let response = app.delete(&by_title("50 off summers")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let now = everything(&app).await;
    let has = |v: &Value, q: &str| {
        let title = v["title"].as_str().unwrap().to_lowercase();
        title.contains(q) || (q == "ete" && title.contains("été"))
    };
    let tagged = |v: &Value, t: &str| v["tags"].as_array().unwrap().contains(&json!(t));
    for q in ["summer", "linen", "winter", "ete"] {
        for (filter, keep) in [
            ("", Box::new(|_: &Value| true) as Filter),
            (
                "&status=draft",
                Box::new(|v: &Value| v["status"] == "draft"),
            ),
            (
                "&status=published",
                Box::new(|v: &Value| v["status"] == "published"),
            ),
            (
                "&tag=summer",
                Box::new(move |v: &Value| tagged(v, "summer")),
            ),
            (
                "&tag=layers",
                Box::new(move |v: &Value| tagged(v, "layers")),
            ),
        ] {
            for sort in ["newest", "popular"] {
                let want = expected(&now, sort, |v| has(v, q) && keep(v));
                for size in [1, 100] {
                    let query = format!("q={q}&sort={sort}&page_size={size}{filter}");
                    let body = page(&app, &query).await;
                    assert_eq!(body["total_videos"], want.len(), "{query}");
                    let shown = want.len().min(size);
                    assert_eq!(ids(&body), want[..shown].to_vec(), "{query}");
                }
            }
        }
    }

    // The per-title counts agree with a recount of the videos.
    let mismatches: i64 = sqlx::query_scalar(
        "with expected as (
             select s.id as title_id, t.tag,
                    count(*) filter (where v.status = 'published') as published,
                    count(*) filter (where v.status = 'draft') as draft
             from videos v
             join search_titles s on s.folded = videos_search_text(v.title)
             cross join lateral (select distinct u from unnest(array[''] || v.tags) u) as t(tag)
             group by 1, 2
         )
         select count(*) from expected e full join title_counts c using (title_id, tag)
         where coalesce(e.published, 0) <> coalesce(c.published, 0)
            or coalesce(e.draft, 0) <> coalesce(c.draft, 0)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mismatches, 0);
}
