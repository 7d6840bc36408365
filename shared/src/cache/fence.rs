use std::collections::BTreeMap;

use rand::Rng;
use redis::{aio::ConnectionLike, RedisResult};

use super::{
    connection::RedisConn,
    keys::{KeySpace, Scope},
};

/// Generation keys expire so that scopes nobody reads stop costing memory.
/// Losing one is always safe: the next reader adopts a fresh token.
pub const GENERATION_TTL_SECONDS: u64 = 86_400;

/// A fresh random token for a generation or an epoch. 64 random bits: a token
/// is never taken twice, which is what makes losing a key safe.
pub fn new_token() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// The read side's single round trip: the scope's generation (adopting a fresh
/// one if it is missing) and the entry stored under it, if any.
pub struct ReadScript(redis::Script);

const READ_LUA: &str = r"
local generation = redis.call('GET', KEYS[1])
if not generation then
  generation = ARGV[3]
  redis.call('SET', KEYS[1], generation, 'EX', ARGV[4])
end
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
";

impl Default for ReadScript {
    fn default() -> Self {
        Self(redis::Script::new(READ_LUA))
    }
}

impl ReadScript {
    /// Returns the generation to store under, and the raw entry on a hit.
    pub async fn run<C: ConnectionLike>(
        &self,
        conn: &mut C,
        keys: &KeySpace,
        scope: &Scope,
        epoch: &str,
        request: &str,
    ) -> RedisResult<(String, Option<bytes::Bytes>)> {
        // EVALSHA, and EVAL of the source if the node lacks the script, rather
        // than `Script::invoke_async`, whose fallback (SCRIPT LOAD, then
        // EVALSHA again) is a command for every node of a cluster: EVAL goes
        // to the key's node only and caches the script there, in one trip.
        let call = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script)
                .arg(1)
                .arg(keys.generation(scope))
                .arg(keys.entry_prefix(scope, epoch))
                .arg(request)
                .arg(new_token())
                .arg(GENERATION_TTL_SECONDS);
            cmd
        };
        let reply: RedisResult<(String, Option<Vec<u8>>)> =
            call("EVALSHA", self.0.get_hash()).query_async(conn).await;
        let (generation, entry) = match reply {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                call("EVAL", READ_LUA).query_async(conn).await?
            }
            other => other?,
        };
        Ok((generation, entry.map(bytes::Bytes::from)))
    }
}

/// Purges scopes: one pipelined round trip that gives each a fresh generation.
/// Idempotent in effect, so several invalidators may purge the same scope.
pub async fn purge<C: ConnectionLike>(
    conn: &mut C,
    keys: &KeySpace,
    scopes: impl IntoIterator<Item = &Scope>,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    for scope in scopes {
        pipe.cmd("SET")
            .arg(keys.generation(scope))
            .arg(new_token())
            .arg("EX")
            .arg(GENERATION_TTL_SECONDS)
            .ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// The Redis server's `run_id`: it changes on every restart, including one
/// that loads an old snapshot.
pub async fn redis_run_id<C: ConnectionLike>(conn: &mut C) -> RedisResult<String> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    parse_run_id(&info)
}

pub(super) fn parse_run_id(info: &str) -> RedisResult<String> {
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|id| id.trim().to_owned())
        .ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::ResponseError, "INFO server has no run_id"))
        })
}

/// Keeps a process' view of the epoch, replacing the epoch when Redis turns
/// out to have restarted since the last look.
#[derive(Debug, Default)]
pub struct EpochWatch {
    run_id: Option<String>,
}

impl EpochWatch {
    /// Starts from a run id known from elsewhere (the invalidator's checkpoint).
    pub fn with_run_id(run_id: Option<String>) -> Self {
        Self { run_id }
    }

    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Returns the current epoch, creating one if Redis has none and replacing
    /// it if Redis restarted since this watch last looked.
    pub async fn sync<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        keys: &KeySpace,
    ) -> RedisResult<String> {
        let run_id = redis_run_id(conn).await?;
        let restarted = self.run_id.as_ref().is_some_and(|seen| *seen != run_id);
        let epoch = settle_epoch(conn, keys, restarted).await?;
        self.run_id = Some(run_id);
        Ok(epoch)
    }

    /// [`Self::sync`] for a server or a cluster. In a cluster every master's
    /// `run_id` is watched (any master restored from an old snapshot brings
    /// back old generations on its slots); a master that does not answer keeps
    /// its last known `run_id`, and when it comes back under a new one the
    /// epoch is replaced. The remembered identity is `run_id` for one server,
    /// `host:port=run_id,...` for a cluster.
    pub async fn sync_all(&mut self, conn: &mut RedisConn, keys: &KeySpace) -> RedisResult<String> {
        let current = conn.run_ids().await?;
        let mut seen = self.run_id.as_deref().map(decode_ids).unwrap_or_default();
        let restarted = current
            .iter()
            .any(|(node, id)| seen.get(node).is_some_and(|old| old != id));
        let epoch = settle_epoch(conn, keys, restarted).await?;
        if current.contains_key("") {
            seen.clear();
        } else {
            seen.remove("");
        }
        seen.extend(current);
        self.run_id = Some(encode_ids(&seen));
        Ok(epoch)
    }
}

fn encode_ids(ids: &BTreeMap<String, String>) -> String {
    match ids.get("") {
        Some(id) if ids.len() == 1 => id.clone(),
        _ => ids
            .iter()
            .map(|(node, id)| format!("{node}={id}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn decode_ids(encoded: &str) -> BTreeMap<String, String> {
    if !encoded.contains('=') {
        return BTreeMap::from([(String::new(), encoded.to_owned())]);
    }
    encoded
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(node, id)| (node.to_owned(), id.to_owned()))
        .collect()
}

/// The epoch to use: a fresh one after a restart, else the existing one (or
/// ours if there was none).
async fn settle_epoch<C: ConnectionLike>(
    conn: &mut C,
    keys: &KeySpace,
    restarted: bool,
) -> RedisResult<String> {
    let fresh = new_token();
    if restarted {
        tracing::warn!("Redis restarted since last seen; replacing the cache epoch");
        redis::cmd("SET")
            .arg(keys.epoch())
            .arg(&fresh)
            .query_async::<()>(conn)
            .await?;
        return Ok(fresh);
    }
    // SET NX GET: the existing epoch, or ours if there was none.
    let previous: Option<String> = redis::cmd("SET")
        .arg(keys.epoch())
        .arg(&fresh)
        .arg("NX")
        .arg("GET")
        .query_async(conn)
        .await?;
    Ok(previous.unwrap_or(fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip() {
        let single = BTreeMap::from([(String::new(), "abc".to_owned())]);
        assert_eq!(
            encode_ids(&single),
            "abc",
            "a single server keeps the plain run_id"
        );
        assert_eq!(decode_ids("abc"), single);
        let cluster = BTreeMap::from([
            ("127.0.0.1:7000".to_owned(), "a".to_owned()),
            ("127.0.0.1:7001".to_owned(), "b".to_owned()),
        ]);
        let encoded = encode_ids(&cluster);
        assert_eq!(encoded, "127.0.0.1:7000=a,127.0.0.1:7001=b");
        assert_eq!(decode_ids(&encoded), cluster);
    }
}
