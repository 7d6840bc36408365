//! A test's Redis keys: a fresh prefix per test, deleted when the test ends.

use std::time::Duration;

/// Deletes every key under a test's prefix from the Redis at `url` when
/// dropped, so that a run leaves nothing in a shared Redis: the binaries write
/// keys without a TTL (the epoch, the invalidator's high-water mark). Also on
/// a failing test (drop runs while unwinding). Best effort and bounded: an
/// unreachable or clustered (comma-separated) URL is left alone; private
/// servers take their keys with them.
#[derive(Debug)]
pub struct RedisKeysGuard {
    url: String,
    prefix: String,
}

impl RedisKeysGuard {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
        }
    }

    /// A prefix no other test uses, `{kind}:<random>:`, guarded.
    pub fn fresh(url: impl Into<String>, kind: &str) -> Self {
        Self::new(url, key_prefix(kind))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A Redis key prefix no other test uses: `{kind}:<32 hex digits>:`.
pub fn key_prefix(kind: &str) -> String {
    format!("{kind}:{:032x}:", rand::random::<u128>())
}

impl Drop for RedisKeysGuard {
    fn drop(&mut self) {
        if !self.url.contains(',') && !self.prefix.is_empty() {
            let _ = delete_keys(&self.url, &self.prefix);
        }
    }
}

/// Deletes the keys starting with `prefix` (SCAN, which a test may use: it
/// walks only the shared test server); returns how many were deleted.
pub fn delete_keys(url: &str, prefix: &str) -> redis::RedisResult<usize> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(TIMEOUT)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(TIMEOUT))?;
    // Glob metacharacters in the prefix match only themselves.
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    let (mut cursor, mut deleted) = (0u64, 0);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)?;
        if !keys.is_empty() {
            deleted += redis::cmd("UNLINK").arg(&keys).query::<usize>(&mut conn)?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::PrivateRedis;

    #[tokio::test]
    async fn the_keys_guard_deletes_its_prefix_and_nothing_else() {
        let redis = PrivateRedis::start().await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for key in ["t*1:epoch", "t*1:{feed}:gen", "t*12:epoch", "other"] {
            let () = redis::cmd("SET")
                .arg(key)
                .arg("v")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let url = redis.url();
        tokio::task::spawn_blocking(move || drop(RedisKeysGuard::new(url, "t*1:")))
            .await
            .unwrap();
        let mut left: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        left.sort();
        assert_eq!(left, ["other", "t*12:epoch"]);
    }
}
