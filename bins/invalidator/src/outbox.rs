//! Reading and pruning the outbox (`video_events`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::{
    domain::Status,
    events::{ChangeEvent, FeedState, Op},
};
use sqlx::PgPool;
use uuid::Uuid;

/// One outbox row as stored.
#[derive(Debug)]
pub struct Row {
    pub seq: i64,
    video_id: Uuid,
    op: String,
    old_status: Option<String>,
    old_tags: Option<Vec<String>>,
    old_published_at: Option<DateTime<Utc>>,
    old_view_count: Option<i64>,
    new_status: Option<String>,
    new_tags: Option<Vec<String>>,
    new_published_at: Option<DateTime<Utc>>,
    new_view_count: Option<i64>,
    recorded_at: DateTime<Utc>,
}

/// The events after `seq`, oldest first. Because seq order is commit order
/// (see the outbox's migration), no event below the last one returned can
/// still appear later.
pub async fn after(pool: &PgPool, seq: i64, limit: i64) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        "select seq, video_id, op,
                old_status, old_tags, old_published_at, old_view_count,
                new_status, new_tags, new_published_at, new_view_count,
                recorded_at
         from video_events
         where seq > $1
         order by seq
         limit $2",
        seq,
        limit
    )
    .fetch_all(pool)
    .await
}

/// The newest seq ever handed out, even if its event has been pruned.
pub async fn newest_seq(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let seq = sqlx::query_scalar!(
        "select coalesce(pg_sequence_last_value(pg_get_serial_sequence('video_events', 'seq')::regclass), 0) as \"seq!\""
    )
    .fetch_one(pool)
    .await?;
    Ok(seq)
}

/// Deletes up to `limit` events that every checkpoint has passed and that are
/// older than `retention`; returns how many. Plain row deletes: the writers'
/// trigger only appends, so they never wait for this.
pub async fn prune(pool: &PgPool, retention: Duration, limit: i64) -> Result<u64, sqlx::Error> {
    let retention_seconds = retention.as_secs_f64();
    let done = sqlx::query!(
        "delete from video_events
         where seq in (
             select seq from video_events
             where seq <= (select min(seq) from invalidator_checkpoints)
               and recorded_at < now() - make_interval(secs => $1)
             order by seq
             limit $2)",
        retention_seconds,
        limit
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

impl Row {
    /// The event, or why the row cannot be one (only possible if someone
    /// wrote the outbox by hand).
    pub fn decode(self) -> Result<ChangeEvent, String> {
        let op = Op::parse(&self.op).ok_or_else(|| format!("unknown op `{}`", self.op))?;
        let before = state(
            self.old_status,
            self.old_tags,
            self.old_published_at,
            self.old_view_count,
        )?;
        let after = state(
            self.new_status,
            self.new_tags,
            self.new_published_at,
            self.new_view_count,
        )?;
        let expected = match op {
            Op::Insert => (false, true),
            Op::Update => (true, true),
            Op::Delete => (true, false),
        };
        if (before.is_some(), after.is_some()) != expected {
            return Err(format!(
                "a {} must have {expected:?} states (before, after)",
                self.op
            ));
        }
        Ok(ChangeEvent {
            seq: self.seq,
            video_id: self.video_id,
            op,
            before,
            after,
            recorded_at: self.recorded_at,
        })
    }
}

fn state(
    status: Option<String>,
    tags: Option<Vec<String>>,
    published_at: Option<DateTime<Utc>>,
    view_count: Option<i64>,
) -> Result<Option<FeedState>, String> {
    let Some(status) = status else {
        return Ok(None);
    };
    Ok(Some(FeedState {
        status: Status::parse(&status)?,
        tags: tags.unwrap_or_default(),
        published_at,
        view_count: view_count.unwrap_or_default(),
    }))
}
