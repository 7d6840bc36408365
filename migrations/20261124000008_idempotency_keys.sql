-- Responses of creates made with an Idempotency-Key, replayed when the same key
-- comes again with the same body. The primary key makes a concurrent duplicate
-- wait for the first request's transaction and then see its row.
create table idempotency_keys (
    key           text        primary key check (char_length(key) between 1 and 255),
    request_hash  bytea       not null,
    status        smallint    not null,
    response_body bytea       not null,
    location      text,
    etag          text,
    created_at    timestamptz not null default now()
);
create index idempotency_keys_created_at on idempotency_keys (created_at);
