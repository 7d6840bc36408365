-- The change trigger, computing its outbox rows and feed_counts deltas from the
-- statement's transition tables only. The previous version re-read
-- video_events by `seq > before` after inserting; without planner statistics
-- (right after a bulk load, autovacuum off) that was a sequential scan of the
-- whole outbox on every write. Here the events come back from the INSERT's
-- RETURNING, so a write costs the same at 0 or 10,000,000 outbox rows,
-- analyzed or not. Guarantees unchanged: one event per changed row, written in
-- the writing transaction (a rollback leaves none), seq assigned under the
-- advisory lock held to commit (seq order = commit order), NOTIFY in the same
-- transaction. It also keeps video_tags (the admin listing's order) in step.
create or replace function videos_record_changes() returns trigger
language plpgsql as $$
declare
    last_seq bigint;
begin
    -- Serialises outbox writers until commit so that seq order is commit order
    -- (see video_events). Held from the end of the writing statement to commit.
    perform pg_advisory_xact_lock(7346102301);

    -- One statement per operation: the events, then +1 for the state after and
    -- -1 for the state before, on the whole feed ('') and on each tag of that
    -- state, all from the rows the INSERT returns.
    if tg_op = 'INSERT' then
        with events as (
            insert into video_events (video_id, op, new_status, new_tags, new_published_at, new_view_count)
            select n.id, 'insert', n.status, n.tags, n.published_at, n.view_count
            from new_rows n
            returning seq, old_status, old_tags, new_status, new_tags
        ), counted as (
            insert into feed_counts as c (tag, published, draft)
            select t.tag,
                   sum(case when x.status = 'published' then x.delta else 0 end),
                   sum(case when x.status = 'draft' then x.delta else 0 end)
            from (
                select new_status as status, new_tags as tags, 1 as delta from events
            ) x
            cross join lateral unnest(array[''] || x.tags) as t(tag)
            group by t.tag
            on conflict (tag) do update
                set published = c.published + excluded.published,
                    draft = c.draft + excluded.draft
        )
        select max(seq) into last_seq from events;
        insert into video_tags (tag, status, sort_at, view_count, video_id)
        select t.tag, n.status, coalesce(n.published_at, 'infinity'), n.view_count, n.id
        from new_rows n
        cross join lateral (select distinct u from unnest(array[''] || n.tags) u) as t(tag);
    elsif tg_op = 'UPDATE' then
        with events as (
            insert into video_events (video_id, op,
                old_status, old_tags, old_published_at, old_view_count,
                new_status, new_tags, new_published_at, new_view_count)
            select n.id, 'update', o.status, o.tags, o.published_at, o.view_count,
                   n.status, n.tags, n.published_at, n.view_count
            from old_rows o join new_rows n using (id)
            where o is distinct from n
            returning seq, old_status, old_tags, new_status, new_tags
        ), counted as (
            insert into feed_counts as c (tag, published, draft)
            select t.tag,
                   sum(case when x.status = 'published' then x.delta else 0 end),
                   sum(case when x.status = 'draft' then x.delta else 0 end)
            from (
                select new_status as status, new_tags as tags, 1 as delta from events
                union all
                select old_status, old_tags, -1 from events
            ) x
            cross join lateral unnest(array[''] || x.tags) as t(tag)
            group by t.tag
            -- A change that moves no count (a title edit) writes no row.
            having sum(case when x.status = 'published' then x.delta else 0 end) <> 0
                or sum(case when x.status = 'draft' then x.delta else 0 end) <> 0
            on conflict (tag) do update
                set published = c.published + excluded.published,
                    draft = c.draft + excluded.draft
        )
        select max(seq) into last_seq from events;
        -- Only rows whose listing keys changed move in video_tags; each old
        -- row is found by its full key in video_tags_newest.
        delete from video_tags vt
        using old_rows o
        join new_rows n using (id)
        cross join lateral (select distinct u from unnest(array[''] || o.tags) u) as t(tag)
        where (o.status, o.tags, o.published_at, o.view_count)
              is distinct from (n.status, n.tags, n.published_at, n.view_count)
          and vt.tag = t.tag
          and vt.sort_at = coalesce(o.published_at, 'infinity')
          and vt.video_id = o.id;
        insert into video_tags (tag, status, sort_at, view_count, video_id)
        select t.tag, n.status, coalesce(n.published_at, 'infinity'), n.view_count, n.id
        from old_rows o
        join new_rows n using (id)
        cross join lateral (select distinct u from unnest(array[''] || n.tags) u) as t(tag)
        where (o.status, o.tags, o.published_at, o.view_count)
              is distinct from (n.status, n.tags, n.published_at, n.view_count);
    else
        with events as (
            insert into video_events (video_id, op, old_status, old_tags, old_published_at, old_view_count)
            select o.id, 'delete', o.status, o.tags, o.published_at, o.view_count
            from old_rows o
            returning seq, old_status, old_tags, new_status, new_tags
        ), counted as (
            insert into feed_counts as c (tag, published, draft)
            select t.tag,
                   sum(case when x.status = 'published' then x.delta else 0 end),
                   sum(case when x.status = 'draft' then x.delta else 0 end)
            from (
                select old_status as status, old_tags as tags, -1 as delta from events
            ) x
            cross join lateral unnest(array[''] || x.tags) as t(tag)
            group by t.tag
            on conflict (tag) do update
                set published = c.published + excluded.published,
                    draft = c.draft + excluded.draft
        )
        select max(seq) into last_seq from events;
        delete from video_tags vt
        using old_rows o
        cross join lateral (select distinct u from unnest(array[''] || o.tags) u) as t(tag)
        where vt.tag = t.tag
          and vt.sort_at = coalesce(o.published_at, 'infinity')
          and vt.video_id = o.id;
    end if;

    if last_seq is not null then
        perform pg_notify('video_events', last_seq::text);
    end if;
    return null;
end;
$$;
