//! The write path needs no planner statistics: the change trigger works from
//! its transition tables and never scans the outbox, however large it is and
//! whether or not anything was analyzed (right after a bulk load with
//! autovacuum off). Checked with the transaction's own scan counters
//! (`pg_stat_xact_user_tables`), which are exact and need no waiting. The
//! scan that used to happen (`seq > before` on an unanalyzed outbox) shows up
//! there as a sequential scan.

use sqlx::{PgPool, Row};

use crate::common::{video, App};

/// Scans of `table` by the current transaction: (sequential, index).
async fn scans(tx: &mut sqlx::PgConnection, table: &str) -> (i64, i64) {
    let row = sqlx::query(
        "select coalesce(seq_scan, 0) as seq, coalesce(idx_scan, 0) as idx
         from pg_stat_xact_user_tables where relname = $1",
    )
    .bind(table)
    .fetch_optional(&mut *tx)
    .await
    .unwrap();
    row.map_or((0, 0), |r| (r.get("seq"), r.get("idx")))
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn writes_never_scan_the_outbox_even_without_statistics(pool: PgPool) {
    // Nothing may gather statistics behind the test's back.
    for table in [
        "videos",
        "video_tags",
        "video_events",
        "feed_counts",
        "search_titles",
        "title_counts",
    ] {
        sqlx::query(&format!(
            "alter table {table} set (autovacuum_enabled = false)"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    // A large outbox from one bulk statement, never analyzed.
    sqlx::query(
        "insert into videos (id, title, video_url, tags, status, published_at)
         select gen_random_uuid(), 'bulk ' || g, 'https://e.com/v', array['bulk'], 'published', now()
         from generate_series(1, 100000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    let analyzed: Option<i64> = sqlx::query_scalar(
        "select coalesce(analyze_count + autoanalyze_count, 0)
         from pg_stat_user_tables where relname = 'video_events'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    assert_eq!(analyzed.unwrap_or(0), 0, "video_events was analyzed");

    // Insert, update (counted and uncounted change) and delete, each in a
    // transaction that then reads its own scan counters.
    let statements = [
        "insert into videos (id, title, video_url, tags, status, published_at)
         values ('018f0000-0000-7000-8000-000000000001', 'one', 'https://e.com/v', array['x'], 'published', now())",
        "update videos set title = 'two' where id = '018f0000-0000-7000-8000-000000000001'",
        "update videos set status = 'draft' where id = '018f0000-0000-7000-8000-000000000001'",
        "delete from videos where id = '018f0000-0000-7000-8000-000000000001'",
    ];
    for statement in statements {
        let mut tx = pool.begin().await.unwrap();
        let events_before: i64 = sqlx::query_scalar("select count(*) from video_events")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let counted = scans(&mut tx, "video_events").await;
        let tags_before = scans(&mut tx, "video_tags").await;
        let titles_before = scans(&mut tx, "search_titles").await;
        let title_counts_before = scans(&mut tx, "title_counts").await;
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
        let after = scans(&mut tx, "video_events").await;
        assert_eq!(
            after, counted,
            "the trigger scanned video_events for: {statement}"
        );
        // The listing rows it moves are found by key, never by a scan.
        let tags_after = scans(&mut tx, "video_tags").await;
        assert_eq!(
            tags_after.0, tags_before.0,
            "the trigger seq-scanned video_tags for: {statement}"
        );
        // Titles (100,000 of them, unanalyzed) are found by key too.
        assert_eq!(
            scans(&mut tx, "search_titles").await.0,
            titles_before.0,
            "the trigger seq-scanned search_titles for: {statement}"
        );
        assert_eq!(
            scans(&mut tx, "title_counts").await.0,
            title_counts_before.0,
            "the trigger seq-scanned title_counts for: {statement}"
        );
        // The event was still written.
        let events_after: i64 = sqlx::query_scalar("select count(*) from video_events")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(events_after, events_before + 1, "{statement}");
        tx.commit().await.unwrap();
    }

    // And through the API: a create still records its one event and count.
    let app = App::start(pool.clone()).await;
    let created = app.create(video("after-bulk")).await;
    let events: i64 = sqlx::query_scalar(
        "select count(*) from video_events where video_id = $1::text::uuid and op = 'insert'",
    )
    .bind(created["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(events, 1);
    let published: i64 = sqlx::query_scalar("select published from feed_counts where tag = ''")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(published, 100_001);
}
