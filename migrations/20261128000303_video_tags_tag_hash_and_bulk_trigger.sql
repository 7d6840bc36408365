-- video_tags keyed by a fixed-width hash of the tag instead of the tag.
--
-- A btree compares index tuples column by column, and every column after a
-- variable-width one has no fixed offset in the tuple: with the text `tag`
-- leading, each comparison of the listing indexes located sort_at, view_count
-- and video_id the slow way. Building the three large indexes of a
-- 1,000,000-video seed took 21 s that way and 13.6 s keyed by an integer
-- (measured side by side on the same rows), and every write's index
-- insertions and every listing's skip pay the same per comparison.
--
-- `tag_hash` is `hashtext(tag)`, immutable (should a major release ever change
-- hashtext, this column must be recomputed, as hash indexes would then need
-- a REINDEX). The tag stays in each index (INCLUDE), and every lookup
-- compares both: a collision between two tags costs a filtered index entry,
-- never a wrong row.
alter table video_tags add column tag_hash integer not null generated always as (hashtext(tag)) stored;

drop index video_tags_newest;
drop index video_tags_popular;
drop index video_tags_published_newest;
drop index video_tags_draft_newest;
drop index video_tags_draft_popular;
create index video_tags_newest on video_tags (tag_hash, sort_at desc, video_id desc)
    include (tag, status, title_id);
create index video_tags_popular on video_tags (tag_hash, view_count desc, sort_at desc, video_id desc)
    include (tag, status, title_id);
create index video_tags_published_newest on video_tags (tag_hash, sort_at desc, video_id desc)
    include (tag, title_id) where status = 'published';
create index video_tags_draft_newest on video_tags (tag_hash, sort_at desc, video_id desc)
    include (tag, title_id) where status = 'draft';
create index video_tags_draft_popular on video_tags (tag_hash, view_count desc, sort_at desc, video_id desc)
    include (tag, title_id) where status = 'draft';

-- The change trigger of 20261128000302_change_trigger_maintains_search.sql,
-- with its two deletes finding a video's rows by (tag_hash, tag, sort_at,
-- video_id), and cheaper for a bulk insert (the seed's COPY statements):
-- - each distinct title of a statement is folded (unaccent) and looked up in
--   search_titles once, not once per listing row (a million videos folded
--   and probed some 3,000,000 times);
-- - feed_counts deltas are summed per distinct (status, tags) before the tags
--   are unnested, not unnested per inserted row.
-- A one-row write does the same work as before. Everything else, and every
-- guarantee of the outbox, is unchanged.
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
                   sum(case when x.status = 'published' then x.videos else 0 end),
                   sum(case when x.status = 'draft' then x.videos else 0 end)
            from (
                select new_status as status, new_tags as tags, count(*) as videos
                from events
                group by new_status, new_tags
            ) x
            cross join lateral unnest(array[''] || x.tags) as t(tag)
            group by t.tag
            on conflict (tag) do update
                set published = c.published + excluded.published,
                    draft = c.draft + excluded.draft
        )
        select max(seq) into last_seq from events;
        insert into search_titles (folded)
        select distinct videos_search_text(d.title)
        from (select distinct n.title from new_rows n) d
        on conflict (folded) do nothing;
        with titles as materialized (
            select d.title,
                   (select s.id from search_titles s where s.folded = videos_search_text(d.title)) as title_id
            from (select distinct n.title from new_rows n) d
        ), listed as materialized (
            select t.tag, n.status, coalesce(n.published_at, 'infinity') as sort_at, n.view_count,
                   n.id, ti.title_id
            from new_rows n
            join titles ti on ti.title = n.title
            cross join lateral (select distinct u from unnest(array[''] || n.tags) u) as t(tag)
        ), counted as (
            insert into title_counts as c (title_id, tag, published, draft)
            select title_id, tag, count(*) filter (where status = 'published'),
                   count(*) filter (where status = 'draft')
            from listed
            group by title_id, tag
            on conflict (title_id, tag) do update
                set published = c.published + excluded.published,
                    draft = c.draft + excluded.draft
        )
        insert into video_tags (tag, status, sort_at, view_count, video_id, title_id)
        select tag, status, sort_at, view_count, id, title_id from listed;
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
        insert into search_titles (folded)
        select distinct videos_search_text(n.title)
        from old_rows o join new_rows n using (id)
        where o.title is distinct from n.title
        on conflict (folded) do nothing;
        -- Only rows whose listing keys or title changed move, in video_tags
        -- and title_counts; each old row is found by its full key in
        -- video_tags_newest (tag_hash, sort_at, video_id).
        with moved as materialized (
            select o.id, o.status as old_status, o.tags as old_tags, o.published_at as old_published_at,
                   o.title as old_title, n.status, n.tags, n.published_at, n.view_count, n.title
            from old_rows o join new_rows n using (id)
            where (o.status, o.tags, o.published_at, o.view_count, o.title)
                  is distinct from (n.status, n.tags, n.published_at, n.view_count, n.title)
        ), removed as (
            delete from video_tags vt
            using moved m
            cross join lateral (select distinct u from unnest(array[''] || m.old_tags) u) as t(tag)
            where vt.tag_hash = hashtext(t.tag)
              and vt.tag = t.tag
              and vt.sort_at = coalesce(m.old_published_at, 'infinity')
              and vt.video_id = m.id
            returning vt.tag, vt.status, vt.title_id
        ), added as (
            insert into video_tags (tag, status, sort_at, view_count, video_id, title_id)
            select t.tag, m.status, coalesce(m.published_at, 'infinity'), m.view_count, m.id,
                   (select s.id from search_titles s where s.folded = videos_search_text(m.title))
            from moved m
            cross join lateral (select distinct u from unnest(array[''] || m.tags) u) as t(tag)
            returning tag, status, title_id
        )
        insert into title_counts as c (title_id, tag, published, draft)
        select x.title_id, x.tag,
               sum(case when x.status = 'published' then x.delta else 0 end),
               sum(case when x.status = 'draft' then x.delta else 0 end)
        from (
            select title_id, tag, status, 1 as delta from added
            union all
            select title_id, tag, status, -1 from removed
        ) x
        group by x.title_id, x.tag
        -- A view count or date change moves no count.
        having sum(case when x.status = 'published' then x.delta else 0 end) <> 0
            or sum(case when x.status = 'draft' then x.delta else 0 end) <> 0
        on conflict (title_id, tag) do update
            set published = c.published + excluded.published,
                draft = c.draft + excluded.draft;
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
        with removed as (
            delete from video_tags vt
            using old_rows o
            cross join lateral (select distinct u from unnest(array[''] || o.tags) u) as t(tag)
            where vt.tag_hash = hashtext(t.tag)
              and vt.tag = t.tag
              and vt.sort_at = coalesce(o.published_at, 'infinity')
              and vt.video_id = o.id
            returning vt.tag, vt.status, vt.title_id
        )
        insert into title_counts as c (title_id, tag, published, draft)
        select title_id, tag, -count(*) filter (where status = 'published'),
               -count(*) filter (where status = 'draft')
        from removed
        group by title_id, tag
        on conflict (title_id, tag) do update
            set published = c.published + excluded.published,
                draft = c.draft + excluded.draft;
    end if;

    if last_seq is not null then
        perform pg_notify('video_events', last_seq::text);
    end if;
    return null;
end;
$$;
