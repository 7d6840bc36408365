//! The operational artefacts stay true to the binaries: every metric the
//! Grafana dashboard and the Prometheus alert rules name is really exported,
//! and `compose.yaml` sets only settings the binaries accept, wires health
//! checks and dependencies, and publishes the ports the services listen on.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

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

// ---------------------------------------------------------------------------
// Metric names in PromQL

/// Words of PromQL that look like metric names but are not.
const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
];

/// Series Prometheus makes itself for every target.
const SYNTHETIC_SERIES: &[&str] = &["up", "scrape_duration_seconds", "scrape_samples_scraped"];

/// The metric names an expression selects: identifiers outside label
/// matchers, ranges, strings and grouping clauses, not called as functions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Set after `by`/`without`/`on`/...: the next parenthesis lists labels.
    let mut label_list_next = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += if chars[i] == '\\' { 2 } else { 1 };
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if label_list_next => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                label_list_next = false;
            }
            // Grafana variables: $__rate_interval, ${datasource}.
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers and durations (0.99, 5m, 1e3).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let following: String = chars[next..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                // `f(`, and aggregations written `sum by (l) (...)`.
                let called = chars.get(next) == Some(&'(')
                    || ["by", "without"].contains(&following.to_ascii_lowercase().as_str());
                let lower = word.to_ascii_lowercase();
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&lower.as_str())
                {
                    label_list_next = true;
                } else if !called && !PROMQL_KEYWORDS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_skip_functions_labels_strings_and_durations() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{job="x",le!~"1|2"}[5m])))
           / on() group_left sum without (instance) (increase(b_total{status=~"5.."}[$__rate_interval] offset 1h))
           and c > 0.5 or absent(up{job="y"} == 1) unless d_gauge"#,
    );
    let want: BTreeSet<String> = ["a_seconds_bucket", "b_total", "c", "up", "d_gauge"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, want);
    assert!(balanced(r#"sum(rate(x{a="(]"}[5m]))"#));
    assert!(!balanced("sum(rate(x[5m))"));
    assert!(!balanced(r#"x{a="b}"#));
}

/// Whether (), {} and [] nest properly outside strings: catches the typo
/// PromQL would reject at load time, which no Prometheus runs here to see.
fn balanced(expr: &str) -> bool {
    let mut open = Vec::new();
    let mut quote = None;
    let mut escaped = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '{' | '[' => open.push(c),
            ')' | '}' | ']' => {
                let want = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if open.pop() != Some(want) {
                    return false;
                }
            }
            _ => {}
        }
    }
    open.is_empty() && quote.is_none()
}

/// Every PromQL expression of the alert rules and the dashboard, with where
/// it came from.
fn ops_expressions() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let rules = load_yaml("ops/prometheus/alerts.yml");
    let groups = rules["groups"].as_vec().unwrap();
    assert!(!groups.is_empty());
    for group in groups {
        for rule in group["rules"].as_vec().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap()
                .to_owned();
            let expr = rule["expr"].as_str().unwrap().to_owned();
            if rule["alert"].as_str().is_some() {
                assert!(
                    rule["labels"]["severity"].as_str().is_some()
                        && rule["annotations"]["summary"].as_str().is_some(),
                    "alert {name} needs labels.severity and annotations.summary"
                );
            }
            exprs.push((format!("alert {name}"), expr));
        }
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("ops/grafana/videofeed.json")).unwrap(),
    )
    .unwrap();
    fn walk(node: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match node {
            Value::Object(map) => {
                let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                    out.push((format!("panel {title:?}"), expr.to_owned()));
                }
                for value in map.values() {
                    walk(value, title, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, title, out)),
            _ => {}
        }
    }
    let before = exprs.len();
    walk(&dashboard, "", &mut exprs);
    assert!(exprs.len() > before, "the dashboard has no PromQL targets");
    for (from, expr) in &exprs {
        assert!(balanced(expr), "{from}: unbalanced brackets in {expr}");
    }
    exprs
}

