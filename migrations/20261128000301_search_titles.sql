-- Admin search (`q`) without rechecking every match. The trigram index on
-- videos.title made a search's exact total cost one heap visit and one
-- unaccent() per match: 130-600 ms for a word in 10% of a million titles.
-- Here the distinct folded titles form a dictionary that the trigram index
-- searches, `title_counts` holds per title (and tag) how many videos carry it,
-- and every `video_tags` row names its video's title: a search's total is a
-- sum over the matching titles, and its page is the listing's own index-only
-- walk filtered on those titles (or, for few matches, the matches fetched by
-- title and sorted). Maintained by the change trigger in the writing
-- transaction, like feed_counts and video_tags.

-- One row per distinct folded title (videos_search_text). Rows are never
-- deleted: a title nobody carries any more has zero counts and no listing
-- rows, so it matches nothing.
create table search_titles (
    id     bigint generated always as identity primary key,
    folded text   not null unique
);
create index search_titles_folded on search_titles using gin (folded gin_trgm_ops);

-- Videos per title and tag ('' = every video), like feed_counts per feed. A
-- video's tags count once each, as in video_tags.
create table title_counts (
    title_id  bigint not null,
    tag       text   not null,
    published bigint not null default 0,
    draft     bigint not null default 0,
    primary key (title_id, tag)
);

insert into search_titles (folded)
select distinct videos_search_text(title) from videos;

alter table video_tags add column title_id bigint;
update video_tags vt set title_id = s.id
from videos v join search_titles s on s.folded = videos_search_text(v.title)
where v.id = vt.video_id;
alter table video_tags alter column title_id set not null;

insert into title_counts (title_id, tag, published, draft)
select title_id, tag, count(*) filter (where status = 'published'), count(*) filter (where status = 'draft')
from video_tags
group by title_id, tag;

-- The listing's indexes carry the title, so a search page is an index-only
-- walk in the page's order that skips the videos whose title does not match.
drop index video_tags_newest;
drop index video_tags_popular;
drop index video_tags_published_newest;
drop index video_tags_draft_newest;
drop index video_tags_draft_popular;
create index video_tags_newest on video_tags (tag, sort_at desc, video_id desc)
    include (status, title_id);
create index video_tags_popular on video_tags (tag, view_count desc, sort_at desc, video_id desc)
    include (status, title_id);
create index video_tags_published_newest on video_tags (tag, sort_at desc, video_id desc)
    include (title_id) where status = 'published';
create index video_tags_draft_newest on video_tags (tag, sort_at desc, video_id desc)
    include (title_id) where status = 'draft';
create index video_tags_draft_popular on video_tags (tag, view_count desc, sort_at desc, video_id desc)
    include (title_id) where status = 'draft';
-- A rare search's matches, found by title (one row per video: tag '').
create index video_tags_title on video_tags (title_id) where tag = '';

-- Search no longer reads videos.title through an index.
drop index videos_title_search;
