-- Where each invalidator has got to in video_events. Kept in Postgres, next to
-- the outbox it points into, so it is restored together with it; Redis losing
-- its data loses cache entries, never the checkpoint.
create table invalidator_checkpoints (
    name       text        primary key,
    seq        bigint      not null check (seq >= 0),
    -- The Redis server (its INFO run_id) the purges up to seq went to: a
    -- different one on start means Redis restarted, maybe from an old
    -- snapshot, and the whole cache epoch must be replaced.
    redis_run_id text,
    updated_at timestamptz not null default now()
);
