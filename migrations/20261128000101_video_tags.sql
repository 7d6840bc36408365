-- The admin listing's order, per tag: one row per video and tag, plus tag ''
-- for every video, with the sort keys and status. A page of any listing
-- (status all/draft/published, newest/popular, a tag or none) is an
-- index-only scan along one of the indexes below, so page 500 skips 10,000
-- index entries instead of fetching and sorting rows; cursors seek straight
-- to their position. Maintained by the change trigger in the writing
-- transaction.
--
-- `sort_at` is published_at with null (an undated draft) as 'infinity': such
-- drafts sort first in descending order, as in the listing, and the keyset
-- becomes a plain row comparison.
create table video_tags (
    tag        text        not null,
    status     text        not null,
    sort_at    timestamptz not null,
    view_count bigint      not null,
    video_id   uuid        not null
);

insert into video_tags (tag, status, sort_at, view_count, video_id)
select t.tag, v.status, coalesce(v.published_at, 'infinity'), v.view_count, v.id
from videos v
cross join lateral (select distinct u from unnest(array[''] || v.tags) u) as t(tag);

-- Status all; the trigger also finds a video's rows by this key.
create index video_tags_newest on video_tags (tag, sort_at desc, video_id desc);
-- Status all and published (drafts have few views and sort last here, so
-- filtering them out on the included status skips next to nothing).
create index video_tags_popular on video_tags (tag, view_count desc, sort_at desc, video_id desc)
    include (status);
-- Published, newest: undated drafts sort first in this order, so a filter
-- would skip all of them on every page; its own index skips none.
create index video_tags_published_newest on video_tags (tag, sort_at desc, video_id desc)
    where status = 'published';
-- Drafts are few: their own small indexes, so a draft page skips no
-- published rows.
create index video_tags_draft_newest on video_tags (tag, sort_at desc, video_id desc)
    where status = 'draft';
create index video_tags_draft_popular on video_tags (tag, view_count desc, sort_at desc, video_id desc)
    where status = 'draft';
