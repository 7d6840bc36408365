//! What the tracking connections vouch for (see `tracking` for why it is
//! safe): the held generations, one lease per server (per slot in a cluster)
//! and the fence counter lookups take.

use std::{
    collections::HashMap,
    ops::RangeInclusive,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Instant,
};

use metrics::Counter;
use redis::{PushInfo, PushKind, Value};
use shared::cache::{hash_slot, HASH_SLOTS};

/// Lease indexes one tracking connection renews: `0..=0` for a single
/// server, its master's slot ranges in a cluster.
pub type Slots = Arc<[RangeInclusive<u16>]>;

/// What the tracking connections vouch for: held generations, the leases,
/// and the fence counter.
pub struct Vouch {
    base: Instant,
    /// Per lease (one for a single server, one per slot in a cluster):
    /// nanoseconds since `base` until which L1 hits may be served; 0: none.
    leases: Box<[AtomicU64]>,
    /// Moves on every invalidation and every drop; lookups fence on it.
    seq: AtomicU64,
    held: RwLock<HashMap<Box<str>, Arc<str>>>,
    epoch_key: String,
    invalidations: Counter,
}

impl Vouch {
    pub fn new(epoch_key: String, cluster: bool) -> Self {
        let leases = if cluster { HASH_SLOTS } else { 1 };
        Self {
            base: Instant::now(),
            leases: (0..leases).map(|_| AtomicU64::new(0)).collect(),
            seq: AtomicU64::new(0),
            held: RwLock::default(),
            epoch_key,
            invalidations: metrics::counter!("cache_invalidations_received_total"),
        }
    }

    pub(super) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lease(&self, key: &str) -> &AtomicU64 {
        let index = if self.leases.len() == 1 {
            0
        } else {
            usize::from(hash_slot(key))
        };
        // hash_slot is below HASH_SLOTS, the cluster's length.
        &self.leases[index]
    }

    /// Whether the lease covering `generation_key` is valid now.
    fn valid(&self, generation_key: &str) -> bool {
        self.nanos(Instant::now()) < self.lease(generation_key).load(Ordering::Acquire)
    }

    pub(super) fn renew(&self, slots: &Slots, until: u64) {
        for range in slots.iter() {
            let range = usize::from(*range.start())..=usize::from(*range.end());
            for lease in self.leases.get(range).into_iter().flatten() {
                lease.store(until, Ordering::Release);
            }
        }
    }

    /// The generation held for `generation_key`, if its lease is valid.
    pub fn held(&self, generation_key: &str) -> Option<Arc<str>> {
        if !self.valid(generation_key) {
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

    pub(super) fn end_lease(&self, slots: &Slots) {
        self.renew(slots, 0);
        self.drop_all();
    }

    /// Applies one push message of the connection renewing `slots` (called
    /// by the connection, in socket order).
    pub(super) fn on_push(&self, push: PushInfo, slots: &Slots) {
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
            PushKind::Disconnection => self.end_lease(slots),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cache::tracking::LEASE;

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

    fn single() -> Slots {
        Arc::from([0..=0])
    }

    fn leased() -> Vouch {
        let vouch = Vouch::new("p:epoch".into(), false);
        vouch.renew(&single(), vouch.nanos(Instant::now() + LEASE));
        vouch
    }

    #[test]
    fn an_invalidation_after_the_fence_blocks_adoption() {
        let vouch = leased();
        let fence = vouch.fence();
        vouch.on_push(push(Some(&["p:{feed}:gen"])), &single());
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
        vouch.on_push(push(Some(&["p:{a}:gen", "p:{x}:e:1:2:r"])), &single());
        assert!(vouch.held("p:{a}:gen").is_none());
        assert!(vouch.held("p:{b}:gen").is_some());
        vouch.on_push(push(Some(&["p:epoch"])), &single());
        assert!(vouch.held("p:{b}:gen").is_none());
        vouch.adopt("p:{c}:gen", "3", vouch.fence());
        vouch.on_push(push(None), &single());
        assert!(vouch.held("p:{c}:gen").is_none());
    }

    #[test]
    fn nothing_is_vouched_for_without_a_lease() {
        let vouch = leased();
        vouch.adopt("k", "g", vouch.fence());
        assert!(vouch.held("k").is_some());
        vouch.renew(&single(), 1);
        assert!(vouch.held("k").is_none(), "an expired lease");
        vouch.on_push(
            PushInfo {
                kind: PushKind::Disconnection,
                data: vec![],
            },
            &single(),
        );
        vouch.renew(&single(), vouch.nanos(Instant::now() + LEASE));
        assert!(
            vouch.held("k").is_none(),
            "a disconnection drops everything"
        );
    }

    #[test]
    fn in_a_cluster_a_master_vouches_only_for_its_own_slots() {
        let vouch = Vouch::new("p:epoch".into(), true);
        let (a, b) = ("p:{a}:gen", "p:{b}:gen");
        let slot_of = |key: &str| hash_slot(key);
        assert_ne!(slot_of(a), slot_of(b));
        let master_a: Slots = Arc::from([slot_of(a)..=slot_of(a)]);
        let master_b: Slots = Arc::from([slot_of(b)..=slot_of(b)]);
        let until = vouch.nanos(Instant::now() + LEASE);
        vouch.renew(&master_a, until);
        vouch.renew(&master_b, until);
        vouch.adopt(a, "1", vouch.fence());
        vouch.adopt(b, "2", vouch.fence());
        assert!(vouch.held(a).is_some() && vouch.held(b).is_some());
        // Master b's connection drops: its slots are off, and everything
        // held is dropped (master a's too, conservatively).
        vouch.on_push(
            PushInfo {
                kind: PushKind::Disconnection,
                data: vec![],
            },
            &master_b,
        );
        assert!(vouch.held(b).is_none() && vouch.held(a).is_none());
        vouch.adopt(a, "1", vouch.fence());
        vouch.adopt(b, "2", vouch.fence());
        assert!(vouch.held(a).is_some(), "master a still vouches");
        assert!(vouch.held(b).is_none(), "nobody vouches for b's slot");
    }
}
