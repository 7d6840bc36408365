-- One statement-level trigger per operation records every changed row in the
-- outbox, maintains feed_counts and notifies the invalidator, set-based over the
-- statement's transition tables: a COPY of a million rows costs a few
-- statements, not a million trigger calls. Because it lives in the database,
-- every writer produces events, and a rolled-back change leaves none.
create function videos_record_changes() returns trigger
language plpgsql as $$
declare
    before_seq bigint;
    last_seq bigint;
begin
    -- Serialises outbox writers until commit so that seq order is commit order
    -- (see video_events). Held from the end of the writing statement to commit.
    perform pg_advisory_xact_lock(7346102301);
    select coalesce(max(seq), 0) into before_seq from video_events;

    if tg_op = 'INSERT' then
        insert into video_events (video_id, op, new_status, new_tags, new_published_at, new_view_count)
        select n.id, 'insert', n.status, n.tags, n.published_at, n.view_count
        from new_rows n;
    elsif tg_op = 'UPDATE' then
        insert into video_events (video_id, op,
            old_status, old_tags, old_published_at, old_view_count,
            new_status, new_tags, new_published_at, new_view_count)
        select n.id, 'update', o.status, o.tags, o.published_at, o.view_count,
               n.status, n.tags, n.published_at, n.view_count
        from old_rows o join new_rows n using (id)
        where o is distinct from n;
    else
        insert into video_events (video_id, op, old_status, old_tags, old_published_at, old_view_count)
        select o.id, 'delete', o.status, o.tags, o.published_at, o.view_count
        from old_rows o;
    end if;

    select coalesce(max(seq), 0) into last_seq from video_events;
    if last_seq = before_seq then
        return null;
    end if;

    -- The lock makes every event above before_seq this statement's own.
    -- +1 for the state after, -1 for the state before, on the whole feed ('')
    -- and on each tag of that state.
    insert into feed_counts as c (tag, published, draft)
    select t.tag,
           sum(case when x.status = 'published' then x.delta else 0 end),
           sum(case when x.status = 'draft' then x.delta else 0 end)
    from (
        select new_status as status, new_tags as tags, 1 as delta
        from video_events where seq > before_seq and new_status is not null
        union all
        select old_status, old_tags, -1
        from video_events where seq > before_seq and old_status is not null
    ) x
    cross join lateral unnest(array[''] || x.tags) as t(tag)
    group by t.tag
    on conflict (tag) do update
        set published = c.published + excluded.published,
            draft = c.draft + excluded.draft;

    perform pg_notify('video_events', last_seq::text);
    return null;
end;
$$;

create trigger videos_record_inserts
    after insert on videos referencing new table as new_rows
    for each statement execute function videos_record_changes();
create trigger videos_record_updates
    after update on videos referencing old table as old_rows new table as new_rows
    for each statement execute function videos_record_changes();
create trigger videos_record_deletes
    after delete on videos referencing old table as old_rows
    for each statement execute function videos_record_changes();
