//! Group commit: many small write transactions made durable by one `COMMIT` (one fsync).
//!
//! Why: with `synchronous = FULL` every commit waits for the disk (≈ 2.6 ms here), which caps a
//! store at a few hundred transactions a second however little each writes — the case runtime
//! (issue 15) needs more than a thousand durable transitions a second. A *grouped* transaction
//! ([`crate::FeatureStore::begin_grouped`]) runs inside a savepoint of a shared SQLite
//! transaction (the group); its commit releases the savepoint and then waits until the group's
//! `COMMIT` has reached the disk, so it still returns only when its writes are durable and
//! visible. The group is committed by the last member when nobody else is waiting for the
//! writer, when it has [`MAX_MEMBERS`] members or is older than [`MAX_AGE`], or by any plain
//! (ungrouped) use of the writer, which always starts from a flushed group.
//!
//! The price, and the rule for callers: until the group commits, the members' writes are visible
//! only on the writer connection. A grouped transaction must therefore read what it is about to
//! change through itself ([`crate::StoreTx::get`]), never through the store's readers. Plain
//! transactions are unaffected (they flush first). A member whose own writes fail rolls back to
//! its savepoint and leaves the others in the group; if the group's `COMMIT` fails, every member
//! waiting on it gets the error (none of them was told it committed).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// Members of one group at most: the first member's wait stays short.
pub(super) const MAX_MEMBERS: usize = 128;
/// A group older than this commits at the next member's end even while others wait.
pub(super) const MAX_AGE: Duration = Duration::from_millis(4);
/// How long a member waits for the group's commit before it looks for itself (a safety net: the
/// member that was expected to commit may have failed between two statements).
const RECHECK: Duration = Duration::from_millis(20);
/// Failed groups remembered for members that have not woken yet.
const FAILED_KEPT: usize = 64;

/// The writer connection and the group open on it.
#[derive(Debug)]
pub(super) struct WriterConn {
    conn: Connection,
    group: Option<OpenGroup>,
}

#[derive(Debug)]
struct OpenGroup {
    generation: u64,
    members: usize,
    opened: Instant,
}

impl std::ops::Deref for WriterConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl WriterConn {
    pub(super) fn new(conn: Connection) -> Self {
        WriterConn { conn, group: None }
    }
}

/// What the waiting members of groups learn: which generations are done, which failed.
#[derive(Debug, Default)]
pub(super) struct Durability {
    done: Mutex<Done>,
    changed: Condvar,
    /// Threads waiting for the writer lock right now (a member ending while this is non-zero can
    /// leave the group open for them).
    pub(super) waiting: AtomicUsize,
    /// Groups committed, and their members (figures for benchmarks and tests).
    groups: AtomicU64,
    members: AtomicU64,
}

#[derive(Debug, Default)]
struct Done {
    /// The highest generation whose `COMMIT` finished (committed or failed).
    finished: u64,
    /// The last generation handed out.
    issued: u64,
    failed: VecDeque<(u64, String)>,
}

/// Where a member stands after its savepoint was released.
pub(super) enum Membership {
    /// The group was committed here: the member is durable.
    Committed,
    /// The group stays open for the writers waiting; wait for this generation.
    Pending(u64),
}

impl Durability {
    /// Counts the caller as waiting for the writer while `lock` runs.
    pub(super) fn waiting_for<T>(&self, lock: impl FnOnce() -> T) -> T {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let got = lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        got
    }

    /// `(groups, members)` committed so far.
    pub(super) fn committed(&self) -> (u64, u64) {
        (self.groups.load(Ordering::Relaxed), self.members.load(Ordering::Relaxed))
    }

    /// Commits the open group, if any (every plain use of the writer starts here). The group's
    /// failure goes to its members, not to the caller.
    pub(super) fn flush(&self, w: &mut WriterConn) {
        let Some(group) = w.group.take() else { return };
        let outcome = match w.conn.execute_batch("COMMIT;") {
            Ok(()) => {
                self.groups.fetch_add(1, Ordering::Relaxed);
                self.members.fetch_add(group.members as u64, Ordering::Relaxed);
                None
            }
            Err(e) => {
                if !w.conn.is_autocommit() {
                    let _ = w.conn.execute_batch("ROLLBACK;");
                }
                Some(e.to_string())
            }
        };
        self.finish(group.generation, outcome);
    }

