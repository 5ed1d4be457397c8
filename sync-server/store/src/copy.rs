//! Copying a whole store from one backend to another (`shikong store copy --from … --to …`), so a
//! city can start on the embedded SQLite store and move to PostgreSQL (or back) without devices
//! noticing.
//!
//! Why a raw copy and not a replay through [`crate::StoreTx`]: a replay would give every version
//! a new transaction number and instant, and every row a new position in the change feed. What
//! devices hold refers to exactly those: a pull cursor is a [`ChangeCursor`] `(tx, kind, key)`
//! whose `key` is a row key of the source (`fid` of a live row, `hid` of a tombstone, the sequence
//! of a sync document), and a server mark (`shikong-sync-engine`'s `timeline`) is a transaction's
//! number *and* commit instant. So the copy moves rows, not operations: every transaction record
//! (number, microsecond instant, author, device, source, replica), every version with its row key,
//! transaction interval, properties, geometry and device time, every layer with its schema
//! history and counters (next field id, next generated code, extent), sync documents with their
//! sequence, replicas, attachment records and references, the conflict index and the audit
//! outbox, and `sk_meta`'s `store_id` and `created_at`. The destination then answers every read —
//! history, as-of, diffs, change pages from an old cursor, marks — as the source did.
//!
//! The stream is backend-neutral ([`RawBatch`]): a backend exports its rows in dependency order
//! from one read snapshot ([`RawCopy::raw_export`]) and imports them into an empty store
//! ([`RawCopy::raw_import`]) in **one** write transaction, holding the writer lock. So a copy is
//! all or nothing: an interrupted copy leaves the destination as it was (empty), a re-run simply
//! starts again, and a server already running on the destination sees an empty store or the whole
//! copy, never half of one. A destination holding anything (a layer, a transaction, a replica, an
//! attachment record, a document, an outbox record) is refused before anything is written
//! ([`StoreError::DestinationNotEmpty`]).
//!
//! Attachment bytes are files (`<data folder>/blobs/<2 hex>/<sha256>`), not store rows: they are
//! copied between data folders when both are known (a SQLite store's own folder, or the
//! `from_data`/`to_data` of [`CopyOptions`] for a PostgreSQL side) and differ; otherwise they stay
//! where they are and the report says so (a PostgreSQL store is served with `--data` naming the
//! folder that holds them).

use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::Timestamp;
use shikong_model::{Bbox, EntityId, Feature, Geometry, TxId, ValidTime};

use crate::error::{Result, StoreError};
use crate::open::StoreConfig;
use crate::types::*;

/// Rows per exported batch.
pub const BATCH_ROWS: usize = 5_000;

/// A layer with everything its tables do not hold: definition, counters, schema history.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLayer {
    /// Name, title, current schema (fields with their ids), theme, flags.
    pub def: LayerDef,
    pub srs_id: i32,
    pub created_tx: TxId,
    pub extent: Option<Bbox>,
    /// The number the next new field's id takes (`c<n>`).
    pub next_field_id: i64,
    /// The number the next generated code takes (`<layer>-<n>`).
    pub next_code: i64,
    /// Every schema the layer had, by the transaction that set it (JSON text), oldest first.
    pub schema_history: Vec<(TxId, String)>,
}

/// A row of a layer's live table: the current version of a live entity.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLive {
    /// The row key: its position key in the change feed (kind 0), kept as is.
    pub fid: i64,
    pub feature: Feature,
    pub version: i64,
    pub tx: TxId,
    pub device_time: Option<Timestamp>,
}

/// A row of a layer's history table: a superseded version or a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct RawHist {
    /// The row key: a tombstone's position key in the change feed (kind 1), kept as is.
    pub hid: i64,
    pub entity: EntityId,
    pub version: i64,
    pub op: Op,
    pub tx_from: TxId,
    pub tx_to: Option<TxId>,
    pub code: Option<String>,
    pub geometry: Option<Geometry>,
    pub valid: ValidTime,
    pub device_time: Option<Timestamp>,
    /// Properties as the history keeps them: a JSON object keyed by field id (the same text on
    /// both backends).
    pub props: String,
}

/// An entity's CRDT document.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSyncDoc {
    pub layer: String,
    pub entity: EntityId,
    pub version: i64,
    pub doc: Vec<u8>,
    /// The transaction that last wrote it.
    pub tx: TxId,
    /// Its position key in the change feed (kind 2): SQLite's rowid, PostgreSQL's `seq`.
    pub seq: i64,
}

/// An attachment's record and the transaction that recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBlob {
    pub record: BlobRecord,
    pub uploaded_tx: TxId,
}

/// An entry of the conflict index and the transaction that last wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawConflict {
    pub entry: ConflictEntry,
    pub tx: TxId,
}

/// An undelivered audit record with its order key (delivery order is `(tx, seq)`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutbox {
    pub entry: OutboxEntry,
    pub seq: i64,
}

