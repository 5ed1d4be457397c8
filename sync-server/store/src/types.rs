//! The values that cross the [`crate::FeatureStore`] and [`crate::SyncBookkeeping`] boundaries.

use std::fmt;

use jiff::Timestamp;
use shikong_model::{Bbox, Feature, Geometry, GeometryKind, HeightDatum, LayerSchema, Theme, ValidTime};
use shikong_query::Filter;

pub use shikong_model::feature::Change;
pub use shikong_model::time::ValidFilter;
pub use shikong_model::{EntityId, Properties, TxId, Value};

/// A replica cut for a device: its id (the UUID in the replica file and in sync requests).
pub type ReplicaId = uuid::Uuid;

/// What a caller supplies to create or redefine a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDef {
    /// Table name: ASCII lowercase letters, digits and `_`, starting with a letter (the Chinese
    /// name goes in `title`).
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub geometry_kind: GeometryKind,
    pub has_z: bool,
    pub schema: LayerSchema,
    pub theme: Theme,
    pub height_datum: Option<HeightDatum>,
    /// Readable by anonymous users and citizens.
    pub public: bool,
    /// Citizens may create features here (全民城管 reports).
    pub citizen_reports: bool,
}

impl LayerDef {
    pub fn new(name: impl Into<String>, geometry_kind: GeometryKind, schema: LayerSchema) -> Self {
        LayerDef {
            name: name.into(),
            title: None,
            description: None,
            geometry_kind,
            has_z: false,
            schema,
            theme: Theme::default(),
            height_datum: None,
            public: false,
            citizen_reports: false,
        }
    }
}

/// A layer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub def: LayerDef,
    /// Always 4490 (CGCS2000) in this version: the store keeps one frame; others are converted at
    /// the edges.
    pub srs_id: i32,
    pub created_tx: TxId,
    /// Envelope of the layer's geometries (CGCS2000 lon/lat) as last recorded; it grows with
    /// writes and is recomputed by bulk loads.
    pub extent: Option<Bbox>,
    /// The transaction that last changed the layer's definition.
    pub schema_tx: TxId,
}

impl Layer {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn schema(&self) -> &LayerSchema {
        &self.def.schema
    }

    /// The display name: title when set, otherwise the table name.
    pub fn display_name(&self) -> &str {
        self.def.title.as_deref().unwrap_or(&self.def.name)
    }
}

/// Who writes, from where (recorded on the transaction and every version it creates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxMeta {
    pub author: String,
    pub device: Option<String>,
    /// The device's own clock when the edit was made (offline edits sync later).
    pub device_time: Option<Timestamp>,
    /// A human label: `import manholes.geojson`, `sync push <replica> <batch>`, `api create`…
    /// Nothing parses it; what code needs to know is in typed fields.
    pub source: Option<String>,
    /// The replica whose push this transaction merges (sync push only).
    pub replica: Option<ReplicaId>,
}

impl TxMeta {
    pub fn by(author: impl Into<String>) -> Self {
        TxMeta { author: author.into(), ..TxMeta::default() }
    }

    pub fn source(mut self, s: impl Into<String>) -> Self {
        self.source = Some(s.into());
        self
    }

    /// Marks the transaction as the merge of `replica`'s push.
    pub fn replica(mut self, replica: ReplicaId) -> Self {
        self.replica = Some(replica);
        self
    }
}

/// A feature to create. `id` and `code` are generated when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewFeature {
    pub id: Option<EntityId>,
    pub code: Option<String>,
    pub geometry: Option<Geometry>,
    pub valid: ValidTime,
    pub properties: Properties,
    /// When the edit was made on its device, if it came from one.
    pub device_time: Option<Timestamp>,
}

/// Changes to a live feature; `None` leaves an attribute as it is. In `set`, `Value::Null` clears
/// a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    pub geometry: Option<Option<Geometry>>,
    pub code: Option<String>,
    pub valid: Option<ValidTime>,
    pub set: Properties,
    /// When the edit was made on its device, if it came from one.
    pub device_time: Option<Timestamp>,
}

