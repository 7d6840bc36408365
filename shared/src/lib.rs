//! What the three services share: the domain types and their validation, the
//! feed's query parameters, cursors and envelope, change events and the cache
//! scopes they purge, the cache-key scheme, configuration pieces, the
//! problem+json error type, telemetry and shutdown. The cache and the change
//! events that name its scopes are behind the `cache` feature, which only the
//! read API and the invalidator enable: write-api never builds Redis.

#[cfg(feature = "cache")]
pub mod cache;
pub mod config;
pub mod db;
pub mod domain;
#[cfg(feature = "cache")]
pub mod events;
pub mod feed;
pub mod http;
pub mod openapi;
pub mod problem;
pub mod shutdown;
pub mod telemetry;

pub use problem::{FieldError, Problem};
