//! The real binary: configuration from the environment, the logged listen
//! address, and a graceful SIGTERM (stop accepting, finish in-flight, exit 0).

#![allow(clippy::unwrap_used)]

mod common;

use std::{path::Path, time::Duration};

use common::{at, wait_until, NewVideo};
use sqlx::PgPool;
use test_support::{process::Proc, RedisKeysGuard};
use tokio::process::Command;

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn sigterm_finishes_in_flight_requests_and_exits_0(pool: PgPool) {
    NewVideo::published(at(1)).insert(&pool).await;
    let prefix = common::random_prefix();
    let _keys = RedisKeysGuard::new(common::redis(), prefix.clone());
    let mut read_api = Proc::start_exe(
        Path::new(env!("CARGO_BIN_EXE_read-api")),
        &[],
        &[
            ("DATABASE_URL", common::database_url(&pool)),
            ("REDIS_URL", common::redis().to_owned()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
        ],
    );
    let addr = read_api.addr.clone();
    let base = format!("http://{addr}");
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );

    // Hold a request in flight: its query waits for a table lock.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("lock table videos in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();
    let in_flight = tokio::spawn(reqwest::get(format!("{base}/v1/videos")));
    assert!(
        wait_until(Duration::from_secs(10), || async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from pg_stat_activity
                 where datname = current_database()
                   and application_name = 'read-api' and wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        })
        .await,
        "the request is waiting in Postgres"
    );

    read_api.sigterm();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(&addr).await.is_err()
        })
        .await,
        "stops accepting"
    );
    lock.rollback().await.unwrap();

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "the in-flight request finished");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["total_videos"], 1);
    let status = read_api.wait_exit(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn help_documents_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_read-api"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for env in [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_KEY_PREFIX",
        "LISTEN_ADDR",
        "CACHE_TTL_SECONDS",
        "LOCAL_CACHE_BYTES",
        "REDIS_TIMEOUT_MS",
        "REDIS_COOLOFF_MS",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(env), "--help lacks {env}");
    }
}
