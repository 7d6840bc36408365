//! Slows down guessing admin tokens: per client address, a few failed
//! sign-ins are free, then each further attempt must wait twice as long as
//! the last (up to a minute) until a quiet quarter of an hour has passed.
//! In memory, per process: enough to make guessing hopeless, nothing to run.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

const FREE_FAILURES: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(60);
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Bounds the memory an attacker with many addresses can make us use.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl SignInLimiter {
    /// `Err(wait)` while `ip` must wait before it may try again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = map.get(&ip) else {
            return Ok(());
        };
        if f.count < FREE_FAILURES || now.duration_since(f.last) >= FORGET_AFTER {
            return Ok(());
        }
        let doublings = (f.count - FREE_FAILURES).min(6);
        let wait = Duration::from_secs(1 << doublings).min(MAX_WAIT);
        let ready = f.last + wait;
        if now < ready {
            Err(ready - now)
        } else {
            Ok(())
        }
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            // Still full of recent failures: treat the newcomer as the
            // busiest address rather than forget one that is guessing.
            return;
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn slows_down_one_address_only() {
        let limiter = SignInLimiter::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert!(limiter.check(A, t0).is_ok());
            limiter.failed(A, t0);
        }
        assert_eq!(limiter.check(A, t0), Err(Duration::from_secs(1)));
        assert!(limiter.check(B, t0).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.check(A, t1).is_ok());
        limiter.failed(A, t1);
        assert_eq!(limiter.check(A, t1), Err(Duration::from_secs(2)));
        for _ in 0..20 {
            limiter.failed(A, t1);
        }
        assert_eq!(limiter.check(A, t1), Err(MAX_WAIT));
        assert!(limiter.check(A, t1 + FORGET_AFTER).is_ok());
        limiter.succeeded(A);
        assert!(limiter.check(A, t1).is_ok());
    }
}
