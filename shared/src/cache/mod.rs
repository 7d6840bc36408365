//! The cache's key scheme and fencing protocol, shared by the read API (which
//! reads and stores entries) and the invalidator (which purges them).
//!
//! # Scheme
//!
//! A *scope* is a set of entries purged together: the whole feed, one tag's
//! feed, or one video's detail. Each scope has a *generation* key holding a
//! random token; an entry is stored under its scope, the global *epoch*, the
//! scope's generation and the normalized request:
//!
//! ```text
//! {prefix}epoch                                   -> epoch token
//! {prefix}{<scope>}:gen                           -> generation token (TTL 24 h)
//! {prefix}{<scope>}:e:<epoch>:<generation>:<req>  -> cached response (TTL CACHE_TTL_SECONDS)
//! ```
//!
//! `<scope>` is `feed`, `tag:<percent-encoded tag>` or `video:<uuid>`; the braces
//! make it the Redis Cluster hash tag, so a scope's keys share one slot and the
//! read script touches one slot. `<req>` is built from the parsed query
//! ([`request_key`]), so unknown parameters never reach it.
//!
//! # Why a stale page can never be stored (guarantee 2)
//!
//! A purge replaces the scope's generation with a fresh random token. A reader
//! reads the generation *before* it queries Postgres (in the same script that
//! looks up the entry) and stores its page only under that generation. If a
//! write commits and is purged between the reader's query and its store, the
//! reader stores under the replaced token, which no later read looks up: its
//! pre-write page is unreachable and expires by TTL.
//!
//! A generation never takes again a value that older entries may be stored
//! under, because tokens are 64 random bits, never counters: if Redis evicts or
//! loses a generation key, the next reader adopts a fresh token (a miss), never
//! an old one. Redis restored from an old snapshot brings back old generations
//! with their entries, and a promoted cluster replica may lack the last
//! purges; every process watches who serves each slot (`run_id`, and in a
//! cluster the master's address) and, when that changes, replaces the epoch,
//! which orphans every entry at once (guarantee 7; see `epoch`).

mod connection;
mod entry;
mod epoch;
mod fence;
mod keys;
mod slots;
mod topology;

pub use connection::{RedisConn, RedisTarget};
pub use entry::CachedResponse;
pub use epoch::{EpochWatch, Synced};
pub use fence::{new_token, purge, ReadScript, GENERATION_TTL_SECONDS};
pub use keys::{request_key, KeySpace, Scope, DETAIL_REQUEST};
pub use slots::{hash_slot, HASH_SLOTS};
pub use topology::{redis_run_id, Master, Topology};
