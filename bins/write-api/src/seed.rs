//! `write-api seed --videos N`: bulk-loads realistic demo videos with COPY.
//!
//! Rows are generated on a blocking thread while the previous piece streams to
//! Postgres, so generation and loading overlap. The load is one transaction of
//! several COPY statements: the statement-level triggers (outbox events,
//! feed_counts) run once per statement over its transition table, and bounding
//! a statement's size keeps that table in memory. Nothing is disabled: the
//! invalidator gets one event per video and the read side its counts.
//!
//! Creation times increase row by row (denser towards now, like a growing
//! catalogue), so the UUID v7 ids, which embed them, arrive in key order.
//! Into an empty catalogue the plain indexes are built once after the rows
//! are in, inside the same transaction (`indexes`).

use std::{fmt::Write as _, time::Duration};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{
    distr::{weighted::WeightedIndex, Distribution},
    rngs::SmallRng,
    seq::IndexedRandom,
    Rng, SeedableRng,
};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

mod indexes;

/// Rows per COPY statement, i.e. per run of the statement triggers.
const STATEMENT_ROWS: u64 = 100_000;
/// Rows per piece sent down the connection (and per progress-bar step).
const PIECE_ROWS: u64 = 5_000;
/// How far back the catalogue goes.
const HISTORY: TimeDelta = TimeDelta::days(730);
const DRAFT_RATIO: f64 = 0.05;
const CDN: &str = "https://cdn.videofeed.example";

const COPY_STATEMENT: &str = "copy videos (id, title, description, video_url, thumbnail_url, \
    duration_seconds, tags, view_count, status, published_at, created_at, updated_at) from stdin";

/// What the load wrote: the videos, their listing rows, outbox events, counts
/// and search titles.
const VACUUM_STATEMENT: &str =
    "vacuum (analyze) videos, video_tags, video_events, feed_counts, search_titles, title_counts";

/// The tag vocabulary, most popular first (popularity falls off as 1/rank),
/// each with the word titles use for it.
pub const TAGS: [(&str, &str); 30] = [
    ("streetwear", "Streetwear"),
    ("summer", "Summer"),
    ("outfit-ideas", "Everyday"),
    ("haul", "Try-on"),
    ("minimalist", "Minimalist"),
    ("vintage", "Vintage"),
    ("denim", "Denim"),
    ("sneakers", "Sneaker"),
    ("winter", "Winter"),
    ("workwear", "Office"),
    ("accessories", "Accessory"),
    ("autumn", "Autumn"),
    ("spring", "Spring"),
    ("thrift", "Thrifted"),
    ("capsule-wardrobe", "Capsule"),
    ("menswear", "Menswear"),
    ("athleisure", "Athleisure"),
    ("linen", "Linen"),
    ("evening", "Evening"),
    ("sustainable", "Sustainable"),
    ("knitwear", "Knitwear"),
    ("jewelry", "Jewelry"),
    ("outerwear", "Outerwear"),
    ("y2k", "Y2K"),
    ("boho", "Boho"),
    ("wedding-guest", "Wedding guest"),
    ("tailoring", "Tailored"),
    ("runway", "Runway"),
    ("festival", "Festival"),
    ("resort", "Resort"),
];

/// Garments, with the article they take (none for plurals).
const ITEMS: [(&str, &str); 24] = [
    ("a linen shirt", "linen shirt"),
    ("a trench coat", "trench coat"),
    ("wide-leg trousers", "wide-leg trousers"),
    ("a slip dress", "slip dress"),
    ("a denim jacket", "denim jacket"),
    ("chunky sneakers", "chunky sneakers"),
    ("a cashmere sweater", "cashmere sweater"),
    ("leather boots", "leather boots"),
    ("a pleated skirt", "pleated skirt"),
    ("an oversized blazer", "oversized blazer"),
    ("a silk scarf", "silk scarf"),
    ("cargo pants", "cargo pants"),
    ("a white tee", "white tee"),
    ("a midi dress", "midi dress"),
    ("a puffer jacket", "puffer jacket"),
    ("loafers", "loafers"),
    ("a tote bag", "tote bag"),
    ("gold hoops", "gold hoops"),
    ("a knit vest", "knit vest"),
    ("a bucket hat", "bucket hat"),
    ("straight-leg jeans", "straight-leg jeans"),
    ("a shirt dress", "shirt dress"),
    ("a bomber jacket", "bomber jacket"),
    ("ballet flats", "ballet flats"),
];

