//! Single flight: concurrent misses for one key share one database query.
//!
//! The shared work runs in its own task, so a client that disconnects cannot
//! cancel it for the others, and the task removes its key when it is done
//! (whoever is still waiting gets its result; later requests start afresh).

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use futures::future::{BoxFuture, FutureExt, Shared};
use shared::cache::CachedResponse;
use tracing::Instrument;

use crate::error::ApiError;

pub type FlightResult = Result<Arc<CachedResponse>, ApiError>;

#[derive(Default)]
pub struct Flights {
    in_flight: Mutex<HashMap<String, Shared<BoxFuture<'static, FlightResult>>>>,
    joined: AtomicU64,
}

impl Flights {
    /// Runs `work` for `key`, or waits for the run already under way.
    pub async fn run<F>(self: &Arc<Self>, key: String, work: F) -> FlightResult
    where
        F: Future<Output = FlightResult> + Send + 'static,
    {
        let flight = {
            // A poisoned lock only means another request panicked while
            // inserting; the map itself is still consistent.
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(flight) = map.get(&key) {
                self.joined.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("singleflight_joined_total").increment(1);
                flight.clone()
            } else {
                let flights = Arc::clone(self);
                let own_key = key.clone();
                // In the span of the request that started it, so the query's
                // spans show under that request.
                let task = tokio::spawn(
                    async move {
                        // Dropped when the work ends, even by a panic.
                        let _landing = Landing {
                            flights,
                            key: own_key,
                        };
                        work.await
                    }
                    .in_current_span(),
                );
                let flight = async move {
                    task.await.unwrap_or_else(|error| {
                        tracing::error!(%error, "a cache-miss task failed");
                        Err(ApiError::Internal)
                    })
                }
                .boxed()
                .shared();
                map.insert(key, flight.clone());
                flight
            }
        };
        flight.await
    }

    /// Requests that waited for another's query instead of running their own.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }
}

/// Removes a flight's key when its task ends.
struct Landing {
    flights: Arc<Flights>,
    key: String,
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.flights
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}
