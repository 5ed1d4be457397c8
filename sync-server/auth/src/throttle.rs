//! Flood control for what anonymous callers can make the server do: password logins (each one an
//! Argon2 run), citizen registrations and enrolment-code redemptions, throttled per client address
//! and per account, and the audit rows their failures write, bounded per address.
//!
//! Why here and in memory: the failed-login lockout ([`crate::LockoutPolicy`]) counts per
//! username, so an attacker trying a new username every time was never slowed down, and every
//! attempt cost a full password hash. A rate per address stops that before any hashing; a rate
//! per account stops a spread-out attack on one name. Rates are a cheap, approximate defence
//! against floods, not a record: they live in memory (bounded in size, forgotten at restart),
//! while what must last (failures that lock an account, the audit log) stays in SQLite.
//!
//! The limiter is GCRA (the generic cell rate algorithm, a token bucket kept as one instant per
//! key): `burst` attempts at once, then one every `period / burst`. A key whose bucket is full
//! again is forgotten, and the table holds at most `capacity` keys: when full, keys whose buckets
//! are full again are swept, and if none is, the key closest to being full is dropped (a flood of
//! fresh addresses can make the limiter forget, never refuse everyone).
//!
//! IPv6 clients are keyed by their /64 prefix (one subscriber usually holds a whole /64, so
//! per-address keys would give an attacker 2^64 buckets). Pure: the caller passes "now".

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use jiff::{SignedDuration, Timestamp};

/// `burst` attempts at once, refilled evenly over `period` (so `burst` per `period` sustained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub burst: u32,
    pub period: SignedDuration,
}

impl RatePolicy {
    pub const fn new(burst: u32, period: SignedDuration) -> Self {
        RatePolicy { burst, period }
    }

    /// Never refuses (`burst` 0 turns a limit off).
    pub const OFF: RatePolicy = RatePolicy { burst: 0, period: SignedDuration::ZERO };

    fn interval(&self) -> SignedDuration {
        self.period / i32::try_from(self.burst).unwrap_or(i32::MAX).max(1)
    }
}

/// The limits on anonymous work. `Default` is the production setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Password checks (logins, and re-authentication for a device token) per client address:
    /// 30 at once, 30 a minute. An office behind one NAT signing in at 9:00 stays well below.
    pub login_per_address: RatePolicy,
    /// Registrations per client address: 5 at once, 10 an hour.
    pub register_per_address: RatePolicy,
    /// Registrations per requested username: 3 an hour.
    pub register_per_account: RatePolicy,
    /// Enrolment-code redemptions per client address: 20 at once (a workshop handing out
    /// tablets), 60 an hour.
    pub enrol_per_address: RatePolicy,
    /// Devices enrolled per account: 5 at once, 10 a day.
    pub enrol_per_account: RatePolicy,
    /// Audit rows for refused anonymous attempts per client address: 20 at once, 20 per 10
    /// minutes; beyond that they are counted and written as one summary row.
    pub audit_per_address: RatePolicy,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            login_per_address: RatePolicy::new(30, SignedDuration::from_mins(1)),
            register_per_address: RatePolicy::new(5, SignedDuration::from_mins(30)),
            register_per_account: RatePolicy::new(3, SignedDuration::from_hours(1)),
            enrol_per_address: RatePolicy::new(20, SignedDuration::from_mins(20)),
            enrol_per_account: RatePolicy::new(5, SignedDuration::from_hours(12)),
            audit_per_address: RatePolicy::new(20, SignedDuration::from_mins(10)),
        }
    }
}

/// Keys one limiter remembers at most (about 100 bytes each).
pub const DEFAULT_CAPACITY: usize = 50_000;

