-- Indexes that serve the two public feed orders directly (an index scan in
-- order, LIMIT stops early; keyset cursors seek into them). Partial: the public
-- feed only ever shows published videos, so drafts cost these indexes nothing.
create index videos_feed_newest on videos (published_at desc, id desc)
    where status = 'published';
create index videos_feed_popular on videos (view_count desc, published_at desc, id desc)
    where status = 'published';
