-- Video counts per feed, so totals never need a count(*) scan. `tag = ''` is
-- the whole feed (a real tag is at least one character). Maintained by the
-- change trigger in the same transaction as the change.
create table feed_counts (
    tag       text   primary key,
    published bigint not null default 0,
    draft     bigint not null default 0
);
insert into feed_counts (tag) values ('');
