-- `version` and `updated_at` are maintained here, not by each writer: every
-- update that really changes a row bumps the version by exactly one, whoever
-- runs it (the write API, an operator's psql). An update that changes nothing
-- keeps the version, so a no-op PATCH needs no special case in the API.
create function videos_bump_version() returns trigger
language plpgsql as $$
begin
    if new is distinct from old then
        new.version := old.version + 1;
        new.updated_at := now();
    end if;
    return new;
end;
$$;

create trigger videos_bump_version
    before update on videos
    for each row execute function videos_bump_version();
