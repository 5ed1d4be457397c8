//! A read replica: a PostgreSQL streaming standby serving some reads, so that the primary keeps
//! its connections and CPU for writes and sync.
//!
//! Which reads: only those the caller marks ([`crate::read_route`]); of those, the ones that
//! load their snapshot's newest transaction anyway — `layers`, `layer`, `query`, `get` — so the
//! freshness check below costs no round trip. Everything else reads the primary.
//!
//! **Never older than what this process knew.** The store keeps the newest transaction this
//! process knows the primary holds ([`Known`]): its own commits (noted by [`Noted`] when they
//! return, before the caller can answer anyone), refreshed from the primary (`max(tx)`) when a
//! standby read finds the last refresh older than [`REFRESH`]. A standby read needs its
//! snapshot's newest transaction at or past that (and past a paging cursor's pinned
//! transaction, so page two is never older than page one). An older snapshot is retried,
//! pausing a little longer each time, for at most [`RYW_WAIT`]; then the read goes to the
//! primary and the standby is skipped for [`BEHIND_PAUSE`] (a lagging standby must not add
//! 200 ms to every read). So a writer reads its own writes, a paging client never goes back in
//! time, and a standby's lag shows as at most about `REFRESH + RYW_WAIT` of staleness.
//!
//! **Never failing a read.** A standby that cannot be reached, or fails a read, sends the read
//! to the primary; an unreachable one is then skipped for a pause that doubles from
//! [`DOWN_PAUSE`] up to [`MAX_DOWN_PAUSE`] while it stays down. A layer the standby does not
//! know (created on the primary, not replayed yet) is read from the primary at once. The one
//! read that can fail on a standby's fault is a query whose rows had started to stream when the
//! standby died (they cannot be taken back).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use shikong_model::{EntityId, TxId, Value};

use super::pool::Pool;
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{StoreTx, SyncBookkeepingTx};

/// The longest a standby read waits for the standby to replay what this process knows.
pub(crate) const RYW_WAIT: Duration = Duration::from_millis(200);
/// How old the newest known transaction may be before a standby read refreshes it from the
/// primary (one `max(tx)` a second at most, on the request path).
pub(crate) const REFRESH: Duration = Duration::from_secs(1);
/// How long a standby that could not catch up within [`RYW_WAIT`] is skipped.
const BEHIND_PAUSE: Duration = Duration::from_secs(1);
/// How long an unreachable standby is skipped first (doubling while it stays down).
const DOWN_PAUSE: Duration = Duration::from_millis(500);
const MAX_DOWN_PAUSE: Duration = Duration::from_secs(10);

/// The newest transaction this process knows the primary holds, and when it was last asked.
#[derive(Debug)]
pub(crate) struct Known {
    tx: AtomicI64,
    refreshed: Mutex<Option<Instant>>,
}

impl Known {
    pub(crate) fn new() -> Self {
        Known { tx: AtomicI64::new(0), refreshed: Mutex::new(None) }
    }