#[test]
fn alerts_cover_the_promised_signals_and_name_scraped_jobs() {
    let exprs = ops_expressions();
    let alerts: String = exprs
        .iter()
        .filter(|(from, _)| from.starts_with("alert"))
        .map(|(_, e)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for (signal, needle) in [
        ("invalidation lag", "invalidation_lag_seconds_bucket"),
        ("checkpoint lag", "invalidator_checkpoint_lag"),
        ("bypass rate", r#"result="bypass""#),
        ("5xx rate", r#"status=~"5..""#),
    ] {
        assert!(alerts.contains(needle), "no alert on {signal} ({needle})");
    }
    // Every job an expression selects is one the scrape config defines.
    let scrape = load_yaml("ops/prometheus/prometheus.yml");
    let jobs: BTreeSet<String> = scrape["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c["job_name"].as_str().unwrap().to_owned())
        .collect();
    for (from, expr) in &exprs {
        for (i, _) in expr.match_indices("job") {
            let rest = &expr[i + 3..];
            let Some(value) = rest
                .strip_prefix("=\"")
                .or_else(|| rest.strip_prefix("=~\""))
            else {
                continue;
            };
            let value = &value[..value.find('"').unwrap()];
            for job in value.split('|') {
                assert!(jobs.contains(job), "{from}: job {job:?} is not scraped");
            }
        }
    }
    let rule_files = scrape["rule_files"].as_vec().unwrap();
    assert!(rule_files.iter().any(|f| f.as_str() == Some("alerts.yml")));
}

/// The names of the samples of a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_metric_the_dashboard_and_alerts_name_is_exported(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let referenced: BTreeMap<String, String> = ops_expressions()
        .into_iter()
        .flat_map(|(from, expr)| {
            metric_names(&expr)
                .into_iter()
                .map(move |n| (n, from.clone()))
        })
        .filter(|(name, _)| !SYNTHETIC_SERIES.contains(&name.as_str()))
        .collect();
    assert!(referenced.len() >= 8, "{referenced:?}");

    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let stack = Stack::start(Env::for_test(&connect)).await;
    // Traffic: a write (purged by the invalidator), a MISS then a HIT, a
    // detail read and a 404.
    let id = stack.create("Ops look", &["ops"], "published").await;
    stack.warm("/v1/videos?tag=ops").await;
    stack.get(&format!("/v1/videos/{id}")).await;
    stack.get(&format!("/v1/videos/{}", Uuid::new_v4())).await;
    // A database restored from a backup: the checkpoint goes back. The
    // invalidator must answer with an epoch replacement.
    let invalidated = wait_until(Duration::from_secs(10), || async {
        common::seq_and_checkpoint(&pool).await.1 > 0
    })
    .await;
    assert!(invalidated, "the create was never checkpointed");
    sqlx::query("update invalidator_checkpoints set seq = 0")
        .execute(&pool)
        .await
        .unwrap();
    stack.create("Ops look 2", &["ops"], "published").await;

    // The error counters exist once an error happened: an invalidator whose
    // Postgres is unreachable, and one whose Redis is.
    // (Each Env outlives its process: dropping it deletes the prefix's keys.)
    let no_postgres_env = Env::new("postgres://postgres@127.0.0.1:1/nowhere".into());
    let no_postgres = no_postgres_env.invalidator();
    let mut no_redis_env = Env::new(stack.env.database_url.clone());
    no_redis_env.redis_url = "redis://127.0.0.1:1".into();
    let no_redis = no_redis_env.invalidator_with(&[("INVALIDATOR_NAME", "no-redis".into())]);

    let procs = [
        &stack.read,
        &stack.write,
        &stack.invalidator,
        &no_postgres,
        &no_redis,
    ];
    let scrape = || async {
        let mut samples = BTreeSet::new();
        for proc in procs {
            samples.extend(exported(&stack.metrics(proc).await));
        }
        samples
    };
    let complete = wait_until(Duration::from_secs(20), || async {
        let samples = scrape().await;
        referenced.keys().all(|name| samples.contains(name))
    })
    .await;
    let samples = scrape().await;
    let missing: Vec<String> = referenced
        .iter()
        .filter(|(name, _)| !samples.contains(*name))
        .map(|(name, from)| format!("{name} (in {from})"))
        .collect();
    assert!(
        complete,
        "named in ops/ but not exported: {missing:?}\nexported: {samples:?}"
    );
}

// ---------------------------------------------------------------------------
// compose.yaml

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

#[test]
fn compose_sets_only_what_the_binaries_accept_and_wires_health_and_ports() {
    check_compose(&compose());
}

/// The check above fails on each kind of drift it is meant to catch.
#[test]
fn the_compose_check_rejects_drift() {
    type Mutation = fn(&mut yaml_rust2::yaml::Hash);
    fn services(root: &mut yaml_rust2::yaml::Hash) -> &mut Yaml {
        root.get_mut(&Yaml::String("services".into())).unwrap()
    }
    fn set(node: &mut Yaml, path: &[&str], value: Yaml) {
        let (last, parents) = path.split_last().unwrap();
        let mut node = node;
        for key in parents {
            node = &mut node[*key];
        }
        node.as_mut_hash()
            .unwrap()
            .insert(Yaml::String((*last).into()), value);
    }
    let mutations: [(&str, Mutation); 5] = [
        ("an env var no binary reads", |root| {
            set(
                services(root),
                &["read-api", "environment", "CACHE_TTL_SECOND"],
                Yaml::Integer(300),
            );
        }),
        ("a published port that is not the listening one", |root| {
            set(
                services(root),
                &["write-api", "ports"],
                Yaml::Array(vec![Yaml::String("9090:9090".into())]),
            );
        }),
        ("a loopback LISTEN_ADDR", |root| {
            set(
                services(root),
                &["invalidator", "environment", "LISTEN_ADDR"],
                Yaml::String("127.0.0.1:8082".into()),
            );
        }),
        ("waiting for a service without a health check", |root| {
            services(root)["redis"]
                .as_mut_hash()
                .unwrap()
                .remove(&Yaml::String("healthcheck".into()));
        }),
        ("a required setting left out", |root| {
            services(root)["invalidator"]["environment"]
                .as_mut_hash()
                .unwrap()
                .remove(&Yaml::String("REDIS_URL".into()));
        }),
    ];
    for (what, mutate) in mutations {
        let Yaml::Hash(mut root) = compose() else {
            panic!("compose.yaml is not a mapping")
        };
        mutate(&mut root);
        let mutated = Yaml::Hash(root);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_compose(&mutated);
        }));
        assert!(caught.is_err(), "the compose check accepted {what}");
    }
}

