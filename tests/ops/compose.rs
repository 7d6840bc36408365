//! `compose.yaml` sets only settings the binaries accept, wires health checks
//! and dependencies, publishes the ports the services listen on, and is valid
//! for docker compose; each check also rejects the drift it is meant to catch.

use super::*;

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
