//! The read API's side of the shared cache protocol (`shared::cache`): an
//! in-process layer (L1) that answers hits with no I/O while Redis pushes its
//! invalidations (`tracking`, whose module doc holds the freshness argument),
//! else at most one Redis round trip per lookup (the read script, or a shared
//! `GET` of the generation when an in-process copy can answer), stores fenced
//! by the generation read before the query, and every Redis call bounded by a
//! short timeout behind a circuit breaker, so Redis trouble turns into
//! `X-Cache: BYPASS`, never into delay. In a Redis Cluster, breakers, tracking
//! leases and trust in a slot's master (`confirmed`) are all per slot.

mod breaker;
mod confirmed;
mod epoch;
mod generation_reads;
mod local;
mod tracking;
mod vouch;

use std::{
    future::Future,
    sync::{Arc, OnceLock},
    time::Duration,
};

use redis::{aio::ConnectionManagerConfig, ProtocolVersion};
use shared::cache::{
    CachedResponse, KeySpace, ReadScript, RedisConn, RedisTarget, Scope, Topology,
};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use breaker::Breakers;
use confirmed::Confirmed;
use generation_reads::GenerationReads;
use local::LocalCache;
use vouch::Vouch;

use crate::{config::Config, read_through::StoreHook};

pub use epoch::EpochSync;

#[derive(Debug, thiserror::Error)]
pub enum CacheSetupError {
    #[error("invalid REDIS_URL: {0}")]
    Url(#[source] redis::RedisError),
    #[error("invalid REDIS_KEY_PREFIX: {0}")]
    Prefix(String),
}

/// How long an in-process copy may be served at most. Copies of entries read
/// from Redis do not know how much of the entry's TTL was left, so they keep a
/// short one of their own: the TTL's bound on a lost invalidator's damage
/// grows by at most this much.
const LOCAL_TTL: Duration = Duration::from_secs(60);

/// What a lookup found.
pub enum Lookup {
    Hit(Arc<CachedResponse>),
    /// A miss; a page built now may be stored under the fence, which holds the
    /// generation read before the database is queried.
    Miss(Fence),
    /// Redis unknown, unavailable or skipped: serve without caching.
    Bypass,
}

/// Where a miss' page goes: the entry key (with the generation read before
/// the query) and the matching in-process copy.
pub struct Fence {
    pub entry_key: String,
    local_key: String,
    epoch: Arc<str>,
    generation: String,
}

pub struct Cache {
    target: RedisTarget,
    manager_config: ConnectionManagerConfig,
    connect_timeout: Duration,
    /// Set once the first connection succeeds; the connection reconnects by
    /// itself afterwards.
    connection: OnceLock<RedisConn>,
    local: LocalCache,
    generation_reads: Arc<GenerationReads>,
    keys: KeySpace,
    script: ReadScript,
    epoch: watch::Receiver<Option<Arc<str>>>,
    epoch_tx: watch::Sender<Option<Arc<str>>>,
    breakers: Breakers,
    timeout: Duration,
    ttl_seconds: u64,
    /// Pushed invalidations (None without an in-process layer): what lets
    /// L1 hits skip Redis.
    vouch: Option<Arc<Vouch>>,
    /// In a cluster: the slots whose master is trusted (see `confirmed`).
    confirmed: Option<Confirmed>,
    /// The slot map as the last refresh found it, for the tracking connections.
    topology_tx: watch::Sender<Option<Topology>>,
    /// Asks the epoch refresh to run soon (a cluster call failed).
    refresh_soon: Notify,
    /// Test hook between a lookup's Redis reply and its adoption of the
    /// generation it read.
    after_read: Option<StoreHook>,
}

impl Cache {
    pub fn new(
        config: &Config,
        url: &str,
        after_read: Option<StoreHook>,
    ) -> Result<Self, CacheSetupError> {
        let target = RedisTarget::open(url, config.redis_connect_timeout(), config.redis_timeout())
            .map_err(CacheSetupError::Url)?;
        let keys =
            KeySpace::new(&config.cache_keys.redis_key_prefix).map_err(CacheSetupError::Prefix)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.redis_connect_timeout())
            .set_response_timeout(config.redis_timeout())
            // One attempt per reconnect: the breaker and the epoch task pace retries.
            .set_number_of_retries(1)
            .set_max_delay(100);
        let (epoch_tx, epoch) = watch::channel(None);
        let cluster = target.is_cluster();
        let vouch =
            (config.local_cache_bytes > 0).then(|| Arc::new(Vouch::new(keys.epoch(), cluster)));
        Ok(Self {
            vouch,
            confirmed: cluster.then(Confirmed::new),
            topology_tx: watch::Sender::new(None),
            refresh_soon: Notify::new(),
            after_read,
            breakers: Breakers::new(
                config.redis_breaker_failures,
                config.redis_cooloff(),
                cluster,
            ),
            target,
            manager_config,
            connect_timeout: config.redis_connect_timeout(),
            connection: OnceLock::new(),
            local: LocalCache::new(
                config.local_cache_bytes,
                Duration::from_secs(config.cache_ttl_seconds.max(1)).min(LOCAL_TTL),
            ),
            generation_reads: Arc::default(),
            keys,
            script: ReadScript::default(),
            epoch,
            epoch_tx,
            timeout: config.redis_timeout(),
            ttl_seconds: config.cache_ttl_seconds.max(1),
        })
    }

