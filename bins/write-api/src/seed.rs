//! `write-api seed --videos N`: bulk-loads realistic demo videos with COPY.
//!
//! Rows are generated on a blocking thread while the previous piece streams to
//! Postgres (in COPY's binary format, `binary`), so generation and loading
//! overlap. The load is one transaction of a few COPY statements: the
//! statement-level triggers (outbox events, counts, listing and search rows)
//! run once per statement over its transition table. Larger statements mean
//! fewer upserts of the per-title counts (a title repeats across statements);
//! bounding them bounds the trigger's temporary files. Nothing is disabled:
//! the invalidator gets one event per video and the read side its counts.
//!
//! Creation times increase row by row (denser towards now, like a growing
//! catalogue), so the UUID v7 ids, which embed them, arrive in key order.
//! Into an empty catalogue the plain indexes are built once after the rows
//! are in, inside the same transaction (`indexes`).

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use tokio::sync::mpsc;

mod binary;
mod indexes;
mod model;
#[cfg(test)]
mod tests;

use model::Rows;
pub use model::TAGS;

/// Rows per COPY statement, i.e. per run of the statement triggers.
const STATEMENT_ROWS: u64 = 500_000;
/// Rows per piece sent down the connection (and per progress-bar step).
const PIECE_ROWS: u64 = 5_000;

const COPY_STATEMENT: &str = "copy videos (id, title, description, video_url, thumbnail_url, \
    duration_seconds, tags, view_count, status, published_at, created_at, updated_at) \
    from stdin with (format binary)";

/// What the load wrote (the videos, their listing rows, outbox events, counts
/// and search titles), in two halves of about equal size: VACUUM works on one
/// table at a time, so two connections use two cores.
const VACUUM_STATEMENTS: [&str; 2] = [
    "vacuum (analyze) videos",
    "vacuum (analyze) video_tags, video_events, feed_counts, search_titles, title_counts",
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

/// One piece of a COPY statement's binary data.
struct Piece {
    data: Vec<u8>,
    rows: u64,
    drafts: u64,
    /// The last piece of its COPY statement.
    ends_statement: bool,
}

/// Loads `videos` demo videos; shows a progress bar when `show_progress`.
pub async fn run(pool: &PgPool, videos: u64, show_progress: bool) -> Result<SeedReport, SeedError> {
    load(pool, videos, show_progress, STATEMENT_ROWS).await
}

/// [`run`] with `statement_rows` rows per COPY statement.
async fn load(
    pool: &PgPool,
    videos: u64,
    show_progress: bool,
    statement_rows: u64,
) -> Result<SeedReport, SeedError> {
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
    let generator =
        tokio::task::spawn_blocking(move || generate(videos, now, statement_rows, &sender));

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
    let [videos_table, other_tables] = VACUUM_STATEMENTS;
    if pool.options().get_max_connections() >= 2 {
        tokio::try_join!(
            sqlx::raw_sql(videos_table).execute(pool),
            sqlx::raw_sql(other_tables).execute(pool),
        )?;
    } else {
        // One connection: the second would wait out the pool's acquire timeout.
        sqlx::raw_sql(videos_table).execute(pool).await?;
        sqlx::raw_sql(other_tables).execute(pool).await?;
    }
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
fn generate(videos: u64, now: DateTime<Utc>, statement_rows: u64, sender: &mpsc::Sender<Piece>) {
    let mut rows = Rows::new(now, videos);
    let mut done = 0;
    while done < videos {
        let in_statement = done % statement_rows;
        let count = PIECE_ROWS
            .min(videos - done)
            .min(statement_rows - in_statement);
        let mut data = Vec::with_capacity(count as usize * 450);
        if in_statement == 0 {
            data.extend_from_slice(binary::HEADER);
        }
        let mut drafts = 0;
        for i in done..done + count {
            if rows.write(i, &mut data) {
                drafts += 1;
            }
        }
        done += count;
        let ends_statement = done == videos || done % statement_rows == 0;
        if ends_statement {
            data.extend_from_slice(&binary::TRAILER);
        }
        let piece = Piece {
            data,
            rows: count,
            drafts,
            ends_statement,
        };
        if sender.blocking_send(piece).is_err() {
            return;
        }
    }
}
