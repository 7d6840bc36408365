//! Every metric the Grafana dashboard and the Prometheus alert rules name
//! (PromQL read by a small parser) is really exported by the binaries.

use super::*;

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
