//! Index builds deferred to the end of a bulk load into an empty catalogue.
//!
//! `video_tags` rows arrive in tag-random order and new titles feed a trigram
//! GIN index, so loading a million videos through live indexes means millions of
//! random page updates, far more than fit in a default 128 MB
//! `shared_buffers`: that made a 1,000,000-video seed take over 100 s. Building
//! each index once, from sorted input, after the rows are in costs a fraction
//! of that (what `pg_restore` does). Only an empty catalogue qualifies: there
//! the seed's transaction is the only one that can see the tables' rows, and
//! it holds their locks until the indexes are back. Constraint indexes
//! (primary keys, unique) stay: they keep the load correct.

use sqlx::{PgConnection, Row};

/// The tables whose plain indexes a bulk load defers.
const TABLES: [&str; 3] = ["videos", "video_tags", "search_titles"];

/// Indexes dropped by [`defer`], each with the statement that recreates it.
pub struct Deferred(Vec<(String, String)>);

impl Deferred {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Drops the plain indexes of the catalogue's tables if `videos` is empty;
/// [`rebuild`] in the same transaction puts them back.
pub async fn defer(conn: &mut PgConnection) -> Result<Deferred, sqlx::Error> {
    // Locks first, so no other writer can add a row between the emptiness
    // check and the drops.
    sqlx::raw_sql("lock table videos, video_tags, search_titles in share row exclusive mode")
        .execute(&mut *conn)
        .await?;
    let empty: bool = sqlx::query("select not exists (select from videos)")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if !empty {
        return Ok(Deferred(Vec::new()));
    }
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
         from pg_index i
         where i.indrelid = any($1::regclass[])
           and not i.indisprimary and not i.indisunique and not i.indisexclusion
         order by i.indexrelid",
    )
    .bind(TABLES)
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &indexes {
        // `name` is regclass output: quoted by Postgres where it needs to be.
        sqlx::raw_sql(&format!("drop index {name}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Deferred(indexes))
}

/// Recreates what [`defer`] dropped, from Postgres' own definitions.
pub async fn rebuild(conn: &mut PgConnection, deferred: &Deferred) -> Result<(), sqlx::Error> {
    // Index builds sort in memory up to this much; local to the transaction.
    sqlx::raw_sql("set local maintenance_work_mem = '512MB'")
        .execute(&mut *conn)
        .await?;
    for (_, definition) in &deferred.0 {
        sqlx::raw_sql(definition).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sqlx::PgPool;

    /// Every index of the catalogue's tables with its definition.
    async fn definitions(pool: &PgPool) -> Vec<(String, String)> {
        sqlx::query_as(
            "select indexname::text, indexdef from pg_indexes
             where tablename in ('videos', 'video_tags', 'search_titles') order by indexname",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    }

    #[sqlx::test(migrator = "shared::db::MIGRATOR")]
    async fn a_seed_leaves_every_index_as_the_migrations_made_it(pool: PgPool) {
        let before = definitions(&pool).await;
        assert!(before
            .iter()
            .any(|(name, _)| name == "search_titles_folded"));
        // Into an empty catalogue (indexes deferred), then into a full one.
        crate::seed::run(&pool, 1_000, false).await.unwrap();
        assert_eq!(definitions(&pool).await, before);
        crate::seed::run(&pool, 1_000, false).await.unwrap();
        assert_eq!(definitions(&pool).await, before);

        // The rebuilt indexes hold every row: a tag listing through them
        // counts what a scan of the table counts.
        let mut tx = pool.begin().await.unwrap();
        sqlx::raw_sql("set local enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        let indexed: i64 = sqlx::query_scalar(
            "select count(*) from video_tags where tag = '' and sort_at < 'infinity'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        let dated: i64 =
            sqlx::query_scalar("select count(*) from videos where published_at is not null")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(indexed, dated);
    }
}
