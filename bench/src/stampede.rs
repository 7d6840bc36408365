//! The stampede: many concurrent requests for one hot page right after its
//! purge. The connections are opened first and the requests released together
//! by a barrier, so they reach read-api as one burst rather than spread over
//! connection setup. `bench/run` counts the feed queries Postgres ran around it.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use redis::AsyncCommands;
use serde_json::json;
use shared::cache::{KeySpace, Scope};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Barrier,
    task::JoinSet,
};

use crate::results::{emit, ms, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// read-api address (host:port) of the cached read-api.
    #[arg(long)]
    read_addr: String,
    /// The hot page.
    #[arg(long, default_value = "/v1/videos?page=1&page_size=20")]
    path: String,
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// write-api base URL, for the write that purges the page.
    #[arg(long)]
    write_base: String,
    #[arg(long, env = "BENCH_ADMIN_TOKEN")]
    token: String,
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    prefix: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let read_base = format!("http://{}", args.read_addr);
    let mut hit = false;
    for _ in 0..5 {
        let response = http.get(format!("{read_base}{}", args.path)).send().await?;
        hit = response
            .headers()
            .get("x-cache")
            .is_some_and(|v| v == "HIT");
        if hit {
            break;
        }
    }
    if !hit {
        bail!("{} never became a cache hit", args.path);
    }

    let mut streams = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        streams.push(TcpStream::connect(&args.read_addr).await?);
    }

    // Purge the page: a change to a video on it purges the whole feed.
    let keys = KeySpace::new(&args.prefix).map_err(anyhow::Error::msg)?;
    let generation_key = keys.generation(&Scope::Feed);
    let mut redis = redis::Client::open(args.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let generation: Option<String> = redis.get(&generation_key).await?;
    let page: serde_json::Value = http
        .get(format!("{read_base}{}", args.path))
        .send()
        .await?
        .json()
        .await?;
    let id = page["results"][0]["id"].as_str().context("an empty page")?;
    let response = http
        .patch(format!("{}/v1/videos/{id}", args.write_base))
        .bearer_auth(&args.token)
        .json(&json!({ "title": format!("Stampede {}", uuid::Uuid::now_v7()) }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("PATCH {id}: {}", response.status());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now: Option<String> = redis.get(&generation_key).await?;
        if now != generation {
            break;
        }
        if Instant::now() > deadline {
            bail!("the feed was not purged within 5 s");
        }
    }

    let request = Arc::new(format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        args.path, args.read_addr
    ));
    let barrier = Arc::new(Barrier::new(args.concurrency));
    let mut tasks = JoinSet::new();
    for mut stream in streams {
        let (request, barrier) = (Arc::clone(&request), Arc::clone(&barrier));
        tasks.spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            anyhow::Ok((started.elapsed(), parse(&response)))
        });
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (elapsed, outcome) = joined??;
        latencies.push(elapsed);
        *outcomes.entry(outcome).or_default() += 1;
    }
    for (outcome, count) in &outcomes {
        eprintln!("stampede: {count} × {outcome}");
    }
    let count = |outcome: &str| outcomes.get(outcome).copied().unwrap_or(0) as f64;
    emit(
        "stampede responses X-Cache MISS",
        count("200 MISS"),
        "responses",
        "",
    );
    emit(
        "stampede responses X-Cache HIT",
        count("200 HIT"),
        "responses",
        "",
    );
    let failed = latencies.len() as f64 - count("200 MISS") - count("200 HIT");
    emit(
        "stampede responses not 200 MISS/HIT",
        failed,
        "responses",
        "<=0",
    );
    let s = Summary::of(latencies).context("no responses")?;
    emit("stampede latency p50", ms(s.p50), "ms", "");
    emit("stampede latency p99", ms(s.p99), "ms", "");
    Ok(())
}

/// `"<status> <X-Cache>"` of a raw HTTP/1.1 response.
fn parse(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("no-response");
    let cache = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("x-cache"))
        .map_or("-", |(_, value)| value.trim());
    format!("{status} {cache}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse;

    #[test]
    fn parses_status_and_cache_header() {
        let response =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nX-Cache: MISS\r\n\r\n{\"a\":1}";
        assert_eq!(parse(response), "200 MISS");
        assert_eq!(parse(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"), "503 -");
        assert_eq!(parse(b""), "no-response -");
    }
}
