//! Write throughput: creates from concurrent clients for a fixed time, then
//! one batch create.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::results::{emit, ms, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// write-api base URL.
    #[arg(long)]
    write_base: String,
    #[arg(long, env = "BENCH_ADMIN_TOKEN")]
    token: String,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Videos in the one batch request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

fn video(client: usize, n: usize) -> Value {
    json!({
        "title": format!("Bench look {client}-{n}"),
        "description": "Three outfits for a warm evening, from linen shirts to a light trench.",
        "video_url": format!("https://cdn.example.com/v/bench-{client}-{n}.mp4"),
        "thumbnail_url": format!("https://cdn.example.com/t/bench-{client}-{n}.jpg"),
        "duration_seconds": 95,
        "tags": ["summer", "linen", "bench"],
        "status": "published"
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = Arc::new(format!("{}/v1/videos", args.write_base));
    let token = Arc::new(args.token.clone());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in 0..args.clients {
        let (http, url, token) = (http.clone(), Arc::clone(&url), Arc::clone(&token));
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut n = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = http
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .json(&video(client, n))
                    .send()
                    .await;
                n += 1;
                match response {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        latencies.push(t.elapsed())
                    }
                    Ok(r) => {
                        failures += 1;
                        eprintln!("writes: POST: {}", r.status());
                    }
                    Err(e) => {
                        failures += 1;
                        eprintln!("writes: POST: {e}");
                    }
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, f) = joined?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    let created = latencies.len();
    emit(
        &format!("writes creates/s, {} clients", args.clients),
        created as f64 / elapsed.as_secs_f64(),
        "creates/s",
        "",
    );
    if let Some(s) = Summary::of(latencies) {
        emit("writes create latency p50", ms(s.p50), "ms", "");
        emit("writes create latency p99", ms(s.p99), "ms", "");
    }
    emit("writes failed creates", failures as f64, "requests", "<=0");

    let body =
        json!({ "videos": (0..args.batch).map(|n| video(usize::MAX, n)).collect::<Vec<_>>() });
    let t = Instant::now();
    let response = http
        .post(format!("{}/v1/videos/batch", args.write_base))
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    response.bytes().await?;
    let elapsed = t.elapsed();
    if status != reqwest::StatusCode::CREATED {
        bail!("batch of {}: {status}", args.batch);
    }
    emit(
        &format!("writes one batch of {}", args.batch),
        ms(elapsed),
        "ms",
        "",
    );
    Ok(())
}
