-- Admin console sessions. The cookie holds a random id; only its SHA-256
-- digest is stored, so a leaked table does not hand out sessions.
create table admin_sessions (
    id_hash bytea primary key,
    csrf_token text not null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now()
);