    /// Bounds a Redis call on `key`'s node and reports its outcome to that
    /// node's breaker.
    async fn call<T>(
        &self,
        key: &str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let breaker = self.breakers.of(key);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                breaker.record_success();
                Some(value)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "Redis call failed");
                self.record_failure(key);
                None
            }
            Err(_) => {
                tracing::debug!("Redis call timed out");
                self.record_failure(key);
                None
            }
        }
    }

    fn record_failure(&self, key: &str) {
        self.breakers.of(key).record_failure();
        if let Some(confirmed) = &self.confirmed {
            confirmed.record_failure(key);
            self.refresh_soon.notify_one();
        }
    }

    fn usable(&self, key: &str) -> Option<(RedisConn, Arc<str>)> {
        // Before the epoch is read: a slot confirmed after changing hands
        // was confirmed under the epoch that replaced the old one.
        if self.confirmed.as_ref().is_some_and(|c| !c.allows(key)) {
            return None;
        }
        let epoch = self.epoch.borrow().clone()?;
        let conn = self.connection.get()?.clone();
        self.breakers.of(key).allow().then_some((conn, epoch))
    }

    /// At most one Redis round trip: a `GET` of the generation when this
    /// process holds a copy (served if the generation still matches; shared
    /// with concurrent requests for the scope, see `generation_reads`),
    /// otherwise the read script (generation and entry). Only a copy whose
    /// generation changed costs a second one.
    pub async fn lookup(self: &Arc<Self>, scope: &Scope, request: &str) -> Lookup {
        let generation_key = self.keys.generation(scope);
        let Some((mut conn, epoch)) = self.usable(&generation_key) else {
            return Lookup::Bypass;
        };
        // Taken before any Redis call: a generation read after an
        // invalidation arrived may be adopted, one read before may not.
        let fence = self.vouch.as_ref().map(|v| v.fence());
        let local_key = format!("{generation_key} {request}");
        if let Some((held, copy)) = self.local.get(&local_key, &epoch) {
            let read = {
                let (this, key, conn) = (Arc::clone(self), generation_key.clone(), conn.clone());
                move || {
                    let (this, key, mut conn) = (Arc::clone(&this), key.clone(), conn.clone());
                    async move {
                        let mut get = redis::cmd("GET");
                        get.arg(&key);
                        this.call(&key, get.query_async::<Option<String>>(&mut conn))
                            .await
                    }
                }
            };
            // One read in flight plus the next one, with room to spare.
            let wait = self.timeout.saturating_mul(3);
            let current = self
                .generation_reads
                .current(&generation_key, wait, read)
                .await;
            match current {
                None => return Lookup::Bypass,
                Some(Some(current)) if current == held => {
                    self.adopt(&generation_key, &current, fence).await;
                    return Lookup::Hit(copy);
                }
                // Purged (or expired) since: ask Redis for the entry.
                Some(_) => {}
            }
        }
        let found = self
            .call(
                &generation_key,
                self.script
                    .run(&mut conn, &self.keys, scope, &epoch, request),
            )
            .await;
        let Some((generation, raw)) = found else {
            return Lookup::Bypass;
        };
        self.adopt(&generation_key, &generation, fence).await;
        match raw.and_then(CachedResponse::decode) {
            Some(entry) => {
                let entry = Arc::new(entry);
                self.local
                    .insert(local_key, epoch, generation, Arc::clone(&entry));
                Lookup::Hit(entry)
            }
            None => Lookup::Miss(Fence {
                entry_key: self.keys.entry(scope, &epoch, &generation, request),
                local_key,
                epoch,
                generation,
            }),
        }
    }

    /// The in-process copy of `request`, if Redis' pushes vouch for its
    /// generation right now: a hit with no I/O at all.
    pub fn local_hit(&self, scope: &Scope, request: &str) -> Option<Arc<CachedResponse>> {
        let vouch = self.vouch.as_ref()?;
        // One allocation: the local key starts with the generation key.
        let mut local_key = self.keys.generation(scope);
        let generation_key_len = local_key.len();
        local_key.push(' ');
        local_key.push_str(request);
        let held = vouch.held(&local_key[..generation_key_len])?;
        let epoch = self.epoch.borrow();
        self.local.get_under(&local_key, epoch.as_deref()?, &held)
    }

    /// Lets the tracking connection vouch for `generation` from now on,
    /// unless an invalidation arrived since `fence`.
    async fn adopt(&self, generation_key: &str, generation: &str, fence: Option<u64>) {
        let (Some(vouch), Some(fence)) = (&self.vouch, fence) else {
            return;
        };
        if let Some(hook) = &self.after_read {
            hook(generation_key.to_owned()).await;
        }
        vouch.adopt(generation_key, generation, fence);
    }

    /// Starts the tracking connections (one per server), until `shutdown`.
    pub fn spawn_tracking(&self, shutdown: CancellationToken) {
        let Some(vouch) = &self.vouch else {
            return;
        };
        let (prefixes, vouch) = (self.keys.tracking_prefixes(), Arc::clone(vouch));
        if !self.target.is_cluster() {
            match self.target.node_client(None, ProtocolVersion::RESP3) {
                Ok(client) => {
                    tokio::spawn(tracking::track(
                        client,
                        prefixes,
                        vouch,
                        self.connect_timeout,
                        shutdown,
                    ));
                }
                Err(error) => tracing::warn!(
                    %error,
                    "cannot set up cache tracking; the in-process cache stays off"
                ),
            }
            return;
        }
        let target = self.target.clone();
        tokio::spawn(tracking::track_cluster(
            move |host, port| target.node_client(Some((host, port)), ProtocolVersion::RESP3),
            prefixes,
            vouch,
            self.connect_timeout,
            self.topology_tx.subscribe(),
            shutdown,
        ));
    }

    /// Stores a miss' page under its fence; a failure only costs the next
    /// reader a miss.
    pub async fn store(&self, fence: Fence, entry: &Arc<CachedResponse>) {
        self.local.insert(
            fence.local_key,
            fence.epoch,
            fence.generation,
            Arc::clone(entry),
        );
        let Some(mut conn) = self
            .connection
            .get()
            .cloned()
            .filter(|_| self.breakers.of(&fence.entry_key).allow())
        else {
            return;
        };
        let mut set = redis::cmd("SET");
        set.arg(&fence.entry_key)
            .arg(entry.encode().as_ref())
            .arg("EX")
            .arg(self.ttl_seconds);
        let _stored = self
            .call(&fence.entry_key, set.query_async::<()>(&mut conn))
            .await;
    }

    /// For `/readyz`: a bounded PING (not through the breaker, so it reports
    /// the truth even while the breaker is open).
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self
            .connection
            .get()
            .cloned()
            .ok_or_else(|| "not connected".to_owned())?;
        match tokio::time::timeout(
            self.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}
