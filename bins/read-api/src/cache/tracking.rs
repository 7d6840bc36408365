//! Server-assisted invalidation of the in-process layer (L1): a dedicated
//! RESP3 connection with `CLIENT TRACKING ON BCAST` over the generation keys
//! and the epoch key, kept alive on a short heartbeat lease; one per server,
//! so in a Redis Cluster one per master, each vouching for its master's slots.
//!
//! # Why an L1 copy never outlives its purge by more than [`LEASE`]
//!
//! A hit is answered from process memory, with no network I/O, only when the
//! scope's generation is *held* (a table of generation key -> token that this
//! module keeps) and the lease of the connection to the server that owns the
//! generation key's slot is valid (a single server has one lease; a cluster
//! one per slot, renewed by the connection to the slot's master). The held
//! table, shared by all connections, only ever shrinks on an invalidation
//! (whichever connection brings it), and only grows through
//! [`Vouch::adopt`], fenced:
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
//! - **A cluster changing shape loses nothing either.** The connections follow
//!   the slot map the epoch refresh reads (`CLUSTER SLOTS`, every second, and
//!   at once after a failed call). A master that stops answering loses its
//!   connection's lease within `LEASE` like a single server, so its slots take
//!   the checked path. When the map changes (a failover, slots moved, a master
//!   added or gone) every connection is closed, its slots' leases ended and
//!   everything held dropped, and new connections to the new masters each drop
//!   everything again once their tracking is on. A master's `run_id` changing
//!   (a restart) closes its connection too, and replaces the epoch, whose
//!   key's push drops everything as well. A generation held for a slot is thus
//!   only ever vouched for by a connection to the master that owned the slot
//!   during the whole time since it was adopted. (A promoted replica that
//!   missed the last purge is the epoch's business: `shared::cache::epoch`
//!   replaces it, and the read API keeps such slots off the cache, L1 and
//!   Redis alike, until it has; see `confirmed`.)
//!
//! So a purge that Redis applied at time `p` stops L1 hits of the old
//! generation by `p + LEASE` at the latest (250 ms), usually within a
//! millisecond (the push). Adding the invalidator's purge lag (p99 ~3 ms) this
//! stays far below guarantee 1's second.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use metrics::Gauge;
use redis::{AsyncConnectionConfig, PushInfo, Value};
use shared::cache::Topology;
use tokio::{sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::vouch::{Slots, Vouch};

/// How long a heartbeat vouches for the held generations, from the sending of
/// the heartbeat before it.
pub const LEASE: Duration = Duration::from_millis(250);
/// Heartbeats are sent this often...
const HEARTBEAT: Duration = Duration::from_millis(50);
/// ...and a heartbeat without a reply this long ends the connection.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(150);
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// One server's tracking connection: how to reach it, what it vouches for.
struct Node {
    client: redis::Client,
    slots: Slots,
    connected: Gauge,
}

impl Node {
    fn new(client: redis::Client, address: String, slots: Slots) -> Self {
        Self {
            client,
            slots,
            connected: metrics::gauge!("cache_tracking_connected", "node" => address),
        }
    }
}

/// Keeps a tracking connection to the single server `client` (RESP3), until
/// `shutdown`.
pub async fn track(
    client: redis::Client,
    prefixes: [String; 2],
    vouch: Arc<Vouch>,
    connect_timeout: Duration,
    shutdown: CancellationToken,
) {
    let address = client.get_connection_info().addr.to_string();
    let node = Node::new(client, address, Arc::from([0..=0]));
    track_node(node, Arc::new(prefixes), vouch, connect_timeout, shutdown).await;
}

/// Keeps one tracking connection per cluster master, following `topology`:
/// any change of who serves which slots closes them all and drops everything
/// held before the new ones open. `client` makes a RESP3 client for a node.
pub async fn track_cluster(
    client: impl Fn(&str, u16) -> redis::RedisResult<redis::Client>,
    prefixes: [String; 2],
    vouch: Arc<Vouch>,
    connect_timeout: Duration,
    mut topology: watch::Receiver<Option<Topology>>,
    shutdown: CancellationToken,
) {
    let prefixes = Arc::new(prefixes);
    loop {
        let layout = topology.borrow_and_update().clone().unwrap_or_default();
        let round = shutdown.child_token();
        let mut nodes = JoinSet::new();
        for master in &layout.masters {
            let Some((host, port)) = &master.node else {
                continue;
            };
            match client(host, *port) {
                Ok(client) => {
                    let node = Node::new(client, master.address(), master.slots.clone().into());
                    nodes.spawn(track_node(
                        node,
                        Arc::clone(&prefixes),
                        Arc::clone(&vouch),
                        connect_timeout,
                        round.clone(),
                    ));
                }
                Err(error) => tracing::warn!(%error, "cannot track a cluster master"),
            }
        }
        // Until the slots change hands.
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = topology.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = topology.borrow_and_update().clone().unwrap_or_default();
                    if !now.same_layout(&layout) {
                        tracing::info!("Redis Cluster slots changed hands; re-tracking every master");
                        break;
                    }
                }
            }
        }
        round.cancel();
        // Every old connection has ended its leases before new ones open.
        while nodes.join_next().await.is_some() {}
        vouch.drop_all();
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Keeps a tracking connection to one server, until `shutdown`.
async fn track_node(
    node: Node,
    prefixes: Arc<[String; 2]>,
    vouch: Arc<Vouch>,
    connect_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let (established, error) = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = session(&node, &prefixes, &vouch, connect_timeout) => outcome,
        };
        node.connected.set(0.0);
        vouch.end_lease(&node.slots);
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
    node.connected.set(0.0);
    vouch.end_lease(&node.slots);
}

/// One tracking connection's life: returns when it fails, with whether
/// tracking had been established.
async fn session(
    node: &Node,
    prefixes: &[String; 2],
    vouch: &Arc<Vouch>,
    connect_timeout: Duration,
) -> (bool, String) {
    match open(node, prefixes, vouch, connect_timeout).await {
        Ok(conn) => (true, heartbeat(conn, vouch, &node.slots).await),
        Err(error) => (false, error),
    }
}

async fn open(
    node: &Node,
    prefixes: &[String; 2],
    vouch: &Arc<Vouch>,
    connect_timeout: Duration,
) -> Result<(redis::aio::MultiplexedConnection, Instant), String> {
    let (pushes, slots) = (Arc::clone(vouch), Arc::clone(&node.slots));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(connect_timeout)
        .set_response_timeout(HEARTBEAT_TIMEOUT)
        .set_push_sender(move |push: PushInfo| {
            pushes.on_push(push, &slots);
            Ok::<(), std::convert::Infallible>(())
        });
    let mut conn = tokio::time::timeout(
        connect_timeout.saturating_mul(2),
        node.client
            .get_multiplexed_async_connection_with_config(&config),
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
    node.connected.set(1.0);
    tracing::info!("cache tracking on; in-process hits enabled");
    Ok((conn, sent))
}

/// Renews the lease of `slots` until a heartbeat fails; returns why.
async fn heartbeat(
    (mut conn, mut sent): (redis::aio::MultiplexedConnection, Instant),
    vouch: &Vouch,
    slots: &Slots,
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
                vouch.renew(slots, vouch.nanos(sent + LEASE));
                sent = now;
            }
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "heartbeat timed out".to_owned(),
        }
    }
}
