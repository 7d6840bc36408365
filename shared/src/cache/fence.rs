//! The protocol's commands on the key scheme: the read script and the purge.

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

impl RedisConn {
    /// Gives every scope a fresh generation. One pipelined round trip on a
    /// single server; in a cluster a pipeline may not cross slots, so each
    /// scope's `SET` goes on its own, all at once, and every one is carried
    /// through even if another fails: a stopped master must not keep the
    /// scopes of the healthy ones from being purged.
    pub async fn purge(
        &mut self,
        keys: &KeySpace,
        scopes: impl IntoIterator<Item = &Scope>,
    ) -> RedisResult<()> {
        match self {
            Self::Single(conn) => purge(conn, keys, scopes).await,
            Self::Cluster { conn, .. } => {
                let sets = scopes.into_iter().map(|scope| {
                    let mut conn = conn.clone();
                    async move { purge(&mut conn, keys, [scope]).await }
                });
                futures::future::join_all(sets)
                    .await
                    .into_iter()
                    .collect::<RedisResult<Vec<()>>>()
                    .map(drop)
            }
        }
    }
}
