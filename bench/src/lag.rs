//! Invalidation lag under a steady write rate: PATCHes through write-api at a
//! fixed rate, each changing a published video's `view_count` (which purges
//! its detail, the feed and its tags' feeds).
//!
//! Measured two ways: the invalidator's own `invalidation_lag_seconds`
//! histogram (commit to purge; the difference of two scrapes, so only this
//! test's events count), and from outside: the time from sending the write
//! (and from its acknowledgement) until the video's generation key in Redis
//! changes. The commit lies between send and acknowledgement, so the two
//! outside figures bracket the true commit-to-purge lag.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use redis::AsyncCommands;
use serde_json::json;
use shared::cache::{KeySpace, Scope};
use tokio::task::JoinSet;

use crate::results::{emit, ms, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// write-api base URL.
    #[arg(long)]
    write_base: String,
    #[arg(long, env = "BENCH_ADMIN_TOKEN")]
    token: String,
    /// A read-api base URL to list published videos from.
    #[arg(long)]
    read_base: String,
    #[arg(long)]
    redis_url: String,
    #[arg(long)]
    prefix: String,
    /// The invalidator's metrics URL.
    #[arg(long)]
    metrics: String,
    #[arg(long, default_value_t = 50)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u32,
}

/// How long a purge may take before the write counts as never purged.
const PURGE_DEADLINE: Duration = Duration::from_secs(5);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let ids = published_ids(&http, &args.read_base, 10).await?;
    let redis = redis::Client::open(args.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let before = scrape(&http, &args.metrics).await?;

    let shared = Arc::new((
        http.clone(),
        args.write_base.clone(),
        args.token.clone(),
        args.prefix.clone(),
    ));
    let total = (args.rate * args.seconds) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..total {
        ticker.tick().await;
        let id = ids[i % ids.len()].clone();
        let shared = Arc::clone(&shared);
        let redis = redis.clone();
        tasks.spawn(async move {
            let (http, base, token, prefix) = &*shared;
            one_write(http, base, token, redis, prefix, &id, 1_000_000 + i as i64).await
        });
    }
    let mut sent_to_purge = Vec::new();
    let mut ack_to_purge = Vec::new();
    let mut failures = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok((sent, ack)) => {
                sent_to_purge.push(sent);
                ack_to_purge.push(ack);
            }
            Err(e) => {
                failures += 1;
                eprintln!("lag: {e:#}");
            }
        }
    }
    let elapsed = started.elapsed();
    // Let the invalidator record the last purges before the second scrape.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = scrape(&http, &args.metrics).await?;

    emit(
        "lag writes/s achieved",
        total as f64 / elapsed.as_secs_f64(),
        "writes/s",
        "",
    );
    emit(
        "lag writes not purged within 5 s",
        f64::from(failures),
        "writes",
        "<=0",
    );
    match histogram_quantiles(&before, &after) {
        Some((count, p50, p99)) => {
            emit(
                "lag commit→purge p50 (invalidator histogram)",
                p50 * 1000.0,
                "ms",
                "",
            );
            emit(
                "lag commit→purge p99 (invalidator histogram)",
                p99 * 1000.0,
                "ms",
                "<=10",
            );
            eprintln!("lag: histogram counted {count} events");
        }
        None => eprintln!(
            "lag: no invalidation_lag_seconds histogram buckets in {}",
            args.metrics
        ),
    }
    if let (Some(sent), Some(ack)) = (Summary::of(sent_to_purge), Summary::of(ack_to_purge)) {
        emit("lag write sent→purge p50 (outside)", ms(sent.p50), "ms", "");
        emit("lag write sent→purge p99 (outside)", ms(sent.p99), "ms", "");
        emit("lag write acked→purge p50 (outside)", ms(ack.p50), "ms", "");
        emit("lag write acked→purge p99 (outside)", ms(ack.p99), "ms", "");
    }
    Ok(())
}

/// Up to `pages` × 100 published video ids, newest first.
pub async fn published_ids(
    http: &reqwest::Client,
    read_base: &str,
    pages: u32,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for page in 1..=pages {
        let response = http
            .get(format!("{read_base}/v1/videos?page={page}&page_size=100"))
            .send()
            .await?;
        if !response.status().is_success() {
            break;
        }
        let body: serde_json::Value = response.json().await?;
        let results = body["results"].as_array().context("results")?;
        ids.extend(
            results
                .iter()
                .filter_map(|v| v["id"].as_str())
                .map(str::to_owned),
        );
    }
    if ids.is_empty() {
        bail!("no published videos");
    }
    Ok(ids)
}