/// How many rows of each kind an export will send (for progress).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyTotals {
    pub transactions: u64,
    pub layers: u64,
    /// Live rows and history rows of every layer.
    pub versions: u64,
    /// Sync documents, replicas, attachment records and references, conflicts, outbox records.
    pub bookkeeping: u64,
}

impl CopyTotals {
    pub fn rows(&self) -> u64 {
        self.transactions + self.layers + self.versions + self.bookkeeping
    }
}

/// One step of the stream, in the order an export sends them: `Start`, `Meta`, `Transactions`…,
/// then per layer `Layer`, `Live`…, `Hist`…, then the bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub enum RawBatch {
    Start(CopyTotals),
    /// `sk_meta` entries that travel (`store_id`, `created_at`).
    Meta(Vec<(String, String)>),
    Transactions(Vec<TxRecord>),
    Layer(Box<RawLayer>),
    Live(String, Vec<RawLive>),
    Hist(String, Vec<RawHist>),
    SyncDocs(Vec<RawSyncDoc>),
    Replicas(Vec<ReplicaRecord>),
    Blobs(Vec<RawBlob>),
    /// `(sha256, layer)`.
    BlobRefs(Vec<(String, String)>),
    Conflicts(Vec<RawConflict>),
    Outbox(Vec<RawOutbox>),
}

impl RawBatch {
    /// Rows this batch carries.
    pub fn rows(&self) -> u64 {
        let n = match self {
            RawBatch::Start(_) | RawBatch::Meta(_) => 0,
            RawBatch::Layer(_) => 1,
            RawBatch::Transactions(v) => v.len(),
            RawBatch::Live(_, v) => v.len(),
            RawBatch::Hist(_, v) => v.len(),
            RawBatch::SyncDocs(v) => v.len(),
            RawBatch::Replicas(v) => v.len(),
            RawBatch::Blobs(v) => v.len(),
            RawBatch::BlobRefs(v) => v.len(),
            RawBatch::Conflicts(v) => v.len(),
            RawBatch::Outbox(v) => v.len(),
        };
        n as u64
    }
}

/// The receiving end of an import: one open write transaction on an empty store.
pub trait RawWriter {
    fn write(&mut self, batch: RawBatch) -> Result<()>;
    /// Rebuilds what was deferred (spatial indexes, sequences) and commits. Dropping the writer
    /// without it rolls everything back.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// What a backend does for [`copy`].
pub trait RawCopy {
    /// Sends every row of the store to `sink`, from one read snapshot, in batches of at most
    /// [`BATCH_ROWS`], in the order of [`RawBatch`].
    fn raw_export(&self, sink: &mut dyn FnMut(RawBatch) -> Result<()>) -> Result<()>;

    /// Opens the import transaction (taking the writer lock), after checking that the store is
    /// empty ([`StoreError::DestinationNotEmpty`] otherwise, with nothing written).
    fn raw_import(&self) -> Result<Box<dyn RawWriter + '_>>;
}

/// Where attachment bytes live when a side's store does not say (a PostgreSQL store).
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The data folder the source's server uses (its `blobs/`).
    pub from_data: Option<PathBuf>,
    /// The data folder the destination's server will use.
    pub to_data: Option<PathBuf>,
}

/// Progress of a running copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyProgress {
    pub done: u64,
    pub total: u64,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyReport {
    pub layers: u64,
    pub transactions: u64,
    /// Live rows plus history rows (superseded versions and tombstones).
    pub versions: u64,
    pub live: u64,
    pub sync_docs: u64,
    pub replicas: u64,
    pub blobs: u64,
    pub blob_refs: u64,
    pub conflicts: u64,
    pub outbox: u64,
    /// Attachment files copied between data folders.
    pub blob_files_copied: u64,
    /// Attachment records whose file the source folder did not have.
    pub blob_files_missing: u64,
    /// Why attachment files were not copied (no folder known on one side, or the same folder).
    pub blob_files_note: Option<String>,
    pub seconds: f64,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} layers, {} versions ({} live), {} transactions, {} sync documents, {} replicas, {} attachment records \
             ({} references), {} conflicts, {} outbox records in {:.1} s",
            self.layers,
            self.versions,
            self.live,
            self.transactions,
            self.sync_docs,
            self.replicas,
            self.blobs,
            self.blob_refs,
            self.conflicts,
            self.outbox,
            self.seconds
        )?;
        match &self.blob_files_note {
            Some(note) => write!(f, "; attachment files: {note}"),
            None => write!(
                f,
                "; {} attachment files copied, {} missing at the source",
                self.blob_files_copied, self.blob_files_missing
            ),
        }
    }
}

/// Opens a store for copying: its concrete backend (the copy needs each backend's raw side).
fn open_raw(config: &StoreConfig, create: bool) -> Result<Box<dyn RawCopy>> {
    Ok(match config {
        StoreConfig::Sqlite { path } => {
            if create {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
                }
                Box::new(crate::SqliteStore::open_or_create(path)?)
            } else {
                Box::new(crate::SqliteStore::open(path)?)
            }
        }
        StoreConfig::Postgres { url } => Box::new(crate::PgStore::open(url, create)?),
    })
}

