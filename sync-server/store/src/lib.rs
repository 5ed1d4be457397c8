//! The central spatio-temporal store.
//!
//! The platform's promise is that nothing is ever overwritten: every insert, update and delete
//! writes an immutable version (entity, version number, transaction, author), any past state can be
//! read back ("as of" a transaction instant), and two instants can be compared field by field.
//!
//! # The API: two capabilities, one store
//!
//! - [`FeatureStore`] / [`StoreTx`]: layers, features, their versions and history, diffs, the
//!   transaction journal and the change feed. Everything that reads or writes features (OGC API,
//!   tiles, gazetteer, import/export) needs only this.
//! - [`SyncBookkeeping`] / [`SyncBookkeepingTx`]: what offline sync keeps besides features — the
//!   entities' CRDT documents, the replicas cut for devices, the attachments' records. Its writes
//!   join a store transaction ([`StoreTx`] extends [`SyncBookkeepingTx`]), so a push writes
//!   versions and documents all or nothing.
//! - [`Store`]: both, what a backend implements and what the sync engine and the server hold.
//!
//! A transaction also records which replica pushed it (`TxMeta::replica`, read back as
//! [`TxRecord::replica`]): pull skips a device's own pushes by that field, not by parsing the
//! free-text `TxMeta::source` label.
//!
//! # Opening a store
//!
//! Callers name a store by a [`StoreConfig`] — parsed from a data directory or a `.gpkg` path
//! (SQLite) or a `postgres://` URL — and open it with [`open`] (existing) or [`init`] (create when
//! missing); they get an `Arc<dyn Store>` and never name a backend type. [`SqliteStore`] is the
//! embedded default, one SQLite file per store that is also a valid GeoPackage (GDAL and QGIS open
//! it directly and see the current state of every layer). [`PgStore`] keeps the store in a
//! PostgreSQL database with PostGIS (a city's central platform, several server processes on one
//! database) with the same behaviour, checked by the same conformance suite.
//!
//! # One behaviour, every backend
//!
//! The store's tests are written once against the traits, in the `conformance` module (compiled
//! for this crate's tests and, for other backends, behind the `conformance` cargo feature): a
//! backend runs every case with `conformance_tests!` and a function that makes a fresh, empty
//! store. Only what is specific to a backend (files, migrations, query plans) is tested beside it.
//!
//! How history is laid out (both backends alike): the layer's GeoPackage table holds the *current*
//! version of each live entity (with `sk_version`, `sk_tx`); `sk_hist_<layer>` holds every
//! superseded version with the transaction interval `[tx_from, tx_to)` during which it was current,
//! plus a tombstone for each deletion. A version's content never changes once written; it only
//! moves from the current table to the history table when superseded. See ARCHITECTURE.md.
//!
//! Work whose caller has gone stops: the server runs each store call under a [`cancel`] token,
//! and a cancelled call fails with [`StoreError::Cancelled`] (SQLite statements are interrupted).

#![forbid(unsafe_code)]

pub mod cancel;
mod clock;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod copy;
mod error;
mod logic;
mod open;
mod postgres;
pub mod read_route;
mod sqlite;
mod types;
pub mod watch;

pub use clock::{Clock, FixedStepClock, SystemClock};
pub use error::{Result, StoreError};
pub use open::{OpenOptions, StoreConfig, init, open, open_with, open_with_read_replica};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use types::*;

use jiff::Timestamp;

/// Features and their history: everything callers may do with layers and versions. Reads see
/// committed data only.
pub trait FeatureStore: Send + Sync {
    /// All layers, by name.
    fn layers(&self) -> Result<Vec<Layer>>;

    /// One layer, or [`StoreError::NoSuchLayer`].
    fn layer(&self, name: &str) -> Result<Layer>;

    /// Starts a write transaction attributed to `meta`. Dropping it without
    /// [`StoreTx::commit`] rolls everything back.
    fn begin(&self, meta: TxMeta) -> Result<Box<dyn StoreTx + '_>>;