/// The generation key of a video's detail scope.
fn video_generation_key(prefix: &str, id: &str) -> anyhow::Result<String> {
    let keys = KeySpace::new(prefix).map_err(anyhow::Error::msg)?;
    Ok(keys.generation(&Scope::Video(id.parse()?)))
}

async fn one_write(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    mut redis: redis::aio::MultiplexedConnection,
    prefix: &str,
    id: &str,
    view_count: i64,
) -> anyhow::Result<(Duration, Duration)> {
    let key = video_generation_key(prefix, id)?;
    let generation: Option<String> = redis.get(&key).await?;
    let sent = Instant::now();
    let response = http
        .patch(format!("{base}/v1/videos/{id}"))
        .bearer_auth(token)
        .json(&json!({ "view_count": view_count }))
        .send()
        .await?;
    let acked = Instant::now();
    if !response.status().is_success() {
        bail!("PATCH {id}: {}", response.status());
    }
    loop {
        let now: Option<String> = redis.get(&key).await?;
        if now != generation {
            let purged = Instant::now();
            return Ok((purged - sent, purged - acked));
        }
        if sent.elapsed() > PURGE_DEADLINE {
            bail!("{id}: not purged within {PURGE_DEADLINE:?}");
        }
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Cumulative bucket counts of `invalidation_lag_seconds` by upper bound,
/// summed over label sets.
fn buckets(text: &str) -> BTreeMap<String, f64> {
    let mut buckets = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("invalidation_lag_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(le) = labels.split(',').find_map(|l| l.trim().strip_prefix("le=")) else {
            continue;
        };
        if let Ok(value) = value.trim().parse::<f64>() {
            *buckets
                .entry(le.trim_matches('"').to_owned())
                .or_insert(0.0) += value;
        }
    }
    buckets
}

/// (count, p50, p99) in seconds of the events observed between two scrapes,
/// interpolating linearly inside a bucket as Prometheus' histogram_quantile does.
fn histogram_quantiles(before: &str, after: &str) -> Option<(f64, f64, f64)> {
    let (before, after) = (buckets(before), buckets(after));
    let mut diff: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            (bound, n - before.get(le).copied().unwrap_or(0.0))
        })
        .filter(|(bound, _)| !bound.is_nan())
        .collect();
    diff.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = diff.last()?.1;
    if count <= 0.0 {
        return None;
    }
    let quantile = |q: f64| {
        let rank = q * count;
        let mut lower = (0.0, 0.0);
        for &(bound, cumulative) in &diff {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return lower.0;
                }
                let width = cumulative - lower.1;
                let fraction = if width > 0.0 {
                    (rank - lower.1) / width
                } else {
                    1.0
                };
                return lower.0 + (bound - lower.0) * fraction;
            }
            lower = (bound, cumulative);
        }
        lower.0
    };
    Some((count, quantile(0.5), quantile(0.99)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_the_difference_of_two_scrapes() {
        let before = "invalidation_lag_seconds_bucket{le=\"0.001\"} 5\n\
                      invalidation_lag_seconds_bucket{le=\"0.01\"} 5\n\
                      invalidation_lag_seconds_bucket{le=\"+Inf\"} 105\n";
        let after = "# TYPE invalidation_lag_seconds histogram\n\
                     invalidation_lag_seconds_bucket{le=\"0.001\"} 55\n\
                     invalidation_lag_seconds_bucket{le=\"0.01\"} 105\n\
                     invalidation_lag_seconds_bucket{le=\"+Inf\"} 205\n\
                     invalidation_lag_seconds_sum 1.5\n";
        let (count, p50, p99) = histogram_quantiles(before, after).unwrap();
        assert_eq!(count, 100.0);
        assert!((p50 - 0.001).abs() < 1e-9, "{p50}");
        assert!((p99 - (0.001 + 0.009 * 49.0 / 50.0)).abs() < 1e-9, "{p99}");
        assert!(histogram_quantiles(after, after).is_none());
    }

    #[test]
    fn generation_key_matches_the_key_scheme() {
        assert_eq!(
            video_generation_key("b:", "0193a7e2-6f1c-7d3a-9c55-2b1f0e7a4c10").unwrap(),
            "b:{video:0193a7e26f1c7d3a9c552b1f0e7a4c10}:gen"
        );
    }
}
