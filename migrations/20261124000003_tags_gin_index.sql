-- Tag filters (`tags @> array[$tag]`) on the admin listing and on rare tags of
-- the public feed, where walking a feed-order index would skip too many rows.
create index videos_tags on videos using gin (tags);
