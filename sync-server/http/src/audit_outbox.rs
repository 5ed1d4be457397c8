//! Audit records that commit with their write (issue 14, crash windows).
//!
//! The audit log lives in `auth.sqlite`, the data in the store: two databases, so no single
//! transaction covers both. A data write's audit record is therefore written into the store's
//! outbox (`shikong_store::Outbox`) inside the write's own transaction ([`queue`]), and appended
//! to the audit log after the commit ([`drain`]), idempotently by the record's id, then removed
//! from the outbox. A server that stops between the commit and the append finds the record at
//! its next start ([`crate::AppState::new`] drains first), so a committed write always gets its
//! audit row, exactly once; audit rows themselves are never changed or deleted.
//!
//! Who drains: a write path either drains itself ([`drain`], the audit row exists when it
//! answers) or, where many small writes arrive at once (case actions), leaves it to the
//! after-commit worker (`crate::after_commit`): one audit transaction (one disk sync) then records
//! a whole batch, instead of every action waiting for its own (that sync capped case actions at a
//! few hundred a second). Readers of the audit log drain first (`GET /admin/audit`), so the log
//! they read is complete.

use std::sync::{Mutex, PoisonError};

use shikong_auth::{PendingAudit, WriteRecord};
use shikong_store::StoreTx;

use super::AppState;
use super::access::Caller;

/// Records taken from the outbox per round.
const BATCH: usize = 256;

/// Writes the audit record `rec` of `caller`'s write into the open transaction `tx` (stamped
/// with the transaction's id and instant).
pub fn queue(tx: &mut dyn StoreTx, caller: &Caller, mut rec: WriteRecord) -> shikong_store::Result<()> {
    let (id, at) = tx.id();
    rec.tx = Some(id.0.to_string());
    let pending = PendingAudit::new(&caller.actor(), &rec, at);
    tx.put_outbox(pending.id, &pending.to_json())
}

/// Appends every record waiting in the outbox to the audit log and removes it from the outbox;
/// returns how many were appended. Failures are logged (the records stay for the next drain):
/// the writes they record already happened.
pub fn drain(state: &AppState) -> usize {
    drain_parts(state.store(), &state.auth, &state.faults)
}

pub(crate) fn drain_parts(
    store: &dyn shikong_store::Store,
    auth: &shikong_auth::AuthStore,
    faults: &crate::Faults,
) -> usize {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if faults.crash_before_audit.load(std::sync::atomic::Ordering::SeqCst) {
        return 0;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut appended = 0;
    loop {
        let batch = match store.outbox(BATCH) {
            Ok(b) if b.is_empty() => return appended, // another drain took them
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading the audit outbox failed");
                return appended;
            }
        };
        // One audit transaction per batch: under load the actions of many requests share it.
        let parsed: Vec<_> = batch.iter().map(|e| PendingAudit::from_json(&e.payload)).collect();
        let good: Vec<PendingAudit> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut results = match auth.record_pending_many(&good) {
            Ok(r) => r.into_iter(),
            Err(e) => {
                tracing::error!(error = %e, "appending audit records failed");
                return appended;
            }
        };
        let mut delivered = Vec::with_capacity(batch.len());
        for (entry, p) in batch.iter().zip(parsed) {
            let recorded = p.and_then(|_| results.next().unwrap_or(Ok(false)));
            match recorded {
                Ok(new) => {
                    appended += usize::from(new);
                    delivered.push(entry.id);
                }
                // Kept in the outbox (never dropped): an operator can read it there.
                Err(e) => tracing::error!(error = %e, id = %entry.id, tx = entry.tx.0, "audit record not appended"),
            }
        }
        if let Err(e) = store.outbox_delivered(&delivered) {
            tracing::error!(error = %e, "removing delivered audit records from the outbox failed");
            return appended;
        }
        if batch.len() < BATCH || delivered.is_empty() {
            return appended;
        }
    }
}