    /// Starts a write transaction that may share its commit (and its disk sync) with other
    /// grouped transactions running close in time: many small writers reach a throughput one
    /// fsync per transaction cannot. [`StoreTx::commit`] still returns only once the writes are
    /// durable and visible. The rule that comes with it: until then the group's writes are seen
    /// only through the transactions, so a grouped transaction reads what it is about to change
    /// through [`StoreTx::get`], never through this store's reads. Backends without group commit
    /// run it as [`FeatureStore::begin`].
    fn begin_grouped(&self, meta: TxMeta) -> Result<Box<dyn StoreTx + '_>> {
        self.begin(meta)
    }

    /// Streams the features matching `q` to `sink` (in a stable order) until it returns `false`.
    fn query(&self, q: &Query<'_>, sink: &mut dyn FnMut(StoredFeature) -> bool) -> Result<QueryStats>;

    /// One entity, current or as of an instant.
    fn get(&self, layer: &str, key: &FeatureKey, as_of: Option<Timestamp>) -> Result<Option<StoredFeature>>;

    /// The live entities among `ids`, as committed ([`FeatureStore::get`] of each; absent ids are
    /// not in the map), read in one go where the backend can (a sync push merges a batch's
    /// entities before it begins its transaction).
    fn get_many(&self, layer: &str, ids: &[EntityId]) -> Result<std::collections::HashMap<EntityId, StoredFeature>> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(f) = self.get(layer, &FeatureKey::Id(*id), None)? {
                out.insert(*id, f);
            }
        }
        Ok(out)
    }

    /// Every version of one entity, oldest first, each with its field-level changes.
    fn history(&self, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>>;

    /// What changed in a layer between two instants.
    fn diff(&self, layer: &str, from: Timestamp, to: Timestamp) -> Result<Diff>;

    /// The same diff a page at a time: at most `limit` changed entities with ids after `after`,
    /// in entity id order (what a server answers, so that one request never reads all history).
    fn diff_page(
        &self,
        layer: &str,
        from: Timestamp,
        to: Timestamp,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<DiffPage>;

    /// Number of live features now.
    fn count(&self, layer: &str) -> Result<u64>;

    /// The committed transactions in `(after, ..]`, oldest first, at most `limit`.
    fn transactions(&self, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>>;

    /// The newest committed transaction (`TxId(0)` in an empty store).
    fn latest_tx(&self) -> Result<TxId>;

    /// The newest transaction that wrote a version of `layer` (an insert, update or delete;
    /// `None` while it has none): read `as_of` any later instant, the layer is as it is now.
    fn layer_last_tx(&self, layer: &str) -> Result<Option<TxId>>;

    /// `(entity, version)` of every entity of `layer` live as of transaction `tx` whose geometry
    /// meets `area` (all when `None`) — the selection of a replica cut, from one snapshot, without
    /// decoding properties (end-of-sync verification runs it on every sync).
    fn versions_at(
        &self,
        layer: &str,
        tx: TxId,
        area: Option<&shikong_model::Geometry>,
        sink: &mut dyn FnMut(EntityId, i64),
    ) -> Result<()>;

    /// The instant of the newest transaction at or before `tx` (`None` before the first): an
    /// `as_of` that reads the store exactly as it was after `tx`.
    fn tx_time(&self, tx: TxId) -> Result<Option<Timestamp>>;

    /// Entities of `layer` whose newest version (or document) came after `cursor`, in change
    /// order, at most `limit` (deleted ones with `state: None`).
    ///
    /// Every backend must read the whole page from **one snapshot** and assign positions in
    /// commit order, so that [`ChangePage::next`] never passes a transaction the page did not see
    /// (the sync invariant in `docs/sync-protocol.md` rests on this). Entities whose CRDT document
    /// was rewritten without a new version ([`SyncBookkeepingTx::put_sync_doc`]) are changes too.
    fn changes_since(&self, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage>;

    /// The entities of `layer` whose first version was written by `author` (who created them),
    /// in creation order, deleted ones included. Indexed: the author's transactions, then those
    /// transactions' rows of the layer — it does not scan the layer.
    fn entities_created_by(&self, layer: &str, author: &str) -> Result<Vec<EntityId>>;

    /// How this backend tells other processes that it committed ([`watch::watch_commits`] makes
    /// the watcher): PostgreSQL notifies at each commit, others are polled.
    fn commit_signal(&self) -> watch::CommitSignal {
        watch::CommitSignal::Poll
    }
}

/// A write transaction. Writes are validated against the layer schema as they are made; the first
/// error leaves the transaction open so the caller can report it and drop (roll back).
///
/// The sync bookkeeping writes ([`SyncBookkeepingTx`]) join the same transaction. A transaction
/// that wrote only bookkeeping still commits (a document changed without a new version).
pub trait StoreTx: SyncBookkeepingTx {
    /// This transaction's id and instant.
    fn id(&self) -> (TxId, Timestamp);

    fn create_layer(&mut self, def: LayerDef) -> Result<Layer>;

    /// Replaces a layer's metadata and schema. Fields are matched by id: new ids are added columns,
    /// changed names are renames, missing fields are refused (retire them instead), type changes
    /// are refused, tightened constraints are checked against every live feature.
    fn update_layer(&mut self, name: &str, def: LayerDef) -> Result<Layer>;

    /// Tells the transaction a large load into `layer` follows: the spatial index is maintained once
    /// at commit instead of per row. Only allowed while the layer is empty.
    fn bulk_load(&mut self, layer: &str) -> Result<()>;

    /// Creates an entity (version 1). Returns its id.
    fn insert(&mut self, layer: &str, f: NewFeature) -> Result<EntityId>;

    /// Applies `patch` to a live entity. Returns the new version number, or `None` when the patch
    /// changes nothing (no version is written).
    fn update(&mut self, layer: &str, key: &FeatureKey, patch: Patch) -> Result<Option<i64>>;

    /// Deletes a live entity (its last state stays in history, followed by a tombstone).
    fn delete(&mut self, layer: &str, key: &FeatureKey) -> Result<()>;

    /// Brings a deleted entity back under its own id as a new version (the resolution of a
    /// delete-versus-edit conflict). Returns the version number.
    fn restore(&mut self, layer: &str, id: EntityId, f: NewFeature) -> Result<i64>;

    /// The live entity whose `field` equals `value` (for upserts by key), or `None`. Errors when
    /// several match.
    fn find_by_field(&mut self, layer: &str, field: &str, value: &Value) -> Result<Option<EntityId>>;

    /// One live entity as this transaction sees it (its own writes, and those of its group
    /// committed before it: see [`FeatureStore::begin_grouped`]).
    fn get(&mut self, layer: &str, key: &FeatureKey) -> Result<Option<StoredFeature>>;

    /// The live entities among `ids` as this transaction sees them ([`StoreTx::get`] of each;
    /// absent ids are not in the map). A backend may read them in one go and keep them for the
    /// writes of those entities that follow (a sync batch reads every entity it merges first).
    fn get_many(
        &mut self,
        layer: &str,
        ids: &[EntityId],
    ) -> Result<std::collections::HashMap<EntityId, StoredFeature>> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(f) = self.get(layer, &FeatureKey::Id(*id))? {
                out.insert(*id, f);
            }
        }
        Ok(out)
    }

    /// Makes filters on these fields of the layer's live features cheap (an index over them, in
    /// this order; kept until the layer is dropped). Idempotent. For engines that query a layer
    /// by the same fields all the time (the case runtime's overdue scan and status lists).
    fn ensure_index(&mut self, layer: &str, fields: &[&str]) -> Result<()>;

    /// Marks a point this transaction can return to with [`StoreTx::rollback_to_savepoint`]
    /// (one entity of a sync batch failing must not undo the others). Savepoints do not nest.
    fn savepoint(&mut self) -> Result<()>;

    /// Undoes every write since [`StoreTx::savepoint`]; the transaction stays open.
    fn rollback_to_savepoint(&mut self) -> Result<()>;

    /// Keeps the writes since [`StoreTx::savepoint`] and forgets the savepoint.
    fn release_savepoint(&mut self) -> Result<()>;

    /// Writes a record to deliver after the commit ([`Outbox`]): committed with this
    /// transaction's writes or rolled back with them. It does not by itself keep an otherwise
    /// empty transaction (nothing was written, so there is nothing to record).
    fn put_outbox(&mut self, id: uuid::Uuid, payload: &str) -> Result<()>;

    /// Makes every write durable and visible.
    fn commit(self: Box<Self>) -> Result<CommitInfo>;
}

/// Records written with a transaction's data for another log (the audit log, in the account
/// database): the transactional outbox. The receiver reads them after the commit, and at start
/// for what a crash left behind, records each idempotently by its id, then marks it delivered.
pub trait Outbox: Send + Sync {
    /// Undelivered records, oldest first, at most `limit`.
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Removes delivered records (unknown ids are ignored).
    fn outbox_delivered(&self, ids: &[uuid::Uuid]) -> Result<()>;
}

/// What offline sync keeps besides features: CRDT documents of entities, the replicas cut for
/// devices, the attachments' records. Reads see committed data only; writes go through
/// [`SyncBookkeepingTx`], part of a [`StoreTx`].
pub trait SyncBookkeeping: Send + Sync {
    /// The explicit CRDT document of an entity and the store version it covers.
    fn sync_doc(&self, layer: &str, id: EntityId) -> Result<Option<(i64, Vec<u8>)>>;

    /// [`SyncBookkeeping::sync_doc`] of each of `ids` (those without a document are not in the
    /// map), read in one go where the backend can.
    fn sync_docs(&self, layer: &str, ids: &[EntityId]) -> Result<std::collections::HashMap<EntityId, (i64, Vec<u8>)>> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.sync_doc(layer, *id)? {
                out.insert(*id, d);
            }
        }
        Ok(out)
    }

    /// The entities of `layer` that have an explicit CRDT document.
    fn sync_doc_ids(&self, layer: &str) -> Result<std::collections::HashSet<EntityId>>;

    /// A registered replica.
    fn replica(&self, id: ReplicaId) -> Result<Option<ReplicaRecord>>;

    /// An attachment's record.
    fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>>;

    /// The layers whose features reference attachment `sha256` in any version, by name (every
    /// feature write records them; downloads are for readers of one of these layers).
    fn blob_layers(&self, sha256: &str) -> Result<Vec<String>>;

    /// Entries of the conflict index matching `filter`, in `(layer, entity)` order, at most
    /// `filter.limit`.
    fn open_conflicts(&self, filter: &ConflictFilter) -> Result<Vec<ConflictEntry>>;
}

