//! Faults, then the truth. Each test breaks one dependency of the running
//! stack (private Redis or Postgres servers, never the shared ones), checks
//! what the contract promises while it is broken (status codes, `X-Cache`,
//! `Retry-After`, `/readyz`, bounded latency), heals it without restarting any
//! process, and then compares every page the read API serves with the truth
//! the test computes itself with its own SQL.
//!
//! Figures (worst latency, time to recover, 503 counts) are printed to
//! stderr: `cargo test --test fault_consistency -- --nocapture`.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod churn;
mod invalidator_crash;
mod load;
mod postgres_faults;
mod redis_faults;
mod truth;

use std::time::Duration;

/// Reconnects and backoff after a heal, not the one-second promise.
const RECOVERY: Duration = Duration::from_secs(20);
/// Once the invalidator has caught up, how long the served pages may take to
/// equal the truth.
const CONVERGE: Duration = Duration::from_secs(2);
/// The breaker's promise: a dead or hung Redis never makes a read wait this
/// long (bounded, not hung: an unbounded Redis call would run into the HTTP
/// client's 10 s timeout; how fast bypassed reads are is the benchmarks' job).
const BOUNDED: Duration = Duration::from_secs(3);
/// How long after Redis fails an in-process (L1) copy may still answer: its
/// tracking lease (250 ms) plus a heartbeat period and scheduling slack.
const L1_LEASE_GRACE: Duration = Duration::from_millis(500);
/// A tag the seed gives many videos (second in its vocabulary).
const TAG: &str = "summer";