    /// Records that the primary holds `tx` (never moves back).
    pub(crate) fn note(&self, tx: TxId) {
        self.tx.fetch_max(tx.0, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> TxId {
        TxId(self.tx.load(Ordering::SeqCst))
    }

    /// Whether a refresh is due at `now`; when it is, the caller refreshes (others do not
    /// meanwhile: the time is taken now).
    pub(crate) fn refresh_due(&self, now: Instant) -> bool {
        let mut at = self.refreshed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *at {
            Some(t) if now.saturating_duration_since(t) < REFRESH => false,
            _ => {
                *at = Some(now);
                true
            }
        }
    }
}

/// Whether the standby is used now, and the pause after it failed.
#[derive(Debug, Default)]
pub(crate) struct Health {
    skip_until: Option<Instant>,
    down_pause: Option<Duration>,
}

impl Health {
    pub(crate) fn usable(&self, now: Instant) -> bool {
        self.skip_until.is_none_or(|t| now >= t)
    }

    /// The standby could not be reached or failed: skip it for a pause that doubles each time.
    pub(crate) fn down(&mut self, now: Instant) {
        let pause = self.down_pause.map_or(DOWN_PAUSE, |p| (p * 2).min(MAX_DOWN_PAUSE));
        self.down_pause = Some(pause);
        self.skip_until = Some(now + pause);
    }

    /// The standby did not catch up in time: skip it for a while.
    pub(crate) fn behind(&mut self, now: Instant) {
        self.skip_until = Some(now + BEHIND_PAUSE);
    }

    /// The standby served a read: it is up.
    pub(crate) fn served(&mut self) {
        self.down_pause = None;
    }
}

/// After a standby snapshot older than needed, having waited `waited` since the first try:
/// how long to pause before trying again, or `None` to read the primary instead. Short pauses
/// first (replay on loopback takes a millisecond or two), longer ones later, never past
/// [`RYW_WAIT`] in all.
pub(crate) fn retry_after(waited: Duration) -> Option<Duration> {
    let pause = (waited / 2).clamp(Duration::from_millis(2), Duration::from_millis(50));
    (waited + pause <= RYW_WAIT).then_some(pause)
}

/// Whether an error says the standby is unreachable or going away (rather than something about
/// the read itself).
pub(crate) fn is_down(e: &StoreError) -> bool {
    e.is_unavailable()
}

/// The standby's connections and health.
pub(crate) struct Replica {
    pub(crate) pool: Pool,
    pub(crate) shown: String,
    health: Mutex<Health>,
}

impl Replica {
    pub(crate) fn new(pool: Pool, shown: String) -> Self {
        Replica { pool, shown, health: Mutex::new(Health::default()) }
    }

    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A write transaction whose commit is noted in [`Known`] before it returns, so that the
/// process's next standby read waits for it (read-your-writes). It delegates every method: a
/// trait method added with a default body must be delegated here too, or the backend's own
/// version would be bypassed.
pub(crate) struct Noted<'s> {
    pub(crate) inner: Box<dyn StoreTx + 's>,
    pub(crate) known: &'s Known,
}

impl SyncBookkeepingTx for Noted<'_> {
    fn put_sync_doc(&mut self, layer: &str, id: EntityId, version: i64, doc: &[u8]) -> Result<()> {
        self.inner.put_sync_doc(layer, id, version, doc)
    }
    fn put_replica(&mut self, r: &ReplicaRecord) -> Result<()> {
        self.inner.put_replica(r)
    }
    fn put_blob(&mut self, b: &BlobRecord) -> Result<()> {
        self.inner.put_blob(b)
    }
    fn put_conflicts(&mut self, layer: &str, id: EntityId, conflicts: u32, authors: &[String]) -> Result<()> {
        self.inner.put_conflicts(layer, id, conflicts, authors)
    }
}

impl StoreTx for Noted<'_> {
    fn id(&self) -> (TxId, Timestamp) {
        self.inner.id()
    }
    fn create_layer(&mut self, def: LayerDef) -> Result<Layer> {
        self.inner.create_layer(def)
    }
    fn update_layer(&mut self, name: &str, def: LayerDef) -> Result<Layer> {
        self.inner.update_layer(name, def)
    }
    fn bulk_load(&mut self, layer: &str) -> Result<()> {
        self.inner.bulk_load(layer)
    }
    fn insert(&mut self, layer: &str, f: NewFeature) -> Result<EntityId> {
        self.inner.insert(layer, f)
    }
    fn update(&mut self, layer: &str, key: &FeatureKey, patch: Patch) -> Result<Option<i64>> {
        self.inner.update(layer, key, patch)
    }
    fn delete(&mut self, layer: &str, key: &FeatureKey) -> Result<()> {
        self.inner.delete(layer, key)
    }
    fn restore(&mut self, layer: &str, id: EntityId, f: NewFeature) -> Result<i64> {
        self.inner.restore(layer, id, f)
    }
    fn find_by_field(&mut self, layer: &str, field: &str, value: &Value) -> Result<Option<EntityId>> {
        self.inner.find_by_field(layer, field, value)
    }
    fn get(&mut self, layer: &str, key: &FeatureKey) -> Result<Option<StoredFeature>> {
        self.inner.get(layer, key)
    }
    fn get_many(
        &mut self,
        layer: &str,
        ids: &[EntityId],
    ) -> Result<std::collections::HashMap<EntityId, StoredFeature>> {
        self.inner.get_many(layer, ids)
    }
    fn ensure_index(&mut self, layer: &str, fields: &[&str]) -> Result<()> {
        self.inner.ensure_index(layer, fields)
    }
    fn savepoint(&mut self) -> Result<()> {
        self.inner.savepoint()
    }
    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.inner.rollback_to_savepoint()
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.inner.release_savepoint()
    }
    fn put_outbox(&mut self, id: uuid::Uuid, payload: &str) -> Result<()> {
        self.inner.put_outbox(id, payload)
    }
    fn commit(self: Box<Self>) -> Result<CommitInfo> {
        let info = self.inner.commit()?;
        if let Some(tx) = info.tx {
            self.known.note(tx);
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_pause_longer_and_stop_within_the_bound() {
        let mut waited = Duration::ZERO;
        let mut pauses = Vec::new();
        while let Some(p) = retry_after(waited) {
            pauses.push(p);
            waited += p;
        }
        assert_eq!(pauses[0], Duration::from_millis(2), "the first retry comes quickly");
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(50)), "{pauses:?}");
        assert!(waited <= RYW_WAIT && waited >= RYW_WAIT - Duration::from_millis(50), "{waited:?}");
        assert!(pauses.len() < 20, "a handful of retries, not a spin: {}", pauses.len());
        assert_eq!(retry_after(RYW_WAIT), None);
    }

    #[test]
    fn a_failing_standby_is_skipped_for_growing_pauses_and_a_lagging_one_for_a_while() {
        let t0 = Instant::now();
        let mut h = Health::default();
        assert!(h.usable(t0));
        h.down(t0);
        assert!(!h.usable(t0 + Duration::from_millis(499)) && h.usable(t0 + DOWN_PAUSE));
        h.down(t0);
        assert!(!h.usable(t0 + Duration::from_millis(999)) && h.usable(t0 + DOWN_PAUSE * 2));
        for _ in 0..10 {
            h.down(t0);
        }
        assert!(h.usable(t0 + MAX_DOWN_PAUSE), "the pause is bounded");
        h.served();
        h.down(t0);
        assert!(h.usable(t0 + DOWN_PAUSE), "a served read resets the pause");
        let mut h = Health::default();
        h.behind(t0);
        assert!(!h.usable(t0 + BEHIND_PAUSE / 2) && h.usable(t0 + BEHIND_PAUSE));
    }

    #[test]
    fn the_known_transaction_never_moves_back_and_refreshes_once_a_second() {
        let k = Known::new();
        k.note(TxId(5));
        k.note(TxId(3));
        assert_eq!(k.get(), TxId(5));
        let t0 = Instant::now();
        assert!(k.refresh_due(t0), "never refreshed");
        assert!(!k.refresh_due(t0 + REFRESH / 2), "refreshed just now");
        assert!(k.refresh_due(t0 + REFRESH));
    }

    #[test]
    fn connection_failures_count_as_down_and_read_errors_do_not() {
        let connect = StoreError::Connect { config: "postgres://x".into(), reason: "refused".into() };
        assert!(is_down(&connect));
        assert!(!is_down(&StoreError::NoSuchLayer("x".into())));
        assert!(!is_down(&crate::cancel::cancelled(crate::cancel::CancelReason::Deadline)));
    }
}