/// The data folder of a side: given, or the folder of a SQLite store's file.
fn data_folder(config: &StoreConfig, given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| match config {
        StoreConfig::Sqlite { path } => {
            Some(path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf())
        }
        StoreConfig::Postgres { .. } => None,
    })
}

/// Copies the store at `from` into the empty store at `to` (created when missing), with
/// everything devices and readers rely on (see the module docs). `progress` is called after
/// every batch.
pub fn copy(
    from: &StoreConfig,
    to: &StoreConfig,
    options: &CopyOptions,
    progress: &mut dyn FnMut(CopyProgress),
) -> Result<CopyReport> {
    if from == to {
        return Err(StoreError::InvalidArgument(format!("--from and --to name the same store ({from})")));
    }
    let started = Instant::now();
    let source = open_raw(from, false)?;
    let destination = open_raw(to, true)?;
    let mut writer = destination.raw_import().map_err(|e| match e {
        StoreError::DestinationNotEmpty { holds, .. } => {
            StoreError::DestinationNotEmpty { store: to.to_string(), holds }
        }
        other => other,
    })?;
    let mut report = CopyReport::default();
    let mut state = CopyProgress::default();
    let mut blobs: Vec<String> = Vec::new();
    source.raw_export(&mut |mut batch| {
        if let RawBatch::Meta(entries) = &mut batch {
            // Where this store came from, for whoever reads `sk_meta` later.
            entries.push(("copied_from".into(), from.to_string()));
            entries.push(("copied_at".into(), Timestamp::now().to_string()));
        }
        match &batch {
            RawBatch::Start(t) => state.total = t.rows(),
            RawBatch::Transactions(v) => report.transactions += v.len() as u64,
            RawBatch::Layer(_) => report.layers += 1,
            RawBatch::Live(_, v) => {
                report.live += v.len() as u64;
                report.versions += v.len() as u64;
            }
            RawBatch::Hist(_, v) => report.versions += v.len() as u64,
            RawBatch::SyncDocs(v) => report.sync_docs += v.len() as u64,
            RawBatch::Replicas(v) => report.replicas += v.len() as u64,
            RawBatch::Blobs(v) => {
                report.blobs += v.len() as u64;
                blobs.extend(v.iter().map(|b| b.record.sha256.clone()));
            }
            RawBatch::BlobRefs(v) => report.blob_refs += v.len() as u64,
            RawBatch::Conflicts(v) => report.conflicts += v.len() as u64,
            RawBatch::Outbox(v) => report.outbox += v.len() as u64,
            RawBatch::Meta(_) => {}
        }
        state.done += batch.rows();
        writer.write(batch)?;
        progress(state);
        Ok(())
    })?;
    writer.finish()?;
    drop(destination);
    drop(source);
    match (data_folder(from, options.from_data.as_deref()), data_folder(to, options.to_data.as_deref())) {
        _ if blobs.is_empty() => {}
        (Some(a), Some(b)) if same_folder(&a, &b) => {
            report.blob_files_note = Some(format!("they stay in {}", a.join("blobs").display()));
        }
        (Some(a), Some(b)) => {
            let (copied, missing) = copy_blob_files(&blobs, &a, &b)?;
            report.blob_files_copied = copied;
            report.blob_files_missing = missing;
        }
        (Some(a), None) => {
            report.blob_files_note = Some(format!(
                "they stay in {} (serve the destination with --data naming that folder, or give the destination's folder)",
                a.join("blobs").display()
            ));
        }
        (None, _) => {
            report.blob_files_note =
                Some("not copied: the source is a database; give the data folder its server used to copy them".into());
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The file of attachment `sha` under a data folder.
pub fn blob_file(data: &Path, sha: &str) -> PathBuf {
    let prefix = sha.get(..2).unwrap_or(sha);
    data.join("blobs").join(prefix).join(sha)
}

/// Copies the files of `shas` from one data folder to another (a file already there is kept):
/// `(copied, missing at the source)`.
fn copy_blob_files(shas: &[String], from: &Path, to: &Path) -> Result<(u64, u64)> {
    let io = |p: &Path, source| StoreError::Io { path: p.display().to_string(), source };
    let (mut copied, mut missing) = (0, 0);
    for sha in shas {
        // Record keys are hex digests; anything else never names a file.
        if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            missing += 1;
            continue;
        }
        let (src, dst) = (blob_file(from, sha), blob_file(to, sha));
        if !src.is_file() {
            missing += 1;
            continue;
        }
        if dst.is_file() {
            continue;
        }
        let dir = dst.parent().unwrap_or(to);
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        // Written under a temporary name and renamed: a file is there whole or not at all.
        let tmp = dst.with_extension("copying");
        std::fs::copy(&src, &tmp).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &dst).map_err(|e| io(&dst, e))?;
        copied += 1;
    }
    Ok((copied, missing))
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
