//! A way to stop a long computation from outside: the server's jobs can be dismissed
//! (`DELETE /jobs/{id}`) or run past their time limit while a permutation test, an HDBSCAN tree
//! or a density raster is half done, and waiting minutes for it to end would hold a worker that
//! others' jobs are queued for.
//!
//! The crate has no clock and no I/O, so it does not decide *when* to stop: the caller gives a
//! [`Control`] (a flag, or any test such as "dismissed or past the deadline") and the long loops
//! ask it every [`CHECK_EVERY`] units of work or so — a relaxed atomic load or one call, nothing
//! next to the work between two checks. A stopped computation returns
//! [`AnalysisError::Cancelled`] and nothing else: no partial result.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{AnalysisError, Result};

/// About how many units of work (points, cells, draws) pass between two checks.
pub const CHECK_EVERY: usize = 1024;

#[derive(Clone, Copy)]
enum Stop<'a> {
    Never,
    Flag(&'a AtomicBool),
    Test(&'a (dyn Fn() -> bool + Sync)),
}

/// Whether to stop: shared by the threads of one computation (it is `Copy` and `Sync`).
#[derive(Clone, Copy)]
pub struct Control<'a> {
    stop: Stop<'a>,
}

impl std::fmt::Debug for Control<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.stop {
            Stop::Never => "never",
            Stop::Flag(_) => "flag",
            Stop::Test(_) => "test",
        };
        f.debug_struct("Control").field("stop", &kind).finish()
    }
}

impl Control<'static> {
    /// Never stops: what the functions without a control use.
    pub const NONE: Control<'static> = Control { stop: Stop::Never };
}

impl<'a> Control<'a> {
    /// Stops once `flag` is set (by another thread).
    pub fn flag(flag: &'a AtomicBool) -> Self {
        Control { stop: Stop::Flag(flag) }
    }

    /// Stops once `test` answers true (it is called from several threads, at every check).
    pub fn test(test: &'a (dyn Fn() -> bool + Sync)) -> Self {
        Control { stop: Stop::Test(test) }
    }

    /// Whether the computation is asked to stop.
    pub fn stopped(&self) -> bool {
        match self.stop {
            Stop::Never => false,
            Stop::Flag(f) => f.load(Ordering::Relaxed),
            Stop::Test(t) => t(),
        }
    }

    /// `Err(Cancelled)` when asked to stop.
    pub fn check(&self) -> Result<()> {
        if self.stopped() { Err(AnalysisError::Cancelled) } else { Ok(()) }
    }

    /// [`Control::check`] at every [`CHECK_EVERY`]-th `i` (the others pass at once).
    pub fn every(&self, i: usize) -> Result<()> {
        if i.is_multiple_of(CHECK_EVERY) { self.check() } else { Ok(()) }
    }
}