/// One GCRA limiter over string keys, bounded in size.
#[derive(Debug)]
pub struct RateLimiter {
    /// Per key: the "theoretical arrival time", i.e. when its bucket is full again.
    tat: HashMap<String, Timestamp>,
    capacity: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl RateLimiter {
    pub fn with_capacity(capacity: usize) -> Self {
        RateLimiter { tat: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Takes one attempt for `key` at `now`: `Ok` when allowed, else `Err(until)`, the instant an
    /// attempt will be allowed again. A refused attempt takes nothing.
    pub fn check(&mut self, policy: &RatePolicy, key: &str, now: Timestamp) -> Result<(), Timestamp> {
        if policy.burst == 0 {
            return Ok(());
        }
        let interval = policy.interval();
        let tolerance = policy.period.checked_sub(interval).unwrap_or(SignedDuration::ZERO);
        let tat = self.tat.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let allowed_from = tat.checked_sub(tolerance).unwrap_or(Timestamp::MIN);
        if allowed_from > now {
            return Err(allowed_from);
        }
        let next = tat.checked_add(interval).unwrap_or(Timestamp::MAX);
        if !self.tat.contains_key(key) && self.tat.len() >= self.capacity {
            self.make_room(now);
        }
        self.tat.insert(key.to_owned(), next);
        Ok(())
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tat.is_empty()
    }

    fn make_room(&mut self, now: Timestamp) {
        self.tat.retain(|_, t| *t > now);
        if self.tat.len() >= self.capacity
            && let Some(k) = self.tat.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            self.tat.remove(&k);
        }
    }
}

/// The key of a client address: the IP without the port, IPv6 cut to its /64 prefix. Text that
/// is not an address is kept as it is (bounded), so nothing is ever unkeyed by accident.
pub fn address_key(address: &str) -> String {
    let ip = address.parse::<SocketAddr>().map(|s| s.ip()).or_else(|_| address.parse::<IpAddr>());
    match ip {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => address.chars().take(64).collect(),
    }
}

/// Refused anonymous attempts not written one by one, per address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// Per audit action code: how many.
    pub counts: BTreeMap<String, u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// What to do with a refused anonymous attempt's audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAdmission {
    /// Write it; first write the summary of the attempts counted before it, if any.
    Write(Option<(String, Suppressed)>),
    /// Count it instead of writing it.
    Count,
}

/// Bounds the audit rows refused anonymous attempts write per address: within the rate each is a
/// row; beyond, they are counted, and the count is written as a summary row later (when the
/// address is admitted again, when the count is a minute old, or when the store closes). Rows are
/// never removed; only their number is bounded.
#[derive(Debug, Default)]
pub struct AuditBudget {
    limiter: RateLimiter,
    pending: HashMap<String, Suppressed>,
}

/// A count older than this is written out at the next audit write of anyone.
pub const SUMMARY_AFTER: SignedDuration = SignedDuration::from_mins(1);
/// Addresses with a pending count at most; beyond, the oldest count is written out at once.
const MAX_PENDING: usize = 10_000;

impl AuditBudget {
    /// Decides about one row of `action` for `address`.
    pub fn admit(&mut self, policy: &RatePolicy, address: &str, action: &str, now: Timestamp) -> AuditAdmission {
        let key = address_key(address);
        match self.limiter.check(policy, &key, now) {
            Ok(()) => AuditAdmission::Write(self.pending.remove_entry(&key)),
            Err(_) => {
                let s = self.pending.entry(key).or_default();
                *s.counts.entry(action.to_owned()).or_default() += 1;
                s.first.get_or_insert(now);
                s.last = Some(now);
                AuditAdmission::Count
            }
        }
    }

    /// Counts to write out now: those older than [`SUMMARY_AFTER`] (all with `everything`), and
    /// the oldest beyond the bound on pending addresses.
    pub fn due(&mut self, now: Timestamp, everything: bool) -> Vec<(String, Suppressed)> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let cutoff = now.checked_sub(SUMMARY_AFTER).unwrap_or(Timestamp::MIN);
        let mut keys: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, s)| everything || s.last.is_none_or(|t| t <= cutoff))
            .map(|(k, _)| k.clone())
            .collect();
        if self.pending.len() > MAX_PENDING {
            let mut by_age: Vec<(&String, Option<Timestamp>)> =
                self.pending.iter().map(|(k, s)| (k, s.first)).collect();
            by_age.sort_by_key(|(_, t)| *t);
            keys.extend(by_age.iter().take(self.pending.len() - MAX_PENDING).map(|(k, _)| (*k).clone()));
            keys.sort();
            keys.dedup();
        }
        keys.into_iter().filter_map(|k| self.pending.remove_entry(&k)).collect()
    }
}

