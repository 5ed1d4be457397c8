//! Savepoints of a PostgreSQL write transaction, sent lazily.
//!
//! A sync push takes a savepoint per entity, and most entities' writes wait in
//! Rust (`updates.rs`, `deferred.rs`) with every check already done, so `savepoint` sends
//! nothing: it marks how much each queue holds. The `SAVEPOINT` is sent only before the next
//! statement ([`PgTx::ready`]; the queued writes from before the mark are written first, those
//! after it stay queued), together with the `RELEASE` of a previous one still open; a release is
//! sent with the next `SAVEPOINT` or not at all (the commit ends it). A rollback to a savepoint
//! never sent only drops what was queued after its mark: nothing after it reached the server.

use std::collections::HashMap;

use super::PgTx;
use crate::error::{Result, StoreError};

/// A savepoint of this transaction (see the module docs).
pub(super) struct Savepoint {
    /// `SAVEPOINT` was sent: writes since then are on the server.
    pub(super) sent: bool,
    /// How many updates each layer had queued at the savepoint (a layer not named: none).
    pub(super) updates: HashMap<String, usize>,
    pub(super) book: super::super::deferred::Mark,
    /// `get_many` reads up to here came before the savepoint.
    pub(super) cache_gen: u64,
}

impl PgTx<'_> {
    /// Sends a savepoint taken but not sent yet, if any: what was queued before it is written
    /// first. Called before every statement of the transaction.
    pub(super) fn ready(&mut self) -> Result<()> {
        let Some(sp) = self.sp.as_mut().filter(|sp| !sp.sent) else { return Ok(()) };
        let marks = std::mem::take(&mut sp.updates);
        let book_mark = sp.book;
        let tx = self.tx.0;
        let mut r = Ok(());
        for (name, st) in &mut self.layers {
            let at = marks.get(name).copied().unwrap_or(0);
            if at > 0 && r.is_ok() {
                let tail = st.updates.split_off(at);
                r = st.updates.flush(&mut self.conn, &st.layer, tx);
                st.updates = tail;
            }
        }
        if r.is_ok() && book_mark != (0, 0) {
            let tail = self.book.split_off(book_mark);
            r = self.book.flush(&mut self.conn, tx, self.time.as_microsecond());
            self.book = tail;
        }
        let r = r.and_then(|()| {
            self.conn.batch(if self.release_owed {
                "RELEASE SAVEPOINT sk_entity; SAVEPOINT sk_entity;"
            } else {
                "SAVEPOINT sk_entity;"
            })
        });
        if r.is_err() {
            self.doomed = true;
            self.poisoned = true;
        }
        r?;
        self.release_owed = false;
        if let Some(sp) = self.sp.as_mut() {
            sp.sent = true;
            sp.book = (0, 0);
        }
        Ok(())
    }

    pub(super) fn take_savepoint(&mut self) -> Result<()> {
        self.saved = Some((self.stats, self.other_writes, self.poisoned));
        if self.layers.values().any(|st| st.pending.is_some()) {
            // A bulk load's buffered inserts: written now, the savepoint sent at once.
            self.sp = None;
            let (tx, at_us) = (self.tx.0, self.time.as_microsecond());
            let r = self.flush().and_then(|()| self.book.flush(&mut self.conn, tx, at_us)).and_then(|()| {
                self.conn.batch(if self.release_owed {
                    "RELEASE SAVEPOINT sk_entity; SAVEPOINT sk_entity;"
                } else {
                    "SAVEPOINT sk_entity;"
                })
            });
            if r.is_err() {
                self.doomed = true;
            }
            self.guard(r)?;
            self.release_owed = false;
            self.sp = Some(Savepoint { sent: true, updates: HashMap::new(), book: (0, 0), cache_gen: self.cache_gen });
            return Ok(());
        }
        // Nothing sent: see the module docs.
        let updates = self.layers.iter().map(|(name, st)| (name.clone(), st.updates.len())).collect();
        self.sp = Some(Savepoint { sent: false, updates, book: self.book.mark(), cache_gen: self.cache_gen });
        Ok(())
    }

    pub(super) fn rollback_savepoint(&mut self) -> Result<()> {
        let Some(sp) = self.sp.take() else {
            return Err(StoreError::InvalidArgument("rollback to a savepoint, but none was taken".into()));
        };
        if sp.sent {
            let r = self.conn.batch("ROLLBACK TO SAVEPOINT sk_entity; RELEASE SAVEPOINT sk_entity;");
            self.guard(r)?;
        }
        // What was queued after the savepoint goes; buffered inserts came after it (a savepoint
        // with any sends itself), and the id and code sets may name rolled-back rows, so the
        // layers go back to checking the tables. Rows read after it may show rolled-back writes.
        for (name, st) in &mut self.layers {
            st.pending = None;
            st.updates.truncate(sp.updates.get(name).copied().unwrap_or(0));
            st.cached.retain(|_, (generation, _)| *generation <= sp.cache_gen);
        }
        self.book.truncate(sp.book);
        if let Some((stats, other, poisoned)) = self.saved.take() {
            self.stats = stats;
            self.other_writes = other;
            self.poisoned = poisoned || self.doomed;
        }
        // Cached per-layer counters (codes, extents) may be ahead of the rolled-back data; that
        // only skips a generated code number or widens an extent, both harmless.
        Ok(())
    }

    pub(super) fn release_lazy_savepoint(&mut self) -> Result<()> {
        let Some(sp) = self.sp.take() else {
            return Err(StoreError::InvalidArgument("release of a savepoint, but none was taken".into()));
        };
        // Sent: released with the next `SAVEPOINT`, or ended by the commit.
        self.release_owed |= sp.sent;
        self.saved = None;
        Ok(())
    }
}