/// How a caller names an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureKey {
    Id(EntityId),
    Code(String),
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureKey::Id(id) => write!(f, "with id {id}"),
            FeatureKey::Code(c) => write!(f, "with code `{c}`"),
        }
    }
}

impl FeatureKey {
    /// A UUID is an id, anything else a code.
    pub fn parse(s: &str) -> FeatureKey {
        match s.parse::<EntityId>() {
            Ok(id) => FeatureKey::Id(id),
            Err(_) => FeatureKey::Code(s.to_owned()),
        }
    }
}

/// A combined query: every condition present must hold.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    pub layer: &'a str,
    /// Geometry intersects this box (CGCS2000 lon/lat).
    pub bbox: Option<Bbox>,
    /// Geometry intersects this geometry.
    pub intersects: Option<&'a Geometry>,
    /// CQL2 filter, resolved against the layer schema.
    pub filter: Option<&'a Filter>,
    /// Valid-time condition.
    pub valid: Option<ValidFilter>,
    /// Transaction time: the layer as it was recorded at this instant (`None` = now).
    pub as_of: Option<Timestamp>,
    /// The layer as it was right after this transaction (keyset paging pins the transaction its
    /// first page read, [`QueryStats::tx`]); with `as_of` too, the earlier of the two.
    pub at_tx: Option<TxId>,
    /// Features in entity id order instead of storage order: what keyset paging needs, since an
    /// entity keeps its id in every version (storage order differs between current rows and
    /// history rows). Implied by `after`.
    pub by_id: bool,
    /// Only entities whose id sorts after this one (keyset paging: the last id of the previous
    /// page). Ids compare as their hyphenated lowercase text.
    pub after: Option<EntityId>,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl<'a> Query<'a> {
    pub fn layer(layer: &'a str) -> Self {
        Query { layer, ..Query::default() }
    }
}

/// What a query did (for paging and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Rows read from the database before exact geometry and residual checks.
    pub scanned: usize,
    /// Features passed to the sink.
    pub returned: usize,
    /// Whether more matches exist after the last returned feature (a limit was hit).
    pub more: bool,
    /// The transaction the answer reflects: the last one at or before `as_of`/`at_tx`, or the
    /// newest one of the snapshot read for "now" (`None` when the store had none). A caller
    /// paging on passes it back as `at_tx`, so later pages show the same state of the layer.
    pub tx: Option<TxId>,
}

/// A feature with the version that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeature {
    pub feature: Feature,
    pub version: i64,
    pub tx: TxId,
    pub tx_time: Timestamp,
    /// When the edit that made this version was made on its device (if it came from one).
    pub device_time: Option<Timestamp>,
}

/// The kind of write that produced a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One version of an entity in its history.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub version: i64,
    pub op: Op,
    pub tx: TxRecord,
    /// Device time of the edit behind this version (server time is `tx.time`).
    pub device_time: Option<Timestamp>,
    /// The state this version recorded (`None` for a deletion).
    pub state: Option<Feature>,
    /// Field-level changes from the previous version.
    pub changes: Vec<Change>,
}

/// A committed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRecord {
    pub tx: TxId,
    pub time: Timestamp,
    pub author: String,
    pub device: Option<String>,
    pub device_time: Option<String>,
    /// The human label of `TxMeta::source`.
    pub source: Option<String>,
    /// The replica whose push this transaction merged (`TxMeta::replica`).
    pub replica: Option<ReplicaId>,
}

/// Differences of one layer between two instants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub created: Vec<StoredFeature>,
    pub modified: Vec<Modified>,
    /// The last state of each deleted entity.
    pub deleted: Vec<StoredFeature>,
}

/// One page of a [`Diff`] ([`crate::FeatureStore::diff_page`]): the changed entities in entity id
/// order after a cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffPage {
    pub diff: Diff,
    /// The last entity this page covered, when more may follow: the `after` of the next page.
    /// A page can hold fewer entries than its limit (an entity created and deleted in between
    /// is no change); only `next: None` ends the diff.
    pub next: Option<EntityId>,
}

