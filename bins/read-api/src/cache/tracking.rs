//! Server-assisted invalidation of the in-process layer (L1): a dedicated
//! RESP3 connection with `CLIENT TRACKING ON BCAST` over the generation keys
//! and the epoch key, kept alive on a short heartbeat lease.
//!
//! # Why an L1 copy never outlives its purge by more than [`LEASE`]
//!
//! A hit is answered from process memory, with no network I/O, only when the
//! scope's generation is *held* (a table of generation key -> token that this
//! module keeps) and the lease is valid. The held table only ever shrinks on
//! an invalidation, and only grows through [`Vouch::adopt`], fenced:
//!
//! - **Pushes arrive in order with replies.** Redis sends a BCAST invalidation
//!   in the event loop iteration that modified the key (before it sleeps), on
//!   the tracking connection, so it precedes, on that socket, the reply to
//!   any command that connection sends afterwards. The redis crate hands push
//!   messages to our callback synchronously, in socket order, before it
//!   completes a later reply. So when the reply to heartbeat *k* arrives,
//!   every invalidation of a change Redis processed before it received
//!   heartbeat *k-1* has been applied (heartbeat *k-1*'s own iteration may
//!   have sent its reply before that iteration's pushes: hence *k-1*, not *k*).
//!   The lease is therefore set to `sent(k-1) + LEASE`.
//! - **The lease is checked by the reader**, against the clock, on every L1
//!   hit, not flipped by a task that might run late: a frozen Redis (SIGSTOP),
//!   a stalled connection or a slow heartbeat task all end L1 hits within
//!   `LEASE` of the last proven point, by themselves.
//! - **A lookup cannot adopt a generation an invalidation has overtaken.** A
//!   global invalidation counter is read before the lookup's Redis call, and
//!   the generation it read is adopted only if the counter has not moved
//!   (checked and inserted under the lock invalidations take): the L1 version
//!   of guarantee 2.
//! - **Losing the connection loses nothing silently.** A disconnection (a
//!   `CLIENT KILL`, a restart, a network error), a late heartbeat, a `FLUSHALL`
//!   (a null invalidation) or a change of the epoch key drops every held
//!   generation at once, and a new connection drops them again once tracking
//!   is on (invalidations of the gap are lost), before it vouches for anything.
//!   Meanwhile lookups take the checked path (a Redis read per request).
//!
//! So a purge that Redis applied at time `p` stops L1 hits of the old
//! generation by `p + LEASE` at the latest (250 ms), usually within a
//! millisecond (the push). Adding the invalidator's purge lag (p99 ~3 ms) this
//! stays far below guarantee 1's second.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use metrics::{Counter, Gauge};
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tokio_util::sync::CancellationToken;

/// How long a heartbeat vouches for the held generations, from the sending of
/// the heartbeat before it.
pub const LEASE: Duration = Duration::from_millis(250);
/// Heartbeats are sent this often...
const HEARTBEAT: Duration = Duration::from_millis(50);
/// ...and a heartbeat without a reply this long ends the connection.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(150);
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// What the tracking connection vouches for: held generations, the lease,
/// and the fence counter.
pub struct Vouch {
    base: Instant,
    /// Nanoseconds since `base` until which L1 hits may be served; 0: none.
    lease_until: AtomicU64,
    /// Moves on every invalidation and every drop; lookups fence on it.
    seq: AtomicU64,
    held: RwLock<HashMap<Box<str>, Arc<str>>>,
    epoch_key: String,
    invalidations: Counter,
    connected: Gauge,
}

