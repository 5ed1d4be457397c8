//! Brute-force protection for password logins, as a pure function of the recent failures.
//!
//! Rule: when the latest failed login for a username and the failures before it within `window`
//! number at least `max_failures`, further attempts are refused until `cooldown` after that
//! latest failure. Refused attempts are not failures (the password is not even checked), so an
//! attacker hammering a locked account does not extend the lock for its owner. With the default
//! policy (5 within 15 minutes, 15 minutes cooldown) that is at most 5 guesses per 15 minutes; with
//! a cooldown shorter than the window, each failure after a lock locks again at once.
//! Failures are counted per attempted username, whether or not the account exists, so the
//! answer does not reveal which usernames exist. A successful login clears the count.

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: usize,
    pub window: SignedDuration,
    pub cooldown: SignedDuration,
}

impl Default for LockoutPolicy {
    /// 5 failures within 15 minutes lock the username for 15 minutes.
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: SignedDuration::from_mins(15),
            cooldown: SignedDuration::from_mins(15),
        }
    }
}

impl LockoutPolicy {
    /// Failures older than this no longer matter and may be pruned.
    pub fn horizon(&self, now: Timestamp) -> Timestamp {
        // A lock still running started after now - cooldown and counts failures up to one window
        // before that.
        let keep = self.window.checked_add(self.cooldown).unwrap_or(SignedDuration::MAX);
        now.checked_sub(keep).unwrap_or(Timestamp::MIN)
    }

    /// Until when the username is locked, given its recent failed logins (any order); `None`
    /// when an attempt may go ahead now.
    pub fn locked_until(&self, failures: &[Timestamp], now: Timestamp) -> Option<Timestamp> {
        if self.max_failures == 0 {
            return None;
        }
        // Counted in the window before the latest failure, not before now, so that a lock lasts
        // its full cooldown even when older failures leave the window meanwhile.
        let past: Vec<Timestamp> = failures.iter().copied().filter(|t| *t <= now).collect();
        let latest = past.iter().max().copied()?;
        let since = latest.checked_sub(self.window).unwrap_or(Timestamp::MIN);
        if past.iter().filter(|t| **t > since).count() < self.max_failures {
            return None;
        }
        let until = latest.checked_add(self.cooldown).unwrap_or(Timestamp::MAX);
        (now < until).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH.checked_add(SignedDuration::from_mins(1000 + min)).unwrap()
    }

    /// `failures` and `now` in minutes; `expected` = locked until minute.
    fn check(failures: &[i64], now: i64, expected: Option<i64>) {
        let p = LockoutPolicy::default();
        let f: Vec<Timestamp> = failures.iter().map(|m| t(*m)).collect();
        assert_eq!(p.locked_until(&f, t(now)), expected.map(t), "failures {failures:?} at {now}");
    }

    #[test]
    fn lockout_table() {
        check(&[], 0, None);
        check(&[0, 1, 2, 3], 4, None);
        check(&[0, 1, 2, 3, 4], 4, Some(19));
        check(&[0, 1, 2, 3, 4], 18, Some(19));
        check(&[0, 1, 2, 3, 4], 19, None);
        // Order does not matter.
        check(&[4, 2, 0, 3, 1], 5, Some(19));
        // The lock lasts its full cooldown although minute 0 has left the window by 16.
        check(&[0, 1, 2, 3, 4], 16, Some(19));
        // After the lock, older failures are out of the new failure's window.
        check(&[0, 1, 2, 3, 4, 20], 21, None);
        check(&[0, 1, 2, 3, 4, 20, 21, 22, 23], 23, None);
        check(&[0, 1, 2, 3, 4, 20, 21, 22, 23, 24], 24, Some(39));
        // Four failures, then one just outside the window of the fifth.
        check(&[0, 1, 2, 3, 15], 15, None);
        check(&[0, 1, 2, 3, 14], 15, Some(29));
        // Spread-out failures never lock.
        check(&[0, 16, 32, 48, 64], 64, None);
        // Failures "in the future" (clock moved back) are ignored.
        check(&[5, 6, 7, 8, 9], 4, None);
    }

    #[test]
    fn a_cooldown_shorter_than_the_window_relocks_after_each_failure() {
        let p = LockoutPolicy { cooldown: SignedDuration::from_mins(5), ..LockoutPolicy::default() };
        let f = |ms: &[i64]| ms.iter().map(|m| t(*m)).collect::<Vec<_>>();
        assert_eq!(p.locked_until(&f(&[0, 1, 2, 3, 4]), t(8)), Some(t(9)));
        assert_eq!(p.locked_until(&f(&[0, 1, 2, 3, 4]), t(9)), None);
        assert_eq!(p.locked_until(&f(&[0, 1, 2, 3, 4, 9]), t(9)), Some(t(14)));
    }

    #[test]
    fn zero_max_failures_turns_lockout_off() {
        let p = LockoutPolicy { max_failures: 0, ..LockoutPolicy::default() };
        assert_eq!(p.locked_until(&[t(0), t(1)], t(1)), None);
    }

    #[test]
    fn horizon_is_window_plus_cooldown() {
        let p = LockoutPolicy { cooldown: SignedDuration::from_mins(30), ..LockoutPolicy::default() };
        assert_eq!(p.horizon(t(100)), t(55));
        assert_eq!(LockoutPolicy::default().horizon(t(100)), t(70));
    }
}
