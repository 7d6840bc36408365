//! Readies pooled connections for the write path before `/v1` answers.
//!
//! A fresh Postgres backend pays for everything once: the connection itself,
//! loading the catalogue entries of `videos`, its triggers, `video_tags`,
//! `title_counts` and their indexes, compiling the change trigger's PL/pgSQL
//! and planning each of its statements, and preparing the create's INSERT.
//! Paid by a request, that made the first create after a start (or a seed)
//! several times slower than the next. Instead each warmed connection runs
//! one create in a transaction that is rolled back: no video, no outbox event
//! and no notification survive it, only a gap in the outbox's `seq`, as any
//! rolled-back write leaves.

use shared::domain::{Status, VideoFields};
use sqlx::{pool::PoolConnection, Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::videos::create::insert_one;

/// Connections warmed: enough for a burst of concurrent writers; the rest
/// open (and warm up) on demand.
const WARM_CONNECTIONS: u32 = 4;

/// Opens up to [`WARM_CONNECTIONS`] connections and runs a rolled-back
/// create on each. Best effort: a failure is logged and the pool carries on.
pub async fn warm(pool: &PgPool) {
    let wanted = WARM_CONNECTIONS.min(pool.options().get_max_connections());
    // Held together until all are warm, so that each is a different one.
    let mut warmed: Vec<PoolConnection<Postgres>> = Vec::new();
    for _ in 0..wanted {
        let result = match pool.acquire().await {
            Ok(mut conn) => {
                let result = warm_one(&mut conn).await;
                warmed.push(conn);
                result
            }
            Err(error) => Err(error.into()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "warming the write path's connections failed");
            return;
        }
    }
    tracing::info!(connections = warmed.len(), "write path warmed");
}

async fn warm_one(conn: &mut PgConnection) -> Result<(), crate::error::ApiError> {
    let mut tx = conn.begin().await?;
    let fields = VideoFields {
        title: "connection warm-up".into(),
        description: String::new(),
        video_url: "https://warm-up.invalid/v.mp4".into(),
        thumbnail_url: None,
        duration_seconds: None,
        tags: vec!["warm-up".into()],
        view_count: 0,
        status: Status::Published,
        published_at: None,
    };
    insert_one(&mut tx, Uuid::now_v7(), fields).await?;
    tx.rollback().await?;
    Ok(())
}
