//! Hostile input against the real binaries: property tests over query strings
//! and request bodies, bounded fuzzing of the cursor decoder and the body
//! validation, and the nasty cases by name. Never a panic, never a 5xx, every
//! 4xx a problem+json whose `status` is the HTTP status.
//!
//! The long fuzzing mode is `cargo fuzz` in `fuzz/` (docs/reliability.md).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod named;
mod random;
mod slow_clients;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use common::{assert_clean, Env, Stack};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::{
    domain::{parse_batch, NewVideo, VideoPatch},
    feed::{Cursor, FeedQuery},
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Cases per property against the running stack (each is an HTTP round trip).
const HTTP_CASES: usize = 96;

/// `n` values of `strategy` (random seed: every run explores new inputs; a
/// failure message carries the input).
fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::default();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

const FIELDS: [&str; 13] = [
    "id",
    "title",
    "description",
    "video_url",
    "thumbnail_url",
    "duration_seconds",
    "tags",
    "view_count",
    "status",
    "published_at",
    "created_at",
    "updated_at",
    "version",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&FIELDS[..]).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        "\\PC{0,40}".prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        proptest::sample::select(vec![
            "",
            " ",
            "draft",
            "published",
            "https://cdn.example.com/v.mp4",
            "javascript:alert(1)",
            "2026-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "'; drop table videos; --",
            "\u{202e}\u{200d}\u{0301}",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like a video, each field valid or junk: most requests get
/// past the syntax checks into the validation.
fn video_like() -> impl Strategy<Value = Value> {
    let valid = [
        ("title", json!("A title")),
        ("video_url", json!("https://cdn.example.com/v/1.mp4")),
        ("tags", json!(["summer", "Linen "])),
        ("status", json!("published")),
        ("view_count", json!(3)),
        ("duration_seconds", json!(60)),
        ("description", json!("")),
        ("thumbnail_url", Value::Null),
        ("published_at", json!("2026-01-01T00:00:00Z")),
    ];
    let fields: Vec<_> = valid
        .into_iter()
        .map(|(name, good)| {
            prop_oneof![
                16 => Just(Some(good)),
                1 => Just(None),
                2 => json_value().prop_map(Some),
            ]
            .prop_map(move |v| v.map(|v| (name.to_owned(), v)))
        })
        .collect();
    (
        fields,
        proptest::option::weighted(0.2, (field_name(), json_value())),
    )
        .prop_map(|(fields, extra)| {
            Value::Object(fields.into_iter().flatten().chain(extra).collect())
        })
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..200).prop_map(|n| n.to_string()),
        Just("99999999999999999999".to_owned()),
        Just("%zz".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("%".to_owned()),
        Just("%00".to_owned()),
        Just("newest".to_owned()),
        Just("popular".to_owned()),
        Just("AQAAAA".to_owned()),
        "[A-Za-z0-9_-]{0,60}",
        "\\PC{0,20}",
        "[%&=+;#?/ a-z0-9]{0,20}",
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => proptest::sample::select(vec!["page", "page_size", "sort", "tag", "cursor", "status"])
            .prop_map(str::to_owned),
        1 => "[a-z%_]{0,8}",
    ];
    proptest::collection::vec((key, query_value(), any::<bool>()), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { k })
            .collect::<Vec<_>>()
            .join("&")
    })
}
