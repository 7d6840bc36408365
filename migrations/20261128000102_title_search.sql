-- Admin search (`q`): titles containing a text, case- and accent-insensitive.
-- A trigram GIN index serves `LIKE '%text%'` for 3+ character texts (shorter
-- ones fall back to a scan). Both extensions are contrib modules marked
-- trusted, so the migrating role needs no superuser.
create extension if not exists pg_trgm;
create extension if not exists unaccent;

-- The folded form of a title that search compares: lower case, accents
-- removed. Immutable (so indexable) because it names its dictionary and
-- schema explicitly rather than following search_path.
create function videos_search_text(text) returns text
language sql immutable strict parallel safe
return lower(public.unaccent('public.unaccent'::regdictionary, $1));

create index videos_title_search on videos using gin (videos_search_text(title) gin_trgm_ops);