impl Vouch {
    pub fn new(epoch_key: String, node: &str) -> Self {
        Self {
            base: Instant::now(),
            lease_until: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            held: RwLock::default(),
            epoch_key,
            invalidations: metrics::counter!("cache_invalidations_received_total"),
            connected: metrics::gauge!("cache_tracking_connected", "node" => node.to_owned()),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the lease is valid now.
    pub fn valid(&self) -> bool {
        self.nanos(Instant::now()) < self.lease_until.load(Ordering::Acquire)
    }

    /// The generation held for `generation_key`, if the lease is valid.
    pub fn held(&self, generation_key: &str) -> Option<Arc<str>> {
        if !self.valid() {
            return None;
        }
        self.read().get(generation_key).cloned()
    }

    /// The fence a lookup takes before its Redis call.
    pub fn fence(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Holds `generation` for `generation_key` if no invalidation or drop
    /// happened since `fence` was taken.
    pub fn adopt(&self, generation_key: &str, generation: &str, fence: u64) {
        let mut held = self.write();
        if self.seq.load(Ordering::Acquire) != fence {
            return;
        }
        if held.get(generation_key).map(AsRef::as_ref) != Some(generation) {
            held.insert(generation_key.into(), generation.into());
        }
    }

    fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut held = self.write();
        self.seq.fetch_add(1, Ordering::AcqRel);
        for key in keys {
            if key == self.epoch_key.as_bytes() {
                held.clear();
            } else if let Ok(key) = std::str::from_utf8(key) {
                held.remove(key);
            }
        }
    }

    /// Drops every held generation (and moves the fence).
    pub fn drop_all(&self) {
        let mut held = self.write();
        self.seq.fetch_add(1, Ordering::AcqRel);
        held.clear();
    }

    fn end_lease(&self) {
        self.lease_until.store(0, Ordering::Release);
        self.connected.set(0.0);
        self.drop_all();
    }

    /// Applies one push message (called by the connection, in socket order).
    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => {
                self.invalidations.increment(1);
                match push.data.first() {
                    Some(Value::Array(keys)) => {
                        self.invalidate(keys.iter().filter_map(|k| match k {
                            Value::BulkString(key) => Some(key.as_slice()),
                            _ => None,
                        }))
                    }
                    // A null key list: FLUSHALL / FLUSHDB.
                    _ => self.drop_all(),
                }
            }
            PushKind::Disconnection => self.end_lease(),
            _ => {}
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Arc<str>>> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Arc<str>>> {
        self.held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps a tracking connection to one Redis server, until `shutdown`.
pub async fn track(
    client: redis::Client,
    prefixes: [String; 2],
    vouch: Arc<Vouch>,
    connect_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut info = client.get_connection_info().clone();
    info.redis.protocol = ProtocolVersion::RESP3;
    let client = match redis::Client::open(info) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "cannot set up cache tracking; the in-process cache stays off");
            return;
        }
    };
    let mut backoff = RECONNECT_MIN;
    loop {
        let (established, error) = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = session(&client, &prefixes, &vouch, connect_timeout) => outcome,
        };
        vouch.end_lease();
        if established {
            tracing::warn!(%error, "cache tracking connection lost; in-process hits paused");
            backoff = RECONNECT_MIN;
        } else {
            // Logged once per outage, not per attempt.
            if backoff == RECONNECT_MIN {
                tracing::warn!(%error, "cannot open the cache tracking connection");
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
    }
    vouch.end_lease();
}

/// One tracking connection's life: returns when it fails, with whether
/// tracking had been established.
async fn session(
    client: &redis::Client,
    prefixes: &[String; 2],
    vouch: &Arc<Vouch>,
    connect_timeout: Duration,
) -> (bool, String) {
    match open(client, prefixes, vouch, connect_timeout).await {
        Ok(conn) => (true, heartbeat(conn, vouch).await),
        Err(error) => (false, error),
    }
}

async fn open(
    client: &redis::Client,
    prefixes: &[String; 2],
    vouch: &Arc<Vouch>,
    connect_timeout: Duration,
) -> Result<(redis::aio::MultiplexedConnection, Instant), String> {
    let pushes = Arc::clone(vouch);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(connect_timeout)
        .set_response_timeout(HEARTBEAT_TIMEOUT)
        .set_push_sender(move |push: PushInfo| {
            pushes.on_push(push);
            Ok::<(), std::convert::Infallible>(())
        });
    let mut conn = tokio::time::timeout(
        connect_timeout.saturating_mul(2),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut tracking = redis::cmd("CLIENT");
    tracking.arg("TRACKING").arg("ON").arg("BCAST");
    for prefix in prefixes {
        tracking.arg("PREFIX").arg(prefix);
    }
    let sent = Instant::now();
    tokio::time::timeout(connect_timeout, tracking.query_async::<()>(&mut conn))
        .await
        .map_err(|_| "CLIENT TRACKING timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    // Invalidations before tracking was on are lost: start from nothing.
    vouch.drop_all();
    vouch.connected.set(1.0);
    tracing::info!("cache tracking on; in-process hits enabled");
    Ok((conn, sent))
}

/// Renews the lease until a heartbeat fails; returns why.
async fn heartbeat(
    (mut conn, mut sent): (redis::aio::MultiplexedConnection, Instant),
    vouch: &Vouch,
) -> String {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(HEARTBEAT_TIMEOUT, ping.query_async::<Value>(&mut conn)).await {
            Ok(Ok(_)) => {
                // Every push sent before Redis saw the previous request has
                // been applied (see the module doc).
                let until = vouch.nanos(sent + LEASE);
                vouch.lease_until.store(until, Ordering::Release);
                sent = now;
            }
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "heartbeat timed out".to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn push(keys: Option<&[&str]>) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![keys.map_or(Value::Nil, |keys| {
                Value::Array(
                    keys.iter()
                        .map(|k| Value::BulkString(k.as_bytes().to_vec()))
                        .collect(),
                )
            })],
        }
    }

    fn leased() -> Vouch {
        let vouch = Vouch::new("p:epoch".into(), "test");
        vouch
            .lease_until
            .store(vouch.nanos(Instant::now() + LEASE), Ordering::Release);
        vouch
    }

    #[test]
    fn an_invalidation_after_the_fence_blocks_adoption() {
        let vouch = leased();
        let fence = vouch.fence();
        vouch.on_push(push(Some(&["p:{feed}:gen"])));
        vouch.adopt("p:{feed}:gen", "g1", fence);
        assert!(vouch.held("p:{feed}:gen").is_none());
        vouch.adopt("p:{feed}:gen", "g2", vouch.fence());
        assert_eq!(vouch.held("p:{feed}:gen").as_deref(), Some("g2"));
    }

    #[test]
    fn invalidations_drop_what_they_name_and_flushes_or_epochs_everything() {
        let vouch = leased();
        for (key, generation) in [("p:{a}:gen", "1"), ("p:{b}:gen", "2"), ("p:{c}:gen", "3")] {
            vouch.adopt(key, generation, vouch.fence());
        }
        vouch.on_push(push(Some(&["p:{a}:gen", "p:{x}:e:1:2:r"])));
        assert!(vouch.held("p:{a}:gen").is_none());
        assert!(vouch.held("p:{b}:gen").is_some());
        vouch.on_push(push(Some(&["p:epoch"])));
        assert!(vouch.held("p:{b}:gen").is_none());
        vouch.adopt("p:{c}:gen", "3", vouch.fence());
        vouch.on_push(push(None));
        assert!(vouch.held("p:{c}:gen").is_none());
    }

    #[test]
    fn nothing_is_vouched_for_without_a_lease() {
        let vouch = leased();
        vouch.adopt("k", "g", vouch.fence());
        assert!(vouch.held("k").is_some());
        vouch.lease_until.store(1, Ordering::Release);
        assert!(vouch.held("k").is_none(), "an expired lease");
        vouch.on_push(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        });
        vouch
            .lease_until
            .store(vouch.nanos(Instant::now() + LEASE), Ordering::Release);
        assert!(
            vouch.held("k").is_none(),
            "a disconnection drops everything"
        );
    }
}
