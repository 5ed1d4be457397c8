//! Which reads a read replica may serve: those the caller marks, nothing else.
//!
//! A PostgreSQL store opened with a read replica (a streaming standby) sends reads there only
//! inside [`replica_allowed`] on the current thread; every other read — sync pulls and pushes,
//! the reads a write makes before it writes (a merge's base, a case action's current state),
//! the change feed — goes to the primary. Opt-in rather than opt-out because a stale read on the
//! write path loses updates, while a read served by the primary is merely not offloaded. The
//! server marks the requests that serve OGC API items, tiles and geocoding
//! (`shikong-http`'s `blocking`); the SQLite backend and a store without a replica ignore the
//! mark.

use std::cell::Cell;

thread_local! {
    static ALLOWED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the store's reads on this thread allowed to go to a read replica (restored
/// afterwards, also when `f` panics).
pub fn replica_allowed<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ALLOWED.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ALLOWED.with(|a| a.replace(true)));
    f()
}

/// Whether the current thread runs inside [`replica_allowed`].
pub fn is_replica_allowed() -> bool {
    ALLOWED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_holds_inside_the_scope_only() {
        assert!(!is_replica_allowed());
        let inner = replica_allowed(|| replica_allowed(is_replica_allowed) && is_replica_allowed());
        assert!(inner);
        assert!(!is_replica_allowed(), "restored after the scope");
        let panicked = std::panic::catch_unwind(|| replica_allowed(|| panic!("boom")));
        assert!(panicked.is_err());
        assert!(!is_replica_allowed(), "restored after a panic");
        std::thread::spawn(|| assert!(!is_replica_allowed(), "per thread")).join().unwrap();
    }
}
