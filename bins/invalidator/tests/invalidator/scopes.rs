//! Each kind of change purges exactly its scopes; drafts purge nothing.

use super::*;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn published_insert_purges_feed_and_its_tags_only(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    inv.process_available().await.unwrap();
    let id = insert(&h.pool, "published", &["summer", "linen"]).await;
    let all = [
        Scope::Feed,
        Scope::Video(id),
        tag("summer"),
        tag("linen"),
        tag("winter"),
        Scope::Video(Uuid::nil()),
    ];
    h.mark(&all).await;

    assert_eq!(inv.process_available().await.unwrap(), 1);

    let purged = h.purged(&all).await;
    // No detail: a new id has nothing cached (the read API never caches 404s).
    assert_eq!(purged, vec![Scope::Feed, tag("summer"), tag("linen")]);
    assert_eq!(h.checkpoint().await, h.newest_seq().await);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn drafts_purge_nothing_but_advance_the_checkpoint(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    let id = insert(&h.pool, "draft", &["summer"]).await;
    exec(
        &h.pool,
        "update videos set tags = '{winter}', title = 'Other' where id = $1",
        id,
    )
    .await;
    let all = [Scope::Feed, Scope::Video(id), tag("summer"), tag("winter")];
    h.mark(&all).await;

    assert_eq!(inv.process_available().await.unwrap(), 2);
    exec(&h.pool, "delete from videos where id = $1", id).await;
    assert_eq!(inv.process_available().await.unwrap(), 1);

    assert_eq!(h.purged(&all).await, Vec::<Scope>::new());
    assert_eq!(h.checkpoint().await, 3);
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_kind_of_change_purges_exactly_its_scopes(pool: PgPool) {
    let mut h = Harness::new(pool).await;
    let mut inv = h.invalidator();
    let id = insert(&h.pool, "published", &["summer", "linen"]).await;
    inv.process_available().await.unwrap();
    let all = [
        Scope::Feed,
        Scope::Video(id),
        tag("summer"),
        tag("linen"),
        tag("wool"),
        tag("winter"),
    ];

    let cases: &[(&str, &[Scope])] = &[
        // Tag change: old and new tags.
        (
            "update videos set tags = '{linen,wool}' where id = $1",
            &[
                Scope::Feed,
                Scope::Video(id),
                tag("summer"),
                tag("linen"),
                tag("wool"),
            ],
        ),
        // view_count: every scope the video is in, nothing else.
        (
            "update videos set view_count = view_count + 10 where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("linen"), tag("wool")],
        ),
        // Unpublish, with a tag change: the old tags only.
        (
            "update videos set status = 'draft', tags = '{winter}' where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("linen"), tag("wool")],
        ),
        // Publish: the new tags only.
        (
            "update videos set status = 'published', tags = '{summer}' where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("summer")],
        ),
        // A no-op update emits no event and purges nothing.
        ("update videos set tags = '{summer}' where id = $1", &[]),
        // Delete of a published video.
        (
            "delete from videos where id = $1",
            &[Scope::Feed, Scope::Video(id), tag("summer")],
        ),
    ];
    for (sql, expected) in cases {
        h.mark(&all).await;
        exec(&h.pool, sql, id).await;
        inv.process_available().await.unwrap();
        let mut expected = expected.to_vec();
        expected.sort();
        let mut purged = h.purged(&all).await;
        purged.sort();
        assert_eq!(purged, expected, "after `{sql}`");
    }
    assert_eq!(h.checkpoint().await, h.newest_seq().await);
}
