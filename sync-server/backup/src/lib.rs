//! Backups of a shikong data folder, taken while the server runs, and their restore.
//!
//! A **full** backup (`shikong backup --data DIR OUT`) is a folder laid out like a data folder:
//! `store.gpkg` (the store with its whole history and sync bookkeeping, a page-for-page copy of
//! one read snapshot through SQLite's online backup API), `auth.sqlite`, `tiles/registry.sqlite`
//! and the raster acquisitions it lists, the gazetteer files, the attachments the snapshot
//! records (`blobs/<2 hex>/<sha256>`), and `manifest.json` ([`Manifest`]: format version, the
//! store's last transaction and its instant, every file with size and SHA-256, and a digest of
//! every store table).
//!
//! An **incremental** backup (`--since PREVIOUS`) holds what changed after PREVIOUS:
//! `store-delta.sqlite` (the store rows written after PREVIOUS's last transaction, see
//! [`sqlite`](self) module docs), the attachments recorded since, changed gazetteer and raster
//! files (by content), and the small account and tile-registry databases whole.
//!
//! **Restore** (`shikong restore --data NEWDIR FULL INCR…`) checks the chain (one full backup,
//! then incrementals each following the one before, of one store), verifies every file's
//! SHA-256, rebuilds the store by applying the deltas in order, and compares the result table by
//! table with the digest the last backup recorded before it moves the folder into place.
//!
//! What is left out, on purpose: the tile cache (`tiles/cache.sqlite`: rebuilt on demand),
//! unfinished uploads (`blobs/partial/`: devices resume from zero), temporary files
//! (`tiles/incoming/`, `tiles/packages/`) and batch geocoding results (`geocode-jobs/`: jobs end
//! with the process that ran them).
//!
//! Order matters for consistency: the gazetteer files are copied before the store snapshot, so
//! the transaction they cover is never ahead of the restored store (the live gazetteer catches up
//! from the store at its next query); attachments are copied after it, and only those the
//! snapshot records (their files are complete before the record is written).

#![forbid(unsafe_code)]

mod backup;
mod error;
mod files;
pub mod manifest;
mod restore;
mod sqlite;

pub use backup::{BackupOptions, BackupReport, backup};
pub use error::{BackupError, Result};
pub use manifest::{Kind, Manifest};
pub use restore::{RestoreReport, restore};

/// The store's file in a data folder (and in a full backup).
pub const STORE_FILE: &str = "store.gpkg";
/// The store's rows since the previous backup, in an incremental backup.
pub const STORE_DELTA_FILE: &str = "store-delta.sqlite";
/// The account database.
pub const AUTH_FILE: &str = shikong_auth::AuthStore::FILE_NAME;
/// The tile registry (raster sets, styles), relative to the data folder (`shikong-tileserver`).
pub const TILE_REGISTRY: &str = "tiles/registry.sqlite";
/// The folder raster acquisitions live in; the registry names them relative to it.
pub const RASTER_DIR: &str = "tiles/raster";
/// The attachments' folder.
pub const BLOB_DIR: &str = "blobs";
/// The gazetteer's files (`shikong-gazetteer`).
pub const GAZETTEER_FILES: [&str; 3] =
    [shikong_gazetteer::SNAPSHOT_FILE, shikong_gazetteer::SOURCES_FILE, shikong_gazetteer::USER_ALIASES_FILE];

/// Where a long backup or restore reports how far it is (the CLI draws a progress bar).
pub trait Progress {
    /// A new stage begins; `total` is its size in bytes (0 when unknown).
    fn stage(&self, label: &str, total: u64);
    /// `done` bytes of the stage's total are done.
    fn set(&self, done: u64);
    /// What the stage is working on (a table, a file).
    fn detail(&self, _text: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _label: &str, _total: u64) {}
    fn set(&self, _done: u64) {}
}

/// `blobs/<2 hex>/<sha256>` of an attachment, relative to a data folder; `None` for a hash that
/// is not 64 lowercase hex digits (never a path outside the folder).
pub(crate) fn blob_rel(sha: &str) -> Option<String> {
    let ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| format!("{BLOB_DIR}/{}/{sha}", &sha[..2]))
}

#[cfg(test)]
mod tests;