/// An entity present at both instants with different states.
#[derive(Debug, Clone, PartialEq)]
pub struct Modified {
    pub id: EntityId,
    pub code: String,
    pub from_version: i64,
    pub to_version: i64,
    pub changes: Vec<Change>,
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitInfo {
    pub tx: Option<TxId>,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
}

impl CommitInfo {
    pub fn versions_written(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

/// A replica cut for a device (the server's registry of who holds what).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaRecord {
    pub id: ReplicaId,
    pub name: Option<String>,
    pub author: String,
    pub device: Option<String>,
    pub layers: Vec<String>,
    /// WKT polygon in CGCS2000, if the replica is limited to an area.
    pub area: Option<String>,
    pub created_tx: TxId,
}

/// A position in the store's change order: transaction, then live rows before tombstones, then
/// row id. Opaque to clients (its text form travels in sync cursors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ChangeCursor {
    pub tx: i64,
    pub kind: i64,
    pub key: i64,
}

impl ChangeCursor {
    /// Everything after transaction `tx`.
    pub fn after_tx(tx: TxId) -> Self {
        ChangeCursor { tx: tx.0, kind: i64::MAX, key: i64::MAX }
    }
}

impl std::fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.tx, self.kind, self.key)
    }
}

impl std::str::FromStr for ChangeCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('.').collect();
        let num = |p: &str| p.parse::<i64>().map_err(|_| format!("invalid cursor `{s}`"));
        match parts.as_slice() {
            [t] => Ok(ChangeCursor::after_tx(TxId(num(t)?))),
            [t, k, r] => Ok(ChangeCursor { tx: num(t)?, kind: num(k)?, key: num(r)? }),
            _ => Err(format!("invalid cursor `{s}`")),
        }
    }
}

/// The newest state of an entity that changed after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedEntity {
    pub id: EntityId,
    pub version: i64,
    pub tx: TxId,
    /// `None`: deleted.
    pub state: Option<StoredFeature>,
    pub position: ChangeCursor,
}

/// One page of [`crate::FeatureStore::changes_since`], read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// At most `limit` changes, in change order.
    pub changes: Vec<ChangedEntity>,
    /// Where the next page starts. With `more`, the last change's position; otherwise after the
    /// snapshot's newest transaction (never behind the cursor asked for): every transaction up to
    /// it is reflected in this page and the ones before it, and — positions being assigned in
    /// commit order — nothing at or below it can appear later.
    pub next: ChangeCursor,
    /// Changes beyond `limit` exist in the snapshot.
    pub more: bool,
}

/// An attachment the store knows (its bytes are in the blob directory).
#[derive(Debug, Clone, PartialEq)]
pub struct BlobRecord {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    /// Evidence metadata as the device recorded it (JSON object: capture_time, lon, lat,
    /// heading, device, …).
    pub evidence: serde_json::Value,
    pub uploaded_by: String,
}

/// A record written in a store transaction for delivery elsewhere after the commit (the audit
/// log: see the `sk_audit_outbox` migration). Opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unique; the receiver records it so that a second delivery changes nothing.
    pub id: uuid::Uuid,
    /// The transaction that wrote it.
    pub tx: TxId,
    pub payload: String,
}

/// An entity with open conflicts in its CRDT document, as the conflict index records it
/// ([`crate::SyncBookkeepingTx::put_conflicts`]): what the office's conflict list pages through
/// without opening every document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictEntry {
    pub layer: String,
    pub entity: EntityId,
    /// How many conflicts are open.
    pub conflicts: u32,
    /// Users and devices whose values compete, sorted, without repeats.
    pub authors: Vec<String>,
    /// Transaction time at which the entity's conflicts were first recorded (kept while any stay
    /// open).
    pub opened: Timestamp,
}

/// Which entries of the conflict index to list ([`crate::SyncBookkeeping::open_conflicts`]), in
/// `(layer, entity)` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictFilter {
    pub layer: Option<String>,
    /// A user or device among the entry's authors.
    pub author: Option<String>,
    /// Entries opened at or after this instant.
    pub since: Option<Timestamp>,
    /// Entries strictly after this `(layer, entity)`.
    pub after: Option<(String, EntityId)>,
    pub limit: usize,
}
