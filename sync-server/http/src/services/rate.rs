//! Per-key request rates (`rate` of `POST /keys`): a token bucket per key, in this process's
//! memory. The daily quota is the durable, shared limit (counted in the database by every
//! process); the rate smooths bursts, so it is kept where the requests arrive — with several
//! server processes a key may reach `rate` on each.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Keys whose buckets are kept at most; beyond that, full (idle) buckets are dropped first and,
/// failing that, all of them (a new bucket starts full, so forgetting one only forgives a burst).
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every key seen.
#[derive(Debug, Default)]
pub struct Rates {
    buckets: HashMap<String, Bucket>,
}

impl Rates {
    /// Takes one request of `key` (limited to `rate` a second, bursts of up to `rate`) at `now`;
    /// `Err(wait)` when the bucket is empty: how long until a request would pass.
    pub fn take(&mut self, key: &str, rate: u64, now: Instant) -> Result<(), Duration> {
        let rate = rate.max(1) as f64;
        if !self.buckets.contains_key(key) && self.buckets.len() >= MAX_BUCKETS {
            self.buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < rate);
            if self.buckets.len() >= MAX_BUCKETS {
                self.buckets.clear();
            }
        }
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(rate);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_rate_then_rate_a_second() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(r.take("k", 5, t0).is_ok(), "request {i} of the burst");
        }
        let wait = r.take("k", 5, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
        // Another key has its own bucket.
        assert!(r.take("other", 5, t0).is_ok());
        // A fifth of a second later one more passes, and only one.
        let t1 = t0 + Duration::from_millis(200);
        assert!(r.take("k", 5, t1).is_ok());
        assert!(r.take("k", 5, t1).is_err());
        // Idle for long: the bucket is full again, never fuller.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(r.take("k", 5, t2).is_ok());
        }
        assert!(r.take("k", 5, t2).is_err());
    }

    #[test]
    fn the_buckets_are_bounded() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS + 10) {
            r.take(&format!("k{i}"), 1, t0).unwrap();
        }
        assert!(r.buckets.len() <= MAX_BUCKETS);
    }
}
