//! A circuit breaker in front of Redis, so that a dead, hung or blackholed
//! Redis costs requests nothing: after a few consecutive failures every call
//! is skipped for a cool-off, then a single request probes Redis again.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use shared::cache::{hash_slot, HASH_SLOTS};

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooloff_ms: u64,
    origin: Instant,
    failures: AtomicU32,
    /// Milliseconds since `origin` until which Redis is skipped; 0 while closed.
    open_until: AtomicU64,
    /// When the current probe started (ms since `origin`); 0 when none runs.
    /// Kept as a time rather than a flag so that a probe whose request was
    /// cancelled cannot keep the breaker shut: after a cool-off another probes.
    probe_started: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, cooloff: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooloff_ms: u64::try_from(cooloff.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            origin: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probe_started: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 keeps 0 free to mean "never".
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// Whether this call may use Redis.
    pub fn allow(&self) -> bool {
        let open_until = self.open_until.load(Ordering::Acquire);
        if open_until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < open_until {
            return false;
        }
        // Cool-off over: let exactly one caller probe.
        let started = self.probe_started.load(Ordering::Acquire);
        if started != 0 && now < started.saturating_add(self.cooloff_ms) {
            return false;
        }
        self.probe_started
            .compare_exchange(started, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    pub fn record_success(&self) {
        // Loads first: on the hit path the breaker is closed and a load keeps
        // the cache line shared between cores.
        if self.failures.load(Ordering::Acquire) != 0 {
            self.failures.store(0, Ordering::Release);
        }
        if self.open_until.load(Ordering::Acquire) != 0 {
            if self.open_until.swap(0, Ordering::AcqRel) != 0 {
                tracing::info!("Redis answers again; cache resumed");
            }
            self.probe_started.store(0, Ordering::Release);
        }
    }

    pub fn record_failure(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        let was_open = self.is_open();
        if was_open || failures >= self.threshold {
            let until = self.now_ms().saturating_add(self.cooloff_ms);
            self.open_until.store(until, Ordering::Release);
            self.probe_started.store(0, Ordering::Release);
            if !was_open {
                tracing::warn!(
                    failures,
                    cooloff_ms = self.cooloff_ms,
                    "Redis failing; bypassing the cache"
                );
            }
        }
    }
}

/// One breaker for a single Redis; in a cluster one per hash slot, so that a
/// stopped master turns only its own slots' scopes into BYPASS.
pub enum Breakers {
    One(Breaker),
    PerSlot(Box<[Breaker]>),
}

impl Breakers {
    pub fn new(threshold: u32, cooloff: Duration, cluster: bool) -> Self {
        let breaker = || Breaker::new(threshold, cooloff);
        if cluster {
            Self::PerSlot((0..HASH_SLOTS).map(|_| breaker()).collect())
        } else {
            Self::One(breaker())
        }
    }

    /// The breaker guarding `key`'s node.
    pub fn of(&self, key: &str) -> &Breaker {
        match self {
            Self::One(breaker) => breaker,
            Self::PerSlot(slots) => {
                // hash_slot is below HASH_SLOTS, the slice's length.
                &slots[usize::from(hash_slot(key))]
            }
        }
    }

    /// The breaker the epoch refresh reports to: the whole server's. In a
    /// cluster the refresh tolerates a stopped master and says nothing about
    /// any one slot, so it reports to none.
    pub fn whole(&self) -> Option<&Breaker> {
        match self {
            Self::One(breaker) => Some(breaker),
            Self::PerSlot(_) => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_once_after_cooloff() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        b.record_failure();
        assert!(b.allow(), "one failure is below the threshold");
        b.record_failure();
        assert!(!b.allow(), "open after the threshold");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "the first caller after the cool-off probes");
        assert!(!b.allow(), "only one probe at a time");
        b.record_failure();
        assert!(!b.allow(), "a failed probe re-opens it");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.record_success();
        assert!(b.allow() && b.allow(), "a successful probe closes it");
        assert!(!b.is_open());
    }

    #[test]
    fn an_abandoned_probe_does_not_keep_it_shut() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.record_failure();
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow());
        // The probe's request vanished without reporting.
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "another probe once the first is overdue");
    }
}