/// The sync bookkeeping writes of a [`StoreTx`]: committed or rolled back with its versions.
pub trait SyncBookkeepingTx {
    /// Stores the explicit CRDT document of an entity (covering store version `version`). The
    /// entity then appears in [`FeatureStore::changes_since`] at this transaction, even when no
    /// version was written.
    fn put_sync_doc(&mut self, layer: &str, id: EntityId, version: i64, doc: &[u8]) -> Result<()>;

    /// Registers (or updates: name, layers, area) a replica cut for a device.
    fn put_replica(&mut self, r: &ReplicaRecord) -> Result<()>;

    /// Records a verified attachment (idempotent: a known hash keeps its first record).
    fn put_blob(&mut self, b: &BlobRecord) -> Result<()>;

    /// Records the open conflicts of an entity's document in the conflict index: `conflicts`
    /// open, between `authors`; `0` removes the entity from the index. The first recording
    /// stamps the entry with this transaction's time, which later ones keep.
    fn put_conflicts(&mut self, layer: &str, id: EntityId, conflicts: u32, authors: &[String]) -> Result<()>;
}

/// A whole store: features and sync bookkeeping, in one database so that one transaction covers
/// both. What [`open`] returns, what a backend implements (through the two traits), and what the
/// sync engine and the server hold. `&dyn Store` converts to `&dyn FeatureStore` where only
/// features are needed.
pub trait Store: FeatureStore + SyncBookkeeping + Outbox + std::fmt::Debug {}

impl<T: FeatureStore + SyncBookkeeping + Outbox + std::fmt::Debug> Store for T {}
