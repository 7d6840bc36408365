//! The workspace's one way to wait for a condition: polled, with a deadline.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// Polls `condition` every 20 ms until it returns true (→ `true`) or `timeout`
/// has passed (→ `false`). A condition still running at the deadline is
/// abandoned, so this returns in bounded time whatever the condition does.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, condition()).await {
            Ok(true) => return true,
            Ok(false) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_reports_success_and_gives_up_at_the_deadline() {
        let mut calls = 0;
        assert!(
            wait_until(Duration::from_secs(2), || {
                calls += 1;
                let done = calls >= 3;
                async move { done }
            })
            .await
        );
        assert_eq!(calls, 3);

        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(200), || async { false }).await);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );

        // A condition that never finishes is abandoned at the deadline.
        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(200), std::future::pending::<bool>).await);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
