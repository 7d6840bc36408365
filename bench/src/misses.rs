//! The uncached path: sequential requests (one connection, keep-alive) against
//! a read-api, each case's median and p99. `bench/run` points it at a read-api
//! started without Redis, so every request is `X-Cache: BYPASS` and runs the
//! page's queries; the probe checks that header on every response.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::Client;

use crate::results::{emit, ms, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the read-api, e.g. http://127.0.0.1:18081.
    #[arg(long)]
    base: String,
    /// `label=target`; target is a path (`/v1/videos?page=50`), `detail` (rotating
    /// video ids) or `cursor:<sort>:<depth>` (the cursor after that many videos).
    #[arg(long = "case", required = true)]
    cases: Vec<String>,
    /// Measured requests per case (after a short warm-up).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// A case stops early after this long (with at least 10 samples).
    #[arg(long, default_value_t = 8.0)]
    max_seconds: f64,
    /// The `X-Cache` value every response must carry.
    #[arg(long, default_value = "BYPASS")]
    expect_cache: String,
    /// `<=N` target for the p50 of a case, as `label=N` (ms).
    #[arg(long = "p50-target")]
    p50_targets: Vec<String>,
    /// Bearer token sent with every request (the admin listing on write-api).
    #[arg(long)]
    bearer: Option<String>,
    /// Prefix of the result labels.
    #[arg(long, default_value = "miss")]
    label: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Identity responses: the miss path's cost without a compression step that
    // the client chose.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.bearer {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
    }
    let client = Client::builder()
        .no_gzip()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()?;
    for case in &args.cases {
        let (label, target) = case.split_once('=').context("a case is label=target")?;
        let paths = resolve(&client, &args.base, target).await?;
        for path in paths.iter().cycle().take(3) {
            get(&client, &args.base, path, &args.expect_cache).await?;
        }
        let started = Instant::now();
        let mut samples = Vec::with_capacity(args.samples);
        for path in paths.iter().cycle().take(args.samples) {
            let t = Instant::now();
            get(&client, &args.base, path, &args.expect_cache).await?;
            samples.push(t.elapsed());
            if samples.len() >= 10 && started.elapsed().as_secs_f64() > args.max_seconds {
                break;
            }
        }
        let s = Summary::of(samples).context("no samples")?;
        let p50_target = args
            .p50_targets
            .iter()
            .find_map(|t| t.strip_prefix(label)?.strip_prefix('='))
            .map(|n| format!("<={n}"))
            .unwrap_or_default();
        let prefix = &args.label;
        emit(
            &format!("{prefix} {label} p50"),
            ms(s.p50),
            "ms",
            &p50_target,
        );
        emit(&format!("{prefix} {label} p99"), ms(s.p99), "ms", "");
        eprintln!("{prefix} {label}: {} samples", s.count);
    }
    Ok(())
}

async fn get(
    client: &Client,
    base: &str,
    path: &str,
    expect_cache: &str,
) -> anyhow::Result<serde_json::Value> {
    let response = client.get(format!("{base}{path}")).send().await?;
    let status = response.status();
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    if !expect_cache.is_empty() && cache != expect_cache {
        bail!("GET {path}: X-Cache {cache:?}, expected {expect_cache}");
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The request paths a case cycles through.
async fn resolve(client: &Client, base: &str, target: &str) -> anyhow::Result<Vec<String>> {
    if target.starts_with('/') {
        return Ok(vec![target.to_owned()]);
    }
    if target == "detail" {
        // Ids from the newest and from deep in the feed, so the detail reads
        // are not all of the most recently written rows.
        let mut paths = Vec::new();
        for page in [
            "/v1/videos?page_size=100",
            "/v1/videos?page_size=100&sort=popular",
        ] {
            let body = get(client, base, page, "").await?;
            let results = body["results"].as_array().context("results")?;
            paths.extend(
                results
                    .iter()
                    .filter_map(|v| v["id"].as_str())
                    .map(|id| format!("/v1/videos/{id}")),
            );
        }
        if paths.is_empty() {
            bail!("no videos to read the detail of");
        }
        return Ok(paths);
    }
    if let Some(rest) = target.strip_prefix("cursor:") {
        let (sort, depth) = rest.split_once(':').context("cursor:<sort>:<depth>")?;
        let depth: u64 = depth.parse()?;
        // One page-mode request that ends exactly at `depth` gives its cursor.
        let (page, size) = if depth.is_multiple_of(100) {
            (depth / 100, 100)
        } else {
            (depth, 1)
        };
        let body = get(
            client,
            base,
            &format!("/v1/videos?page={page}&page_size={size}&sort={sort}"),
            "",
        )
        .await?;
        let cursor = body["next_cursor"]
            .as_str()
            .with_context(|| format!("no next_cursor after {depth} videos"))?;
        return Ok(vec![format!("/v1/videos?cursor={cursor}&page_size=20")]);
    }
    bail!("unknown case target {target}")
}
