//! The workspace root package: it exists to hold the end-to-end tests in
//! `tests/`, which start the real `write-api`, `read-api` and `invalidator`
//! binaries against real Postgres and Redis.
