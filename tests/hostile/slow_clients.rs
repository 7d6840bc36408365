//! Clients that send slowly or never finish their headers are cut off.

use super::*;

/// Sends `head` on a raw connection and returns what the server answers
/// before it closes the connection (bounded).
fn raw_exchange(addr: &str, head: &str, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_slow_client_gets_a_request_timeout(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let env = Env::for_test(&connect);
    let write = env.write_api_with(&[("REQUEST_TIMEOUT_MS", "500".into())]);
    let http = reqwest::Client::new();
    let ready = common::wait_until(Duration::from_secs(30), || async {
        http.get(write.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "write-api never became ready");
    let addr = write.addr.clone();
    // Headers, then never the promised body.
    let head = format!(
        "POST /v1/videos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":",
        common::ADMIN_TOKEN
    );
    let (answer, took) =
        tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {took:?}: {answer:?}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("\"status\":408"), "{answer}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The process is unharmed.
    let response = http.get(write.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A client that dribbles its headers and never finishes them (slowloris) is
/// cut off: `shared::http::serve` gives hyper a timer and a header read
/// timeout (`HEADER_READ_TIMEOUT`), without which such a connection would be
/// held forever.
#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_client_that_never_finishes_its_headers_is_cut_off(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let env = Env::for_test(&connect);
    let write = env.write_api_with(&[("REQUEST_TIMEOUT_MS", "500".into())]);
    let addr = write.addr.clone();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
    let (answer, took) =
        tokio::task::spawn_blocking(move || raw_exchange(&addr, &head, Duration::from_secs(40)))
            .await
            .unwrap();
    // The servers' header read timeout is 10 s.
    assert!(
        took < Duration::from_secs(15),
        "connection still open after {took:?}: {answer:?}"
    );
}