    /// Joins the open group, or opens one (`BEGIN IMMEDIATE`); then marks the member's savepoint.
    pub(super) fn join(&self, w: &mut WriterConn) -> Result<()> {
        if w.group.is_none() {
            if !w.conn.is_autocommit() {
                // A group lost underneath us (SQLite rolled it back on an error): start clean.
                let _ = w.conn.execute_batch("ROLLBACK;");
            }
            w.conn.execute_batch("BEGIN IMMEDIATE;")?;
            let generation = {
                let mut d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
                d.issued += 1;
                d.issued
            };
            w.group = Some(OpenGroup { generation, members: 0, opened: Instant::now() });
        }
        if let Err(e) = w.conn.execute_batch("SAVEPOINT sk_member;") {
            self.lost(w, &e.to_string());
            return Err(e.into());
        }
        Ok(())
    }

    /// Ends a member that keeps its writes: releases its savepoint and either commits the group
    /// now or leaves it to the writers waiting.
    pub(super) fn release(&self, w: &mut WriterConn) -> Result<Membership> {
        if let Err(e) = w.conn.execute_batch("RELEASE sk_member;") {
            let msg = e.to_string();
            self.lost(w, &msg);
            return Err(StoreError::Sqlite(e));
        }
        let Some(group) = w.group.as_mut() else {
            return Err(StoreError::Corrupt("a grouped transaction ended without its group".into()));
        };
        group.members += 1;
        let generation = group.generation;
        if self.keep_open(w) {
            return Ok(Membership::Pending(generation));
        }
        self.flush(w);
        self.outcome(generation).map(|()| Membership::Committed)
    }

    /// Ends a member that keeps nothing: undoes its writes, and commits the others' when nobody
    /// is waiting to join them.
    pub(super) fn abandon(&self, w: &mut WriterConn) {
        if w.group.is_none() {
            return;
        }
        if let Err(e) = w.conn.execute_batch("ROLLBACK TO sk_member; RELEASE sk_member;") {
            self.lost(w, &e.to_string());
            return;
        }
        if !self.keep_open(w) {
            self.flush(w);
        }
    }

    fn keep_open(&self, w: &WriterConn) -> bool {
        let Some(g) = &w.group else { return false };
        self.waiting.load(Ordering::SeqCst) > 0 && g.members < MAX_MEMBERS && g.opened.elapsed() < MAX_AGE
    }

    /// The connection's transaction is gone or unusable: every member of the group fails.
    fn lost(&self, w: &mut WriterConn, why: &str) {
        if let Some(g) = w.group.take() {
            if !w.conn.is_autocommit() {
                let _ = w.conn.execute_batch("ROLLBACK;");
            }
            self.finish(g.generation, Some(format!("the group commit was lost: {why}")));
        }
    }

    fn finish(&self, generation: u64, failure: Option<String>) {
        let mut d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        d.finished = d.finished.max(generation);
        if let Some(why) = failure {
            d.failed.push_back((generation, why));
            while d.failed.len() > FAILED_KEPT {
                d.failed.pop_front();
            }
        }
        drop(d);
        self.changed.notify_all();
    }

    fn outcome(&self, generation: u64) -> Result<()> {
        let d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        match d.failed.iter().find(|(g, _)| *g == generation) {
            Some((_, why)) => Err(StoreError::CommitFailed(why.clone())),
            None => Ok(()),
        }
    }

    /// Waits until group `generation` committed; `flush_myself` takes the writer and commits it
    /// when the wait runs long (the member expected to commit it is gone).
    pub(super) fn wait(&self, generation: u64, flush_myself: impl Fn(&Durability, u64)) -> Result<()> {
        loop {
            let d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            let (d, timeout) = self
                .changed
                .wait_timeout_while(d, RECHECK, |d| d.finished < generation)
                .unwrap_or_else(PoisonError::into_inner);
            if d.finished >= generation {
                drop(d);
                return self.outcome(generation);
            }
            drop(d);
            if timeout.timed_out() {
                flush_myself(self, generation);
            }
        }
    }

    /// Commits group `generation` if it is still the open one (the safety net of [`Self::wait`]).
    pub(super) fn flush_if_open(&self, w: &mut WriterConn, generation: u64) {
        if w.group.as_ref().is_some_and(|g| g.generation == generation) {
            self.flush(w);
        }
    }
}
