//! End-to-end tests of the write API: each test starts the app (port 0) on its
//! own migrated database and drives it over HTTP.
#![allow(clippy::unwrap_used)]

mod auth;
mod availability;
mod batch;
mod common;
mod create;
mod errors;
mod idempotency;
mod items;
mod listing;
mod search;
mod statistics;
