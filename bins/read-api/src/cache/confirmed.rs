//! In a cluster, the slots whose master the last topology check saw answer as
//! the one it had seen before (or, if the slot changed hands, after the epoch
//! was replaced): the only slots the cache serves.
//!
//! A promoted replica may lack the last purges of the master it replaces, so
//! its slots may hold generations (with their entries) that a purge already
//! replaced. The epoch refresh replaces the epoch when a slot changes hands
//! (`shared::cache::epoch`), but a lookup between the promotion and that
//! refresh would read the stale entry under the old epoch. Promotion takes at
//! least `cluster-node-timeout` plus the election (half a second or more)
//! after the master stopped answering; well before that, the master's slots
//! are unconfirmed here, by the first call to one of them that fails or by the
//! next topology check (every second, and at once after a failed call), and
//! stay so until a check that saw no failure meanwhile finds their master
//! answering, the epoch replaced first if the master is a new one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use shared::cache::{hash_slot, Topology, HASH_SLOTS};

pub struct Confirmed {
    slots: Box<[AtomicBool]>,
    /// Failed calls so far: a check is trusted to confirm only if none
    /// happened while it ran.
    failures: AtomicU64,
}

impl Confirmed {
    /// Nothing confirmed before the first check.
    pub fn new() -> Self {
        Self {
            slots: (0..HASH_SLOTS).map(|_| AtomicBool::new(false)).collect(),
            failures: AtomicU64::new(0),
        }
    }

    pub fn allows(&self, key: &str) -> bool {
        // hash_slot is below HASH_SLOTS, the slice's length.
        self.slots[usize::from(hash_slot(key))].load(Ordering::Acquire)
    }

    /// A call on `key`'s slot failed: its master may be gone.
    pub fn record_failure(&self, key: &str) {
        self.slots[usize::from(hash_slot(key))].store(false, Ordering::Release);
        self.failures.fetch_add(1, Ordering::AcqRel);
    }

    /// Taken before a topology check, for [`Self::apply`].
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Applies a check that began at `since` (its epoch already in use):
    /// slots of masters that did not answer are unconfirmed; those of
    /// masters that did are confirmed, unless a call failed meanwhile.
    pub fn apply(&self, topology: &Topology, since: u64) {
        let quiet = self.failures() == since;
        let mut answered = vec![false; self.slots.len()];
        for master in topology.masters.iter().filter(|m| m.run_id.is_some()) {
            for range in &master.slots {
                let range = usize::from(*range.start())..=usize::from(*range.end());
                for slot in answered.get_mut(range).into_iter().flatten() {
                    *slot = true;
                }
            }
        }
        for (slot, answered) in self.slots.iter().zip(answered) {
            if !answered {
                slot.store(false, Ordering::Release);
            } else if quiet {
                slot.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::cache::Master;

    use super::*;

    fn topology(answered: bool) -> Topology {
        Topology {
            masters: vec![Master {
                node: Some(("h".to_owned(), 1)),
                slots: vec![0..=HASH_SLOTS - 1],
                run_id: answered.then(|| "r".to_owned()),
            }],
        }
    }

    #[test]
    fn a_failure_unconfirms_until_a_quiet_check_confirms() {
        let confirmed = Confirmed::new();
        assert!(!confirmed.allows("{feed}:gen"), "nothing before a check");
        let since = confirmed.failures();
        confirmed.apply(&topology(true), since);
        assert!(confirmed.allows("{feed}:gen"));

        let since = confirmed.failures();
        confirmed.record_failure("{feed}:gen");
        assert!(!confirmed.allows("{feed}:gen"));
        assert!(confirmed.allows("{tag:x}:gen"), "other slots stay");
        confirmed.apply(&topology(true), since);
        assert!(
            !confirmed.allows("{feed}:gen"),
            "a check that overlapped a failure confirms nothing"
        );
        confirmed.apply(&topology(false), confirmed.failures());
        assert!(!confirmed.allows("{tag:x}:gen"), "a silent master");
        confirmed.apply(&topology(true), confirmed.failures());
        assert!(confirmed.allows("{feed}:gen") && confirmed.allows("{tag:x}:gen"));
    }
}