fn check_compose(compose: &Yaml) {
    for name in SERVICES {
        service(compose, name);
    }
    let postgres_env = environment(service(compose, "postgres"));
    let expected_database_url = format!(
        "postgres://{}:{}@postgres:5432/{}",
        postgres_env["POSTGRES_USER"],
        postgres_env["POSTGRES_PASSWORD"],
        postgres_env["POSTGRES_DB"]
    );
    for backing in ["postgres", "redis"] {
        assert!(
            healthcheck(service(compose, backing)).is_some(),
            "{backing} needs a health check (others wait for service_healthy)"
        );
    }

    // The help parser itself: known settings and required options.
    let invalidator = settings(&["invalidator".to_owned()]);
    assert!(invalidator.env.contains("OUTBOX_RETENTION_HOURS"));
    let required: Vec<&str> = invalidator.required.iter().map(String::as_str).collect();
    assert_eq!(required, ["DATABASE_URL", "REDIS_URL"]);

    let mut ops_targets = BTreeSet::new();
    for name in ["migrate", "write-api", "invalidator", "read-api"] {
        let svc = service(compose, name);
        let command = command(svc);
        let settings = settings(&command);
        let env = environment(svc);
        for key in env.keys() {
            assert!(
                settings.env.contains(key),
                "{name}: {key} is not a setting of `{}` (--help lists {:?})",
                command.join(" "),
                settings.env
            );
        }
        for key in &settings.required {
            assert!(env.contains_key(key), "{name}: required {key} is not set");
        }
        assert_eq!(
            env.get("DATABASE_URL"),
            Some(&expected_database_url),
            "{name}: DATABASE_URL must match the postgres service"
        );
        if settings.env.contains("REDIS_URL") {
            let url = env
                .get("REDIS_URL")
                .unwrap_or_else(|| panic!("{name}: REDIS_URL is unset"));
            assert!(url.starts_with("redis://redis:6379"), "{name}: {url}");
        }

        let deps = depends_on(svc);
        assert!(!deps.is_empty(), "{name} depends on nothing");
        for (dep, condition) in &deps {
            let target = service(compose, dep);
            match condition.as_str() {
                "service_healthy" => assert!(
                    healthcheck(target).is_some(),
                    "{name} waits for {dep} to be healthy, but {dep} has no health check"
                ),
                "service_completed_successfully" => {
                    assert_eq!(target["restart"].as_str(), Some("no"), "{dep} is one-shot")
                }
                other => panic!(
                    "{name}: depends_on {dep} with condition {other}: use a health condition"
                ),
            }
        }
        if name == "migrate" {
            assert_eq!(command, ["write-api", "migrate"]);
            assert_eq!(
                deps.get("postgres").map(String::as_str),
                Some("service_healthy")
            );
            continue;
        }
        assert_eq!(
            deps.get("migrate").map(String::as_str),
            Some("service_completed_successfully"),
            "{name} must start after the migrations"
        );
        if env.contains_key("REDIS_URL") {
            assert_eq!(
                deps.get("redis").map(String::as_str),
                Some("service_healthy")
            );
        }

        // Listens on every interface (else unreachable from outside its
        // container), publishes that port, and checks its health there.
        let listen = env
            .get("LISTEN_ADDR")
            .unwrap_or_else(|| panic!("{name}: LISTEN_ADDR must be set (the default is loopback)"));
        let (host, port) = listen.rsplit_once(':').unwrap();
        assert_eq!(host, "0.0.0.0", "{name}: LISTEN_ADDR {listen}");
        let published = ports(svc);
        assert!(
            published.iter().any(|(_, container)| container == port),
            "{name}: listens on {port} but publishes {published:?}"
        );
        let check = healthcheck(svc).unwrap_or_else(|| panic!("{name} has no health check"));
        assert!(
            check.contains(&format!("/{port}")) && check.contains("/readyz"),
            "{name}: health check does not probe /readyz on {port}: {check}"
        );
        // Docker's SIGKILL must not cut the graceful drain short.
        let grace_ms: u64 = env
            .get("SHUTDOWN_GRACE_MS")
            .map_or(10_000, |ms| ms.parse().unwrap());
        let stop_ms = svc["stop_grace_period"]
            .as_str()
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(10_000, |s| s * 1000);
        assert!(
            stop_ms > grace_ms,
            "{name}: stop_grace_period ({stop_ms} ms) must exceed SHUTDOWN_GRACE_MS ({grace_ms} ms)"
        );
        ops_targets.insert(format!("{name}:{port}"));
    }
    // read-api waits for the invalidator: serving before invalidation runs
    // would let cached pages outlive writes.
    assert_eq!(
        depends_on(service(compose, "read-api"))
            .get("invalidator")
            .map(String::as_str),
        Some("service_healthy")
    );

    // The Prometheus scrape config reaches the services where compose puts them.
    let scrape = load_yaml("ops/prometheus/prometheus.yml");
    let targets: BTreeSet<String> = scrape["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|c| c["static_configs"].as_vec().unwrap().iter())
        .flat_map(|s| s["targets"].as_vec().unwrap().iter())
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        targets, ops_targets,
        "ops/prometheus/prometheus.yml targets"
    );
}

