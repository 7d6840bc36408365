-- The videos table. Column names are the JSON field names of the API because
-- operators and tests query this table directly. The constraints repeat the
-- API's validation rules so that no writer (the API, `seed`, an operator's psql)
-- can store a video the API would refuse.
create table videos (
    id               uuid primary key,
    title            text        not null check (char_length(title) between 1 and 200),
    description      text        not null default '' check (char_length(description) <= 5000),
    video_url        text        not null check (char_length(video_url) <= 2048),
    thumbnail_url    text        check (char_length(thumbnail_url) <= 2048),
    duration_seconds integer     check (duration_seconds between 0 and 86400),
    tags             text[]      not null default '{}' check (cardinality(tags) <= 20),
    view_count       bigint      not null default 0 check (view_count >= 0),
    status           text        not null default 'published' check (status in ('draft', 'published')),
    published_at     timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    version          bigint      not null default 1 check (version >= 1),
    -- Both feed orders sort on published_at, so a published video must have one.
    constraint videos_published_has_published_at check (status = 'draft' or published_at is not null)
);
