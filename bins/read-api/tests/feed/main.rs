//! The public feed's contract: envelope, orders, filters, errors and headers.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod pages;
mod protocol;

use common::{at, NewVideo, TestApp};
use shared::cache::Scope;
use sqlx::PgPool;
use uuid::Uuid;

async fn insert_many(pool: &PgPool, n: i64, tags: &[&str]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(NewVideo::published(at(i)).tags(tags).insert(pool).await);
    }
    ids
}
