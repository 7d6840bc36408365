//! The console end to end in a real headless Chromium (Debian's `chromium`
//! driven through `chromedriver` over WebDriver), the way an admin uses it:
//! every field is found by its visible label. Takes the README's screenshots
//! (docs/console-*.png; see `screenshot`).
//!
//! `CHROMIUM` and `CHROMEDRIVER` name the binaries (default: Debian's paths;
//! scripts/test finds or installs them). Missing binaries fail the test under
//! `CI=true`, and skip it loudly elsewhere.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use hyper_util_client::client::legacy::connect::HttpConnector;
use serde_json::json;
use sqlx::PgPool;
use test_support::wait_until;
use tokio::time::Instant;

use crate::common::{App, TOKEN};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(env: &str, default: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    path.is_file().then_some(path)
}

/// chromedriver and a Chromium session, or `None` (outside CI) without them.
async fn browser() -> Option<(Driver, Client)> {
    let chromium = binary("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are required in CI (scripts/test installs them)"
        );
        eprintln!("SKIPPED: no chromium/chromedriver (set CHROMIUM and CHROMEDRIVER, or run scripts/test)");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,900", "--lang=en-US"],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not answer: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The form control labelled `label` (exactly), as a screen reader finds it.
async fn field(client: &Client, label: &str) -> Element {
    let label = client
        .find(Locator::XPath(&format!(
            "//label[normalize-space()='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
    let id = label.attr("for").await.unwrap().expect("label has for=");
    client.find(Locator::Id(&id)).await.unwrap()
}

async fn fill(client: &Client, label: &str, value: &str) {
    let input = field(client, label).await;
    input.clear().await.unwrap();
    if !value.is_empty() {
        input.send_keys(value).await.unwrap();
    }
}

async fn value(client: &Client, label: &str) -> String {
    field(client, label)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn click(client: &Client, text: &str) {
    // A button if there is one (the nav's "Import" link and the import
    // form's "Import" button share a name), else a link.
    let button = format!("//button[normalize-space()='{text}']");
    let link = format!("//a[normalize-space()='{text}']");
    let old_page = client.find(Locator::Css("html")).await.unwrap();
    let target = match client.find(Locator::XPath(&button)).await {
        Ok(button) => button,
        Err(_) => client
            .find(Locator::XPath(&link))
            .await
            .unwrap_or_else(|e| panic!("nothing to click labelled {text:?}: {e}")),
    };
    target.click().await.unwrap();
    // Every click here loads a page: wait until the old one is gone.
    let loaded = wait_until(Duration::from_secs(15), || async {
        old_page.tag_name().await.is_err()
    })
    .await;
    assert!(loaded, "clicking {text:?} loaded no page");
    client
        .wait()
        .for_element(Locator::Css("main"))
        .await
        .unwrap();
}

async fn text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn path(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Every run writes its screenshots under target/screenshots/; the README's
/// copies in docs/ are replaced only with `UPDATE_SCREENSHOTS=1`, so a test
/// run leaves the work tree clean.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn stored(app: &App, id: &str) -> Option<(String, String)> {
    sqlx::query_as("select title, status from videos where id = $1::uuid")
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn an_admin_works_through_the_console_in_chromium(pool: PgPool) {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let app = App::start(pool).await;
    for (title, tags, status, views) in [
        (
            "Linen summer dress",
            vec!["summer", "dresses"],
            "published",
            5400,
        ),
        (
            "Wool winter coat",
            vec!["winter", "coats"],
            "published",
            12_800,
        ),
        ("Denim jacket lookbook", vec!["denim"], "published", 900),
        (
            "Autumn knitwear haul",
            vec!["autumn", "knitwear"],
            "draft",
            0,
        ),
    ] {
        app.create(json!({
            "title": title, "tags": tags, "status": status, "view_count": views,
            "video_url": format!("https://cdn.example.com/v/{}.mp4", title.len()),
        }))
        .await;
    }
    // `localhost` is a secure context, so the Secure cookie works over HTTP.
    let base = format!("http://localhost:{}", app.port);

    // Signed out, /admin leads to the sign-in form.
    client.goto(&format!("{base}/admin")).await.unwrap();
    assert_eq!(path(&client).await, "/admin/sign-in");
    fill(&client, "Admin token", TOKEN).await;
    click(&client, "Sign in").await;
    assert_eq!(path(&client).await, "/admin/videos");
    let page = text(&client).await;
    assert!(page.contains("4 videos"), "{page}");
    assert!(page.contains("Wool winter coat") && page.contains("Autumn knitwear haul"));
    screenshot(&client, "console-list.png").await;

    // Search and filters keep what was chosen.
    fill(&client, "Search", "summer").await;
    field(&client, "Status")
        .await
        .select_by_value("published")
        .await
        .unwrap();
    field(&client, "Sort")
        .await
        .select_by_value("popular")
        .await
        .unwrap();
    click(&client, "Filter").await;
    let page = text(&client).await;
    assert!(page.contains("Linen summer dress"), "{page}");
    assert!(
        !page.contains("Autumn knitwear haul"),
        "a draft listed as published"
    );
    assert_eq!(value(&client, "Search").await, "summer");
    assert_eq!(value(&client, "Status").await, "published");
    fill(&client, "Search", "").await;
    fill(&client, "Tag", "winter").await;
    field(&client, "Status")
        .await
        .select_by_value("all")
        .await
        .unwrap();
    click(&client, "Filter").await;
    let page = text(&client).await;
    assert!(
        page.contains("1 video") && page.contains("Wool winter coat"),
        "{page}"
    );
    assert!(!page.contains("Linen summer dress"));

    // Create: a validation error first, shown by its field, typed text kept.
    click(&client, "New video").await;
    fill(&client, "Title", "").await;
    fill(&client, "Video URL", "not a url").await;
    fill(&client, "Tags", "silk, scarves").await;
    click(&client, "Save").await;
    let title_error = client.find(Locator::Id("title-error")).await.unwrap();
    assert_eq!(title_error.text().await.unwrap(), "must not be empty");
    let url_error = client.find(Locator::Id("video_url-error")).await.unwrap();
    assert!(url_error
        .text()
        .await
        .unwrap()
        .starts_with("must be an absolute URL"));
    assert_eq!(value(&client, "Video URL").await, "not a url");
    assert_eq!(value(&client, "Tags").await, "silk, scarves");
    assert_eq!(app.videos().await, 4);
    fill(&client, "Title", "Silk scarf styling").await;
    fill(&client, "Video URL", "https://cdn.example.com/v/silk.mp4").await;
    fill(&client, "Duration (seconds)", "95").await;
    click(&client, "Save").await;
    assert!(text(&client).await.contains("The video was created."));
    let here = path(&client).await;
    let id = here
        .strip_prefix("/admin/videos/")
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_owned();
    assert_eq!(
        stored(&app, &id).await,
        Some(("Silk scarf styling".into(), "draft".into()))
    );

    // Edit while someone else changes the video: nothing is overwritten and
    // the admin sees what they changed.
    fill(&client, "Title", "Silk scarf: five ways").await;
    fill(&client, "Description", "Knots for every neckline.").await;
    app.patch(&id, json!({"title": "Silk scarf styling (edited)"}))
        .await;
    click(&client, "Save").await;
    let page = text(&client).await;
    assert!(page.contains("Someone else changed this video"), "{page}");
    assert!(
        page.contains("Title: “Silk scarf styling” → “Silk scarf styling (edited)”"),
        "{page}"
    );
    assert_eq!(value(&client, "Title").await, "Silk scarf: five ways");
    assert_eq!(
        stored(&app, &id).await,
        Some(("Silk scarf styling (edited)".into(), "draft".into()))
    );
    screenshot(&client, "console-edit.png").await;
    // Saving again is a deliberate overwrite.
    click(&client, "Save").await;
    assert!(text(&client).await.contains("Your changes were saved."));
    assert_eq!(
        stored(&app, &id).await,
        Some(("Silk scarf: five ways".into(), "draft".into()))
    );

    // Publish in one click.
    click(&client, "Publish").await;
    assert!(text(&client).await.contains("The video is published."));
    assert_eq!(
        stored(&app, &id).await,
        Some(("Silk scarf: five ways".into(), "published".into()))
    );

    // Delete asks first.
    click(&client, "Delete").await;
    assert!(path(&client).await.ends_with("/delete"));
    assert!(stored(&app, &id).await.is_some());
    click(&client, "Delete").await;
    assert!(text(&client).await.contains("The video was deleted."));
    assert!(stored(&app, &id).await.is_none());

    // Import: a file with a bad row imports nothing and names the row; a good one all.
    let dir = tempfile_dir();
    let bad = dir.join("videos.csv");
    std::fs::write(
        &bad,
        "title,video_url,tags,status\n\
         Beach kaftan,https://cdn.example.com/v/k.mp4,\"summer, beach\",published\n\
         Broken,ftp://cdn.example.com/v/b.mp4,,draft\n",
    )
    .unwrap();
    click(&client, "Import").await;
    field(&client, "File")
        .await
        .send_keys(bad.to_str().unwrap())
        .await
        .unwrap();
    click(&client, "Import").await;
    let page = text(&client).await;
    assert!(page.contains("Nothing was imported."), "{page}");
    assert!(
        page.contains("row 2: video_url: must be an http or https URL"),
        "{page}"
    );
    assert_eq!(app.videos().await, 4);
    let good = dir.join("videos.json");
    std::fs::write(
        &good,
        r#"[{"title": "Beach kaftan", "video_url": "https://cdn.example.com/v/k.mp4", "tags": ["summer"]},
            {"title": "Rain boots", "video_url": "https://cdn.example.com/v/r.mp4", "status": "draft"}]"#,
    )
    .unwrap();
    field(&client, "File")
        .await
        .send_keys(good.to_str().unwrap())
        .await
        .unwrap();
    click(&client, "Import").await;
    assert!(text(&client).await.contains("Imported 2 videos."));
    assert_eq!(app.videos().await, 6);

    // On a phone-sized window the list fits the width (the table scrolls in its box).
    client.set_window_size(390, 844).await.unwrap();
    client.goto(&format!("{base}/admin/videos")).await.unwrap();
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true));
    screenshot(&client, "console-phone.png").await;
    client.set_window_size(1200, 900).await.unwrap();

    // Sign out: back to sign-in, and the console is closed.
    click(&client, "Sign out").await;
    assert_eq!(path(&client).await, "/admin/sign-in?signed_out=1");
    assert!(text(&client).await.contains("You have signed out."));
    assert_eq!(app.sessions().await, 0);
    client.goto(&format!("{base}/admin/videos")).await.unwrap();
    assert_eq!(path(&client).await, "/admin/sign-in");
    client.close().await.unwrap();
}

/// A fresh directory under target/ for the files the browser uploads.
fn tempfile_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