/// The Compose client to validate `compose.yaml` with: the `docker compose`
/// plugin, else the standalone `docker-compose` (Debian's package, which
/// scripts/test installs when it can; `config` needs no Docker engine).
fn compose_client() -> Option<Vec<&'static str>> {
    [vec!["docker", "compose"], vec!["docker-compose"]]
        .into_iter()
        .find(|client| {
            Command::new(client[0])
                .args(&client[1..])
                .arg("version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

#[test]
fn compose_config_is_valid_for_docker_compose() {
    let Some(client) = compose_client() else {
        // Never a silent pass in CI: there the client is part of the toolchain.
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "no Compose client (`docker compose` or `docker-compose`); scripts/test installs one"
        );
        eprintln!("SKIPPED: no Compose client (`docker compose` or `docker-compose`); run scripts/test to install one");
        return;
    };
    let output = Command::new(client[0])
        .args(&client[1..])
        .args(["-f", "compose.yaml", "config", "-q"])
        .current_dir(root())
        .env("ADMIN_TOKENS", "compose-config-check")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} config: {}",
        client.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_compose_config_check_rejects_a_broken_file() {
    let Some(client) = compose_client() else {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "no Compose client"
        );
        eprintln!("SKIPPED: no Compose client");
        return;
    };
    let dir = std::env::temp_dir().join(format!("compose-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("compose.yaml");
    // A service with a key Compose does not know.
    std::fs::write(
        &broken,
        "services:\n  web:\n    image: busybox\n    not_a_compose_key: 1\n",
    )
    .unwrap();
    let status = Command::new(client[0])
        .args(&client[1..])
        .arg("-f")
        .arg(&broken)
        .args(["config", "-q"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        !status.success(),
        "{} accepted a broken file",
        client.join(" ")
    );
}
