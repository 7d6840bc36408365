//! Coalesced reads of a scope's generation.
//!
//! Every request that holds an in-process copy must learn the scope's current
//! generation from Redis, read *after* the request arrived (that is what makes
//! the copy exactly as fresh as Redis). Many concurrent requests for a hot
//! scope can share one such read: a request arriving while a `GET` is in flight
//! waits for the next one, which starts when the current one returns. So each
//! request still gets a generation read that began after it arrived, while
//! Redis sees about one `GET` per round trip per hot scope instead of one per
//! request.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::watch;

/// The outcome of one `GET`: `None` if Redis failed, else the generation (if any).
pub type Read = Option<Option<String>>;

/// (serial of the read, its outcome)
type Published = (u64, Read);

struct Slot {
    /// Serial of the latest read started for this key.
    started: u64,
    in_flight: bool,
    /// Someone arrived during the read in flight and needs the next one.
    wanted: bool,
    results: watch::Sender<Published>,
}

#[derive(Default)]
pub struct GenerationReads {
    slots: Mutex<HashMap<String, Slot>>,
}

impl GenerationReads {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Nothing panics while the lock is held; a poisoned map is consistent.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation at `key`, from a read that started after this call.
    /// `read` performs one bounded `GET`; `wait` bounds the whole call.
    pub async fn current<F, Fut>(self: &Arc<Self>, key: &str, wait: Duration, read: F) -> Read
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Read> + Send + 'static,
    {
        let (mut results, needed) = {
            let mut slots = self.slots();
            let slot = slots.entry(key.to_owned()).or_insert_with(|| Slot {
                started: 0,
                in_flight: false,
                wanted: false,
                results: watch::Sender::new((0, None)),
            });
            let needed = if slot.in_flight {
                slot.wanted = true;
                slot.started + 1
            } else {
                slot.in_flight = true;
                slot.started += 1;
                let serial = slot.started;
                // In its own task, so that a cancelled request cannot strand
                // the requests waiting for this read.
                tokio::spawn(Arc::clone(self).reader(key.to_owned(), serial, read));
                serial
            };
            (slot.results.subscribe(), needed)
        };
        let outcome = tokio::time::timeout(wait, async {
            results
                .wait_for(|(serial, _)| *serial >= needed)
                .await
                .ok()
                .and_then(|published| published.1.clone())
        })
        .await;
        outcome.ok().flatten()
    }

    /// Reads until nobody is waiting for another read, then frees the slot.
    async fn reader<F, Fut>(self: Arc<Self>, key: String, mut serial: u64, read: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Read>,
    {
        loop {
            let outcome = read().await;
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(&key) else {
                return;
            };
            slot.results.send_replace((serial, outcome));
            if slot.wanted {
                slot.wanted = false;
                slot.started += 1;
                serial = slot.started;
            } else {
                slots.remove(&key);
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_reads_that_started_after_they_arrived() {
        let reads = Arc::new(GenerationReads::default());
        let value = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let read = {
            let (value, count) = (Arc::clone(&value), Arc::clone(&count));
            move || {
                let (value, count) = (Arc::clone(&value), Arc::clone(&count));
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    // The value as of the start of the read.
                    let seen = value.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some(Some(seen.to_string()))
                }
            }
        };
        let mut callers = Vec::new();
        for round in 1..=5_u64 {
            // A "write" happens, then callers arrive: each must see it.
            value.store(round, Ordering::SeqCst);
            for _ in 0..20 {
                let reads = Arc::clone(&reads);
                let read = read.clone();
                callers.push(tokio::spawn(async move {
                    let got = reads.current("k", Duration::from_secs(5), read).await;
                    (round, got.unwrap().unwrap().parse::<u64>().unwrap())
                }));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for caller in callers {
            let (round, seen) = caller.await.unwrap();
            assert!(seen >= round, "a caller saw a read older than its arrival");
        }
        let reads_made = count.load(Ordering::SeqCst);
        assert!(reads_made < 20, "100 callers shared {reads_made} reads");
        assert!(reads.slots().is_empty(), "idle keys are freed");
    }

    #[tokio::test]
    async fn a_failed_read_is_reported_as_none() {
        let reads = Arc::new(GenerationReads::default());
        let got = reads
            .current("k", Duration::from_secs(1), || async { None })
            .await;
        assert_eq!(got, None);
        let stuck = reads
            .current("j", Duration::from_millis(20), || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Some(None)
            })
            .await;
        assert_eq!(stuck, None, "bounded by the wait");
    }
}