const OCCASIONS: [&str; 10] = [
    "work",
    "a wedding",
    "date night",
    "the weekend",
    "travel",
    "brunch",
    "a festival",
    "the office",
    "a night out",
    "running errands",
];

const OPENINGS: [&str; 8] = [
    "Three looks built around {a_item}, from {occasion} to late dinner.",
    "Everything in this video comes from my own closet, including the {item}.",
    "A quick guide to wearing the {item} for {occasion}, with fit tips.",
    "We asked our stylists how they would wear {a_item} this season.",
    "How to make the {item} feel new this season.",
    "Five minutes, {a_item}, endless combinations.",
    "Styling notes for {occasion}: proportions, colour and the {item}.",
    "From flat lay to full outfit, built around the {item}.",
];

const CLOSINGS: [&str; 8] = [
    "Links to every piece are in the app.",
    "Tell us which look is your favourite.",
    "Sizes run small, so consider sizing up.",
    "Most pieces are second-hand or vintage.",
    "Shot in natural light, no filters.",
    "Save it for your next shopping trip.",
    "New videos every week.",
    "Care tips are at the end.",
];

/// What a seed run did, for the command's summary line and the benchmarks.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub videos: u64,
    /// Of which drafts (no `published_at`).
    pub drafts: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the row generator stopped unexpectedly")]
    Generator,
}

/// One piece of COPY text.
struct Piece {
    data: Vec<u8>,
    rows: u64,
    drafts: u64,
    /// The last piece of its COPY statement.
    ends_statement: bool,
}

