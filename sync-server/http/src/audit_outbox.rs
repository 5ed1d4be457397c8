//! Audit records that commit with their write (issue 14, crash windows).
//!
//! The audit log lives in `auth.sqlite`, the data in the store: two databases, so no single
//! transaction covers both. A data write's audit record is therefore written into the store's
//! outbox (`shikong_store::Outbox`) inside the write's own transaction ([`queue`]), and appended
//! to the audit log after the commit ([`drain`]), idempotently by the record's id, then removed
//! from the outbox. A server that stops between the commit and the append finds the record at
//! its next start ([`crate::AppState::new`] drains first), so a committed write always gets its
//! audit row, exactly once; audit rows themselves are never changed or deleted.

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
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if state.crashed_before_audit() {
        return 0;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut appended = 0;
    loop {
        let batch = match state.store().outbox(BATCH) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading the audit outbox failed");
                return appended;
            }
        };
        let mut delivered = Vec::with_capacity(batch.len());
        for entry in &batch {
            let recorded = PendingAudit::from_json(&entry.payload).and_then(|p| state.auth.record_pending(&p));
            match recorded {
                Ok(new) => {
                    appended += usize::from(new);
                    delivered.push(entry.id);
                }
                // Kept in the outbox (never dropped): an operator can read it there.
                Err(e) => tracing::error!(error = %e, id = %entry.id, tx = entry.tx.0, "audit record not appended"),
            }
        }
        if let Err(e) = state.store().outbox_delivered(&delivered) {
            tracing::error!(error = %e, "removing delivered audit records from the outbox failed");
            return appended;
        }
        if batch.len() < BATCH || delivered.is_empty() {
            return appended;
        }
    }
}
