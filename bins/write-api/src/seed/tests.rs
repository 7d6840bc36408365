//! The seed against a real Postgres: a realistic catalogue, consistent with
//! the triggers' tables.
#![allow(clippy::unwrap_used)]

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
    // Small statements, the last one partial; pieces cross no statement.
    let statement_rows = 2_000;
    let videos = 2 * statement_rows + 1_234;
    load(&pool, videos, false, statement_rows).await.unwrap();
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
