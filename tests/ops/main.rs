//! The operational artefacts stay true to the binaries: every metric the
//! Grafana dashboard and the Prometheus alert rules name is really exported,
//! and `compose.yaml` sets only settings the binaries accept, wires health
//! checks and dependencies, and publishes the ports the services listen on.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

#[path = "../common/mod.rs"]
mod common;

mod compose;
mod metrics;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use common::{bin_dir, wait_until, Env, Stack};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load_yaml(relative: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(relative)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "{relative}: one YAML document expected");
    resolve_merge_keys(docs.remove(0))
}

/// Applies YAML merge keys (`<<: *anchor`), which compose files use and the
/// YAML 1.2 loader leaves as an ordinary `<<` entry. Explicit keys win.
fn resolve_merge_keys(node: Yaml) -> Yaml {
    match node {
        Yaml::Hash(hash) => {
            let mut merged = yaml_rust2::yaml::Hash::new();
            let mut explicit = yaml_rust2::yaml::Hash::new();
            for (key, value) in hash {
                let value = resolve_merge_keys(value);
                if key.as_str() == Some("<<") {
                    let sources = match value {
                        Yaml::Array(all) => all,
                        one => vec![one],
                    };
                    for source in sources {
                        for (k, v) in source.into_hash().unwrap() {
                            merged.insert(k, v);
                        }
                    }
                } else {
                    explicit.insert(key, value);
                }
            }
            merged.extend(explicit);
            Yaml::Hash(merged)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(resolve_merge_keys).collect()),
        other => other,
    }
}

/// A scalar as compose reads it (ports and counts may be numbers).
fn scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

// The compose file as the checks read it: its services, their settings and
// wiring.

const SERVICES: &[&str] = &[
    "postgres",
    "redis",
    "migrate",
    "write-api",
    "invalidator",
    "read-api",
];

/// Settings of one binary (sub)command, from its `--help`: every env var,
/// and those of the required options.
struct Settings {
    env: BTreeSet<String>,
    required: BTreeSet<String>,
}

fn settings(command: &[String]) -> Settings {
    let output = Command::new(bin_dir().join(&command[0]))
        .args(&command[1..])
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{command:?} --help failed");
    let help = String::from_utf8(output.stdout).unwrap();
    // `--database-url <DATABASE_URL>` in the help body, `[env: DATABASE_URL=]`
    // (or without `=`) after it.
    let mut env_of_flag = BTreeMap::new();
    let mut flag = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            flag = trimmed
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|f| f.trim_end_matches(',').to_owned());
        }
        if let (Some(f), Some(i)) = (&flag, line.find("[env: ")) {
            let name: String = line[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            env_of_flag.insert(f.clone(), name);
        }
    }
    // Required options are those the usage line names outside `[OPTIONS]`.
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap()
        .to_owned();
    let required = usage
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|f| {
            env_of_flag
                .get(f)
                .unwrap_or_else(|| panic!("{command:?}: required --{f} has no env var"))
                .clone()
        })
        .collect();
    Settings {
        env: env_of_flag.into_values().collect(),
        required,
    }
}

fn compose() -> Yaml {
    load_yaml("compose.yaml")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(!service.is_badvalue(), "compose.yaml has no service {name}");
    service
}

fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Hash(hash) => hash
            .iter()
            .map(|(k, v)| (scalar(k).unwrap(), scalar(v).unwrap_or_default()))
            .collect(),
        Yaml::Array(items) => items
            .iter()
            .map(|i| {
                let item = i.as_str().unwrap();
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn command(service: &Yaml) -> Vec<String> {
    match &service["command"] {
        Yaml::Array(items) => items.iter().map(|i| scalar(i).unwrap()).collect(),
        Yaml::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        other => panic!("command must be given explicitly, not {other:?}"),
    }
}

fn depends_on(service: &Yaml) -> BTreeMap<String, String> {
    service["depends_on"]
        .as_hash()
        .map(|hash| {
            hash.iter()
                .map(|(k, v)| {
                    (
                        scalar(k).unwrap(),
                        v["condition"]
                            .as_str()
                            .unwrap_or("service_started")
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn healthcheck(service: &Yaml) -> Option<String> {
    match &service["healthcheck"]["test"] {
        Yaml::Array(items) => Some(
            items
                .iter()
                .filter_map(scalar)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Yaml::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `host:container` pairs of the published ports.
fn ports(service: &Yaml) -> Vec<(String, String)> {
    service["ports"]
        .as_vec()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    let p = scalar(p).unwrap();
                    let p = p.split('/').next().unwrap();
                    // [ip:]host:container, or container alone.
                    let mut parts = p.rsplit(':');
                    let container = parts.next().unwrap().to_owned();
                    let host = parts.next().map_or(container.clone(), str::to_owned);
                    (host, container)
                })
                .collect()
        })
        .unwrap_or_default()
}
