-- The outbox of change events, read by the invalidator.
--
-- `seq` is assigned while holding a transaction-scoped advisory lock (see the
-- trigger below), so seq order is commit order: once a reader sees seq N, every
-- event below N is either visible or was rolled back. That lets the invalidator
-- keep a single number as its checkpoint with no risk of skipping an event that
-- committed late.
create table video_events (
    seq              bigint generated always as identity primary key,
    video_id         uuid        not null,
    op               text        not null check (op in ('insert', 'update', 'delete')),
    -- Feed-relevant state before (null for an insert) and after (null for a delete).
    old_status       text,
    old_tags         text[],
    old_published_at timestamptz,
    old_view_count   bigint,
    new_status       text,
    new_tags         text[],
    new_published_at timestamptz,
    new_view_count   bigint,
    -- clock_timestamp() when the change was recorded, at the end of the writing
    -- statement and just before commit: the start of the invalidation lag.
    recorded_at      timestamptz not null default clock_timestamp()
);
