//! The in-process layer in front of Redis (L1): copies of entries this process
//! has already seen, each with the epoch and generation it belongs to.
//!
//! A copy is only ever served under the generation it was stored under, and
//! only when that generation is current: vouched for by Redis' pushed
//! invalidations (`tracking`), or confirmed by a fresh `GET` of the scope's
//! generation. So it is exactly as fresh as the Redis entry it mirrors (a
//! purge replaces the generation; an epoch change orphans it). Memory is
//! bounded by a byte budget, oldest copies going first, and copies expire like
//! Redis entries do.
//!
//! A mutex over a map rather than moka, because moka is measurably slower on
//! the hit path: under callgrind a lookup of a held copy costs 391
//! instructions here and 1,130 with `moka::sync::Cache` (0.12, byte weigher,
//! TTL; same keys and values), 740 more per hit, 2.3 % of a whole L1 hit
//! (docs/benchmarks.md, "moka instead of the mutex map"). The hit path takes
//! the lock once, for a hash lookup and two comparisons.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use shared::cache::CachedResponse;

struct LocalCopy {
    epoch: Arc<str>,
    generation: String,
    entry: Arc<CachedResponse>,
    expires: Instant,
    bytes: usize,
    serial: u64,
}

pub struct LocalCache {
    max_bytes: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
    entries: metrics::Gauge,
    bytes: metrics::Gauge,
}

#[derive(Default)]
struct Inner {
    copies: HashMap<String, LocalCopy>,
    /// Insertion order, for eviction; a key re-inserted later has a newer serial.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    serial: u64,
}

impl LocalCache {
    pub fn new(max_bytes: usize, ttl: Duration) -> Self {
        Self {
            max_bytes,
            ttl,
            inner: Mutex::default(),
            entries: metrics::gauge!("cache_local_entries"),
            bytes: metrics::gauge!("cache_local_bytes"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing here can panic while holding the lock; a poisoned lock would
        // still hold a consistent map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The copy for `key` in `epoch`, with the generation it needs to be served.
    pub fn get(&self, key: &str, epoch: &str) -> Option<(String, Arc<CachedResponse>)> {
        if self.max_bytes == 0 {
            return None;
        }
        let inner = self.lock();
        let copy = inner.copies.get(key)?;
        (&*copy.epoch == epoch && Instant::now() < copy.expires)
            .then(|| (copy.generation.clone(), Arc::clone(&copy.entry)))
    }

    /// The copy for `key` in `epoch` if it was stored under `generation`.
    pub fn get_under(
        &self,
        key: &str,
        epoch: &str,
        generation: &str,
    ) -> Option<Arc<CachedResponse>> {
        if self.max_bytes == 0 {
            return None;
        }
        let inner = self.lock();
        let copy = inner.copies.get(key)?;
        (&*copy.epoch == epoch && copy.generation == generation && Instant::now() < copy.expires)
            .then(|| Arc::clone(&copy.entry))
    }

    pub fn insert(
        &self,
        key: String,
        epoch: Arc<str>,
        generation: String,
        entry: Arc<CachedResponse>,
    ) {
        let bytes = key.len() + entry.etag.len() + entry.body.len() + entry.gzip.len();
        if bytes > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        inner.serial += 1;
        let serial = inner.serial;
        let copy = LocalCopy {
            epoch,
            generation,
            entry,
            expires: Instant::now() + self.ttl,
            bytes,
            serial,
        };
        if let Some(old) = inner.copies.insert(key.clone(), copy) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        inner.order.push_back((key, serial));
        while inner.bytes > self.max_bytes || inner.order.len() > 2 * inner.copies.len() + 16 {
            let Some((oldest, serial)) = inner.order.pop_front() else {
                break;
            };
            // Only if that queue slot is still the key's latest insertion.
            if inner
                .copies
                .get(&oldest)
                .is_some_and(|c| c.serial == serial)
            {
                if let Some(gone) = inner.copies.remove(&oldest) {
                    inner.bytes -= gone.bytes;
                }
            }
        }
        #[allow(clippy::cast_precision_loss)]
        {
            self.entries.set(inner.copies.len() as f64);
            self.bytes.set(inner.bytes as f64);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(size: usize) -> Arc<CachedResponse> {
        Arc::new(CachedResponse::new(bytes::Bytes::from(vec![b'x'; size])))
    }

    #[test]
    fn serves_only_its_epoch_until_it_expires() {
        let cache = LocalCache::new(1 << 20, Duration::from_millis(50));
        cache.insert("k".into(), "e1".into(), "g1".into(), entry(10));
        assert_eq!(cache.get("k", "e1").unwrap().0, "g1");
        assert!(cache.get("k", "e2").is_none());
        assert!(cache.get("other", "e1").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("k", "e1").is_none());
    }

    #[test]
    fn stays_within_its_budget_evicting_the_oldest() {
        let cache = LocalCache::new(40_000, Duration::from_secs(60));
        for i in 0..100 {
            cache.insert(format!("k{i}"), "e".into(), "g".into(), entry(5_000));
            let inner = cache.lock();
            assert!(inner.bytes <= 40_000);
            assert!(inner.order.len() <= 2 * inner.copies.len() + 16);
        }
        assert!(cache.get("k0", "e").is_none());
        assert!(cache.get("k99", "e").is_some());
        // Re-inserting one key many times does not grow the queue without bound.
        for _ in 0..1000 {
            cache.insert("same".into(), "e".into(), "g".into(), entry(10));
        }
        assert!(cache.lock().order.len() < 100);
    }

    #[test]
    fn disabled_with_a_zero_budget() {
        let cache = LocalCache::new(0, Duration::from_secs(60));
        cache.insert("k".into(), "e".into(), "g".into(), entry(1));
        assert!(cache.get("k", "e").is_none());
    }
}