/// Loads `videos` demo videos; shows a progress bar when `show_progress`.
pub async fn run(pool: &PgPool, videos: u64, show_progress: bool) -> Result<SeedReport, SeedError> {
    let started = std::time::Instant::now();
    let progress = if show_progress {
        let bar = ProgressBar::new(videos);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} videos, eta {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    // Two pieces in flight: the generator stays one piece ahead of the loader.
    let (sender, mut receiver) = mpsc::channel::<Piece>(2);
    // Microseconds, as Postgres stores them: ids are made from stored times.
    let now = Utc::now().trunc_subsecs(6);
    let generator = tokio::task::spawn_blocking(move || generate(videos, now, &sender));

    let mut tx = pool.begin().await?;
    let deferred = indexes::defer(&mut tx).await?;
    let mut drafts = 0;
    // One COPY statement per iteration, fed piece by piece.
    while let Some(mut piece) = receiver.recv().await {
        let mut copy = tx.copy_in_raw(COPY_STATEMENT).await?;
        loop {
            let (rows, ends_statement) = (piece.rows, piece.ends_statement);
            drafts += piece.drafts;
            copy.send(piece.data).await?;
            progress.inc(rows);
            if ends_statement {
                // The statement triggers run here.
                copy.finish().await?;
                break;
            }
            match receiver.recv().await {
                Some(next) => piece = next,
                None => {
                    // The generator ended mid-statement: it failed; load nothing.
                    copy.abort("seed generator stopped").await?;
                    return Err(SeedError::Generator);
                }
            }
        }
    }
    generator.await.map_err(|_| SeedError::Generator)?;
    if !deferred.is_empty() {
        progress.set_message("building indexes");
        tracing::info!("rows loaded; building the indexes deferred for the bulk load");
        indexes::rebuild(&mut tx, &deferred).await?;
    }
    progress.set_message("committing");
    tx.commit().await?;

    // A bulk load leaves no planner statistics and no visibility map until
    // a VACUUM runs, and autovacuum may be off (or a minute away): without
    // them plans guess and index-only scans visit the heap. Leave the
    // database ready for production instead.
    progress.set_message("committed; vacuum (analyze)");
    tracing::info!("seed committed; running vacuum (analyze) of the loaded tables");
    sqlx::raw_sql(VACUUM_STATEMENT).execute(pool).await?;
    tracing::info!("vacuum (analyze) done");
    progress.finish_with_message("committed, vacuumed and analyzed");

    Ok(SeedReport {
        videos,
        drafts,
        elapsed: started.elapsed(),
    })
}

/// Generates the rows and sends them in pieces; stops early if the loader is
/// gone (it failed).
fn generate(videos: u64, now: DateTime<Utc>, sender: &mpsc::Sender<Piece>) {
    let mut rows = Rows::new(now, videos);
    let mut done = 0;
    while done < videos {
        let in_statement = done % STATEMENT_ROWS;
        let count = PIECE_ROWS
            .min(videos - done)
            .min(STATEMENT_ROWS - in_statement);
        let mut text = String::with_capacity(count as usize * 400);
        let mut drafts = 0;
        for i in done..done + count {
            if rows.write(i, &mut text) {
                drafts += 1;
            }
        }
        done += count;
        let piece = Piece {
            data: text.into_bytes(),
            rows: count,
            drafts,
            ends_statement: done == videos || done % STATEMENT_ROWS == 0,
        };
        if sender.blocking_send(piece).is_err() {
            return;
        }
    }
}

/// The random model of the catalogue.
struct Rows {
    rng: SmallRng,
    now: DateTime<Utc>,
    total: u64,
    tag_popularity: WeightedIndex<f64>,
    tag_count: WeightedIndex<u32>,
}

impl Rows {
    fn new(now: DateTime<Utc>, total: u64) -> Self {
        Self {
            rng: SmallRng::from_rng(&mut rand::rng()),
            now,
            total,
            tag_popularity: zipf_weights(TAGS.len()),
            // 1, 2, 3 or 4 tags.
            tag_count: weights(&[35, 35, 20, 10]),
        }
    }

    /// Appends row `index` in COPY text format; returns whether it is a draft.
    fn write(&mut self, index: u64, out: &mut String) -> bool {
        let rng = &mut self.rng;

        // Stratified over the history, index order = time order, with
        // density growing towards now (age ∝ (1 - q)^1.3).
        let q = (index as f64 + rng.random::<f64>()) / self.total.max(1) as f64;
        let age_seconds = HISTORY.num_seconds() as f64 * (1.0 - q).max(0.0).powf(1.3);
        let created_at = self.now - seconds(age_seconds);
        let draft = rng.random_bool(DRAFT_RATIO);
        let published_at = (!draft).then(|| {
            // Edited for a few minutes to a few days before going live, and
            // live by now.
            let lag = 300.0 + 259_200.0 * rng.random::<f64>().powi(3);
            let so_far = (self.now - created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            created_at + seconds(lag.min(so_far * rng.random::<f64>()))
        });
        let last_change = published_at.unwrap_or(created_at);
        let updated_at = if rng.random_bool(0.15) {
            let edited_after = (self.now - last_change).num_seconds() as f64 * rng.random::<f64>();
            last_change + seconds(edited_after)
        } else {
            last_change
        };

        let mut tags: Vec<usize> = Vec::with_capacity(4);
        let wanted = self.tag_count.sample(rng) + 1;
        while tags.len() < wanted {
            let tag = self.tag_popularity.sample(rng);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }

        // Views: a Lomax (Pareto) tail, the way a few videos take most views;
        // recent videos have not caught up yet.
        let view_count = match published_at {
            None => 0,
            Some(published) => {
                let tail = 120.0 * (rng.random::<f64>().max(1e-12).powf(-1.0 / 1.15) - 1.0);
                let days_live = (self.now - published).num_seconds() as f64 / 86_400.0;
                let maturity = 0.1 + 0.9 * (days_live / 30.0).min(1.0);
                (tail * maturity).min(50_000_000.0) as u64
            }
        };
        // Short videos dominate.
        let duration = 15 + (885.0 * rng.random::<f64>().powi(2)).round() as u32;

        let id = time_ordered_id(created_at, rng.random());
        let item = *ITEMS.choose(rng).unwrap_or(&ITEMS[0]);
        let occasion = *OCCASIONS.choose(rng).unwrap_or(&OCCASIONS[0]);
        let theme = TAGS[tags[0]].1;

        // Text format: tab-separated, \N for null. No generated text contains
        // a tab, newline or backslash, so nothing needs escaping.
        let _ = write!(out, "{id}\t");
        self.write_title(out, theme, item, occasion);
        out.push('\t');
        self.write_description(out, item, occasion);
        let _ = write!(out, "\t{CDN}/v/{id}.mp4\t");
        if self.rng.random_bool(0.03) {
            out.push_str("\\N");
        } else {
            let _ = write!(out, "{CDN}/t/{id}.jpg");
        }
        let _ = write!(out, "\t{duration}\t{{");
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(TAGS[*tag].0);
        }
        let status = if draft { "draft" } else { "published" };
        let _ = write!(out, "}}\t{view_count}\t{status}\t");
        match published_at {
            Some(at) => timestamp(out, at),
            None => out.push_str("\\N"),
        }
        out.push('\t');
        timestamp(out, created_at);
        out.push('\t');
        timestamp(out, updated_at);
        out.push('\n');
        draft
    }

    fn write_title(&mut self, out: &mut String, theme: &str, item: (&str, &str), occasion: &str) {
        let (a_item, item) = item;
        let n = self.rng.random_range(3..=7);
        let _ = match self.rng.random_range(0..10) {
            0 => write!(out, "{n} ways to style {a_item}"),
            1 => write!(out, "{theme} lookbook: the {item}"),
            2 => write!(out, "How I style my {item} for {occasion}"),
            3 => write!(out, "{theme} outfit ideas for {occasion}"),
            4 => write!(out, "Honest review: the {item}, worth it?"),
            5 => write!(out, "{theme} capsule wardrobe in {n} pieces"),
            6 => write!(out, "Styling {a_item} for {occasion}"),
            7 => write!(out, "Get ready with me: {occasion}, {theme} edition"),
            8 => write!(out, "{theme} haul: {item} and more"),
            _ => write!(out, "Thrifted {item} makeover"),
        };
    }

    fn write_description(&mut self, out: &mut String, item: (&str, &str), occasion: &str) {
        let (a_item, item) = item;
        if self.rng.random_bool(0.05) {
            return;
        }
        let opening = OPENINGS.choose(&mut self.rng).unwrap_or(&OPENINGS[0]);
        out.push_str(
            &opening
                .replace("{a_item}", a_item)
                .replace("{item}", item)
                .replace("{occasion}", occasion),
        );
        out.push(' ');
        out.push_str(CLOSINGS.choose(&mut self.rng).unwrap_or(&CLOSINGS[0]));
    }
}

/// A UUID v7 whose 12 `rand_a` bits hold the sub-millisecond fraction (RFC
/// 9562, method 3), so ids sort like their microsecond creation times.
fn time_ordered_id(at: DateTime<Utc>, random: u64) -> Uuid {
    let millis = at.timestamp_millis().max(0) as u128;
    let sub_milli = u128::from(at.timestamp_subsec_micros() % 1000) * 4096 / 1000;
    let bits = (millis << 80) | (sub_milli << 64) | u128::from(random);
    uuid::Builder::from_u128(bits)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

fn seconds(seconds: f64) -> TimeDelta {
    TimeDelta::microseconds((seconds * 1e6) as i64)
}

fn timestamp(out: &mut String, at: DateTime<Utc>) {
    let _ = write!(out, "{}", at.format("%Y-%m-%d %H:%M:%S%.6f+00"));
}

/// Weights 1/rank: the k-th most popular tag is k times rarer than the first.
fn zipf_weights(n: usize) -> WeightedIndex<f64> {
    let weights: Vec<f64> = (1..=n).map(|rank| 1.0 / rank as f64).collect();
    // Non-empty, positive, finite weights: construction cannot fail.
    WeightedIndex::new(weights).unwrap_or_else(|_| unreachable!("valid weights"))
}

fn weights(values: &[u32]) -> WeightedIndex<u32> {
    WeightedIndex::new(values.iter().copied()).unwrap_or_else(|_| unreachable!("valid weights"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[sqlx::test(migrator = "shared::db::MIGRATOR")]
    async fn seeds_a_realistic_consistent_catalogue(pool: PgPool) {
        let report = run(&pool, 2_000, false).await.unwrap();
        assert_eq!(report.videos, 2_000);

        let counts = sqlx::query!(
            r#"select count(*) as "total!",
                      count(*) filter (where status = 'draft') as "drafts!",
                      count(*) filter (where status = 'draft' and published_at is null) as "unpublished_drafts!",
                      count(*) filter (where published_at > now() or created_at > now() or updated_at > now()) as "future!",
                      count(*) filter (where published_at < now() - interval '731 days') as "too_old!",
                      count(*) filter (where updated_at < created_at or updated_at < published_at) as "inconsistent!",
                      count(*) filter (where duration_seconds not between 15 and 900) as "bad_duration!",
                      count(*) filter (where cardinality(tags) not between 1 and 4) as "bad_tag_count!",
                      count(*) filter (where video_url not like 'https://%' or thumbnail_url not like 'https://%') as "bad_url!",
                      count(distinct id) as "ids!",
                      max(view_count) as "max_views!",
                      percentile_cont(0.5) within group (order by view_count) filter (where status = 'published') as "median_views!"
               from videos"#
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(counts.total, 2_000);
        assert_eq!(counts.drafts as u64, report.drafts);
        assert!(
            (40..=200).contains(&counts.drafts),
            "about 5% drafts: {}",
            counts.drafts
        );
        assert_eq!(counts.unpublished_drafts, counts.drafts);
        assert_eq!(counts.future, 0);
        assert_eq!(counts.too_old, 0);
        assert_eq!(counts.inconsistent, 0);
        assert_eq!(counts.bad_duration, 0);
        assert_eq!(counts.bad_tag_count, 0);
        assert_eq!(counts.bad_url, 0);
        assert_eq!(counts.ids, 2_000);
        assert!(
            counts.max_views as f64 > 20.0 * counts.median_views,
            "a heavy tail: max {} vs median {}",
            counts.max_views,
            counts.median_views
        );

        // Only the vocabulary's tags, the most popular far ahead of the last.
        let per_tag = sqlx::query!(
            r#"select tag as "tag!", count(*) as "videos!"
               from videos, unnest(tags) as tag group by tag order by 2 desc"#
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let vocabulary: Vec<&str> = TAGS.iter().map(|(tag, _)| *tag).collect();
        assert!(per_tag
            .iter()
            .all(|row| vocabulary.contains(&row.tag.as_str())));
        assert!(
            per_tag.len() >= 25,
            "most of the vocabulary is used: {}",
            per_tag.len()
        );
        assert_eq!(per_tag[0].tag, TAGS[0].0);
        assert!(per_tag[0].videos > 5 * per_tag[per_tag.len() - 1].videos);

        // The statement triggers ran: one event per video, and feed_counts
        // agrees with count(*) for the whole feed and every tag.
        let events: i64 =
            sqlx::query_scalar!(r#"select count(*) as "n!" from video_events where op = 'insert'"#)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(events, 2_000);
        let mismatches: i64 = sqlx::query_scalar!(
            r#"with actual as (
                   select '' as tag, status from videos
                   union all
                   select tag, status from videos, unnest(tags) as tag
               ), expected as (
                   select tag, count(*) filter (where status = 'published') as published,
                          count(*) filter (where status = 'draft') as draft
                   from actual group by tag
               )
               select count(*) as "n!"
               from expected e full join feed_counts c using (tag)
               where coalesce(e.published, 0) <> coalesce(c.published, 0)
                  or coalesce(e.draft, 0) <> coalesce(c.draft, 0)"#
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(mismatches, 0);
    }

    #[sqlx::test(migrator = "shared::db::MIGRATOR")]
    async fn spans_several_statements_and_orders_ids_by_creation(pool: PgPool) {
        // Not a multiple of the statement size: the last statement is partial.
        let videos = STATEMENT_ROWS + 1_234;
        run(&pool, videos, false).await.unwrap();
        let row = sqlx::query!(
            r#"select (select count(*) from videos) as "videos!",
                      (select published + draft from feed_counts where tag = '') as "counted!",
                      (select count(*) from (
                           select created_at < lag(created_at) over (order by id) as backwards from videos
                       ) x where backwards) as "backwards!""#
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(row.videos as u64, videos);
        assert_eq!(row.counted as u64, videos);
        assert_eq!(row.backwards, 0, "UUID v7 ids follow created_at");
    }

    #[sqlx::test(migrator = "shared::db::MIGRATOR")]
    async fn seeding_nothing_is_a_no_op(pool: PgPool) {
        let report = run(&pool, 0, false).await.unwrap();
        assert_eq!((report.videos, report.drafts), (0, 0));
        let videos: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from videos"#)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(videos, 0);
    }
}
