//! Cancelling store work whose caller has gone: a request that timed out, a client that hung up.
//!
//! Why: the server runs store calls on blocking threads. Dropping the request's future does not
//! stop such a thread, and a SQLite statement cannot be stopped from outside either, so a
//! timed-out heavy read kept its thread and the database busy to the end, and a few of them
//! starved everyone else. Here a [`CancelToken`] is made per unit of work (the server makes one
//! per blocking call, cancelled when the request is dropped or its deadline passes) and
//! installed as the current token of the thread doing the work ([`scope`]). Then
//!
//! - every store connection runs a SQLite progress handler that interrupts the running statement
//!   when the current token is cancelled; the store call fails with [`StoreError::Cancelled`];
//! - long loops in Rust call [`check`] now and then.
//!
//! Without a current token (the CLI, tests, background work) nothing is ever cancelled.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::error::StoreError;

/// Why work was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Its deadline passed.
    Deadline,
    /// Its caller went away (the request was dropped, the client disconnected).
    Abandoned,
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CancelReason::Deadline => "its deadline passed",
            CancelReason::Abandoned => "its caller went away",
        })
    }
}

#[derive(Debug)]
struct Inner {
    cancelled: AtomicBool,
    deadline: Option<Instant>,
}

/// A cancellation flag shared between whoever waits for the work and the thread doing it.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<Inner>);

impl CancelToken {
    /// A token cancelled only by [`CancelToken::cancel`], or also once `deadline` has passed.
    pub fn new(deadline: Option<Instant>) -> Self {
        CancelToken(Arc::new(Inner { cancelled: AtomicBool::new(false), deadline }))
    }

    /// Cancels the work (idempotent).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// Why the work should stop, or `None` while it may go on.
    pub fn reason(&self) -> Option<CancelReason> {
        if self.0.cancelled.load(Ordering::Relaxed) {
            Some(CancelReason::Abandoned)
        } else if self.0.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(CancelReason::Deadline)
        } else {
            None
        }
    }

    /// A guard that cancels this token when dropped, unless [`DropGuard::disarm`]ed first: held
    /// by the future waiting for the work, so dropping that future cancels the work.
    pub fn drop_guard(&self) -> DropGuard {
        DropGuard(Some(self.clone()))
    }
}

/// Cancels its token on drop; see [`CancelToken::drop_guard`].
#[derive(Debug)]
pub struct DropGuard(Option<CancelToken>);

impl DropGuard {
    /// The work ended normally: dropping the guard no longer cancels.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

thread_local! {
    static SHIELDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

static CANCELLED: AtomicU64 = AtomicU64::new(0);

/// While alive, statements this thread runs are not interrupted. Held by a member of a group
/// commit (`sqlite/group.rs`): SQLite answers an interrupted write inside a transaction by rolling
/// the whole transaction back — the other members' writes with it — so a caller hanging up must
/// not stop a member half-way. (Members are short: one case action.)
pub(crate) struct Shield(std::marker::PhantomData<*const ()>);

impl Shield {
    pub(crate) fn new() -> Self {
        SHIELDED.with(|s| s.set(s.get() + 1));
        Shield(std::marker::PhantomData)
    }
}

impl Drop for Shield {
    fn drop(&mut self) {
        SHIELDED.with(|s| s.set(s.get().saturating_sub(1)));
    }
}

/// Runs `f` with `token` as this thread's current token (the previous one is restored after,
/// also when `f` panics).
pub fn scope<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(token.clone()));
    let _restore = Restore(previous);
    f()
}

/// Why the current work should stop, or `None` (also when no token is current).
pub fn current_reason() -> Option<CancelReason> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(CancelToken::reason))
}

/// The deadline of the current token, if it has one (PostgreSQL reads turn it into a
/// `statement_timeout`).
pub(crate) fn current_deadline() -> Option<Instant> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|t| t.0.deadline))
}

/// `Err(StoreError::Cancelled)` once the current token is cancelled; long loops call it.
pub fn check() -> Result<(), StoreError> {
    match current_reason() {
        None => Ok(()),
        Some(reason) => Err(cancelled(reason)),
    }
}

/// The error for work stopped for `reason`, counted in [`cancelled_total`].
pub(crate) fn cancelled(reason: CancelReason) -> StoreError {
    CANCELLED.fetch_add(1, Ordering::Relaxed);
    StoreError::Cancelled(reason)
}

/// How many store calls were stopped by cancellation since the process started.
pub fn cancelled_total() -> u64 {
    CANCELLED.load(Ordering::Relaxed)
}

/// The progress handler of every store connection: `true` (interrupt the statement) when the
/// current token is cancelled. SQLite calls it every [`PROGRESS_OPS`] virtual machine steps.
pub(crate) fn interrupt_requested() -> bool {
    SHIELDED.with(|s| s.get() == 0) && current_reason().is_some()
}

/// Virtual machine steps between two progress handler calls: a few microseconds of work, so a
/// cancelled statement stops at once while the check costs nothing measurable.
pub(crate) const PROGRESS_OPS: std::ffi::c_int = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_token_is_current_only_inside_its_scope() {
        let t = CancelToken::new(None);
        assert!(check().is_ok());
        scope(&t, || {
            assert!(check().is_ok());
            t.cancel();
            assert!(matches!(check(), Err(StoreError::Cancelled(CancelReason::Abandoned))));
        });
        assert!(check().is_ok(), "no token after the scope");
    }

    #[test]
    fn a_deadline_cancels_and_a_dropped_guard_cancels() {
        let t = CancelToken::new(Some(Instant::now() + Duration::from_millis(20)));
        assert_eq!(t.reason(), None);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(t.reason(), Some(CancelReason::Deadline));
        let t = CancelToken::new(None);
        drop(t.drop_guard());
        assert_eq!(t.reason(), Some(CancelReason::Abandoned));
        let t = CancelToken::new(None);
        t.drop_guard().disarm();
        assert_eq!(t.reason(), None);
    }
}
