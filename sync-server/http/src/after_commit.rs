//! Work that follows a commit but need not delay its answer: dropping the map tiles the commit
//! touched (`TileService::catch_up`) and moving its audit record from the store's outbox to the
//! audit log (`audit_outbox`). Write paths that answer many small requests (case actions) ring
//! [`kick`] instead of doing both themselves; one worker thread per server state then does them
//! once for everything committed since it last ran.
//!
//! Commits by other writers ring it too: a second thread per server state waits on the store's
//! commit watcher (`shikong_store::watch`: PostgreSQL `LISTEN`, or a poll of the newest
//! transaction on SQLite), so several server processes on one database (and a `shikong import`
//! into a served folder) drop each other's stale tiles and catch the gazetteer up within about a
//! second, not at the next request.
//!
//! Why this is safe: neither is needed for correctness of the answer. Tile requests catch up
//! themselves at most every freshness interval, and the audit log's readers drain the outbox
//! first; a crash before the worker ran leaves the records in the outbox, appended at the next
//! start.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::AppState;

/// The worker's doorbell (one per server state).
#[derive(Debug, Default)]
pub struct Worker {
    rung: Mutex<bool>,
    bell: Condvar,
}

/// How often the worker looks whether its server state is gone.
const CHECK: Duration = Duration::from_millis(500);

/// Wakes the worker: something was committed.
pub fn kick(state: &AppState) {
    *state.after_commit.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
    state.after_commit.bell.notify_one();
}

/// Starts the worker of `state`; it ends within [`CHECK`] after the state's store is dropped.
pub(crate) fn spawn(state: &AppState) {
    let worker = state.after_commit.clone();
    let store = Arc::downgrade(&state.store);
    let auth = Arc::downgrade(&state.auth);
    let faults = Arc::downgrade(&state.faults);
    let tiles = Arc::downgrade(&state.tiles);
    let gazetteer = Arc::downgrade(&state.gazetteer);
    spawn_watcher(state);
    let spawned = std::thread::Builder::new().name("after-commit".into()).spawn(move || {
        loop {
            {
                let rung = worker.rung.lock().unwrap_or_else(PoisonError::into_inner);
                let (mut rung, _) =
                    worker.bell.wait_timeout_while(rung, CHECK, |r| !*r).unwrap_or_else(PoisonError::into_inner);
                if !*rung {
                    // Nothing new: only look whether the state is still there.
                    if Weak::strong_count(&store) == 0 {
                        return;
                    }
                    continue;
                }
                *rung = false;
            }
            let (Some(store), Some(auth), Some(faults), Some(tiles), Some(gazetteer)) =
                (store.upgrade(), auth.upgrade(), faults.upgrade(), tiles.upgrade(), gazetteer.upgrade())
            else {
                return;
            };
            if let Err(e) = tiles.catch_up(store.as_ref()) {
                tracing::warn!(error = %e, "tile invalidation after commits failed");
            }
            if let Err(e) = gazetteer.catch_up(store.as_ref()) {
                tracing::warn!(error = %e, "gazetteer catch-up after commits failed");
            }
            crate::audit_outbox::drain_parts(store.as_ref(), &auth, &faults);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the after-commit worker did not start");
    }
}

/// Starts the thread that rings the worker when the store's commit watcher wakes (commits by
/// any writer, other processes included). It ends within about [`CHECK`] after the state's
/// store is dropped; a broken signal (database unreachable) is logged once until it recovers,
/// and the watcher retries with backoff.
fn spawn_watcher(state: &AppState) {
    let worker = Arc::downgrade(&state.after_commit);
    let store = Arc::downgrade(&state.store);
    let mut watch = shikong_store::watch::watch_commits(&state.store);
    let spawned = std::thread::Builder::new().name("commit-watch".into()).spawn(move || {
        let mut broken = false;
        loop {
            if Weak::strong_count(&store) == 0 {
                return;
            }
            let woke = match watch.wait(CHECK) {
                Ok(woke) => {
                    if broken {
                        tracing::info!("commit signal restored");
                        broken = false;
                    }
                    woke
                }
                Err(e) => {
                    if !broken {
                        tracing::warn!(error = %e, "commit signal lost (other writers' commits are noticed at the next request until it is back)");
                        broken = true;
                    }
                    false
                }
            };
            if woke {
                let Some(worker) = worker.upgrade() else { return };
                *worker.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
                worker.bell.notify_one();
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the commit watcher did not start");
    }
}
