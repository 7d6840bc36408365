//! Where each invalidator has got to in the outbox (`invalidator_checkpoints`).

use sqlx::PgPool;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every event up to and including this seq has been purged.
    pub seq: i64,
    /// The Redis server (its run_id) those purges went to.
    pub redis_run_id: Option<String>,
}

/// The checkpoint of `name`; seq 0 (the whole outbox) for a new name.
pub async fn load(pool: &PgPool, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query_as!(
        Checkpoint,
        "select seq, redis_run_id from invalidator_checkpoints where name = $1",
        name
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Records that everything up to `seq` was purged into Redis `run_id`. Never
/// moves the checkpoint back: a concurrent invalidator of the same name that
/// got further keeps its position.
pub async fn save(
    pool: &PgPool,
    name: &str,
    seq: i64,
    run_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into invalidator_checkpoints as c (name, seq, redis_run_id, updated_at)
         values ($1, $2, $3, now())
         on conflict (name) do update
             set seq = greatest(c.seq, excluded.seq),
                 redis_run_id = coalesce(excluded.redis_run_id, c.redis_run_id),
                 updated_at = now()",
        name,
        seq,
        run_id
    )
    .execute(pool)
    .await?;
    Ok(())
}