/// Bounds a text by characters (never splitting one): at most `max` characters, the last one `…`
/// when it was cut.
pub fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some(_) if max == 0 => std::borrow::Cow::Borrowed(""),
        Some(_) => {
            let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            std::borrow::Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH.checked_add(SignedDuration::from_secs(1_000_000 + secs)).unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let p = RatePolicy::new(3, SignedDuration::from_secs(30)); // one every 10 s
        let mut l = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(l.check(&p, "a", t(0)), Ok(()));
        }
        assert_eq!(l.check(&p, "a", t(0)), Err(t(10)));
        assert_eq!(l.check(&p, "a", t(9)), Err(t(10)), "refusals take nothing");
        assert_eq!(l.check(&p, "a", t(10)), Ok(()));
        assert_eq!(l.check(&p, "a", t(10)), Err(t(20)));
        // Another key has its own bucket.
        assert_eq!(l.check(&p, "b", t(10)), Ok(()));
        // After a full period the bucket is full again.
        for _ in 0..3 {
            assert_eq!(l.check(&p, "a", t(60)), Ok(()));
        }
        assert!(l.check(&p, "a", t(60)).is_err());
    }

    #[test]
    fn off_never_refuses() {
        let mut l = RateLimiter::default();
        for _ in 0..1000 {
            assert_eq!(l.check(&RatePolicy::OFF, "a", t(0)), Ok(()));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let p = RatePolicy::new(1, SignedDuration::from_secs(60));
        let mut l = RateLimiter::with_capacity(100);
        for i in 0..10_000 {
            assert_eq!(l.check(&p, &format!("k{i}"), t(i / 100)), Ok(()));
            assert!(l.len() <= 100);
        }
        // Keys whose bucket is full again are swept first.
        let mut l = RateLimiter::with_capacity(2);
        l.check(&p, "old", t(0)).unwrap();
        l.check(&p, "mid", t(30)).unwrap();
        l.check(&p, "new", t(61)).unwrap();
        assert_eq!(l.check(&p, "mid", t(61)), Err(t(90)), "still limited");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn addresses_are_keyed_by_ip_and_ipv6_prefix() {
        assert_eq!(address_key("203.0.113.9:40000"), "203.0.113.9");
        assert_eq!(address_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_key("[2001:db8:1:2:aaaa::1]:443"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(address_key("not an address"), "not an address");
        assert_eq!(address_key(&"x".repeat(500)).len(), 64);
    }

    #[test]
    fn audit_rows_beyond_the_budget_are_counted_then_summarised() {
        let p = RatePolicy::new(2, SignedDuration::from_mins(10));
        let mut b = AuditBudget::default();
        assert_eq!(b.admit(&p, "203.0.113.9:1", "login.failed", t(0)), AuditAdmission::Write(None));
        assert_eq!(b.admit(&p, "203.0.113.9:2", "login.failed", t(0)), AuditAdmission::Write(None));
        for _ in 0..5 {
            assert_eq!(b.admit(&p, "203.0.113.9:3", "login.failed", t(1)), AuditAdmission::Count);
        }
        assert_eq!(b.admit(&p, "203.0.113.9:3", "enrolment.redeem", t(2)), AuditAdmission::Count);
        assert!(b.due(t(30), false).is_empty(), "too fresh");
        // Admitted again: the count comes first.
        let AuditAdmission::Write(Some((key, s))) = b.admit(&p, "203.0.113.9", "login.failed", t(300)) else {
            panic!("expected a summary");
        };
        assert_eq!(key, "203.0.113.9");
        assert_eq!(s.counts.get("login.failed"), Some(&5));
        assert_eq!(s.counts.get("enrolment.redeem"), Some(&1));
        assert_eq!((s.first, s.last), (Some(t(1)), Some(t(2))));
        // A count a minute old is due at anyone's next write.
        assert_eq!(b.admit(&p, "203.0.113.9", "login.failed", t(300)), AuditAdmission::Count);
        assert!(b.due(t(330), false).is_empty());
        assert_eq!(b.due(t(361), false).len(), 1);
        assert_eq!(b.admit(&p, "203.0.113.9", "login.failed", t(362)), AuditAdmission::Count);
        assert_eq!(b.due(t(362), true).len(), 1, "everything on close");
    }

    #[test]
    fn texts_are_bounded_by_characters() {
        assert_eq!(bounded("张三", 2), "张三");
        assert_eq!(bounded("张三李四", 3), "张三…");
        assert_eq!(bounded("abc", 0), "");
        assert_eq!(bounded("", 5), "");
    }
}
