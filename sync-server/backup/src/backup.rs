//! Taking a backup: full, or incremental after a previous one. Written into `OUT.tmp` and renamed
//! to `OUT` once complete and synced, so `OUT` is either a whole backup or absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::Connection;

use crate::error::{BackupError, Result};
use crate::files;
use crate::manifest::{FORMAT, FORMAT_VERSION, FileEntry, FileKind, Kind, MANIFEST_FILE, Manifest, Previous, Tracked};
use crate::sqlite;
use crate::{AUTH_FILE, GAZETTEER_FILES, Progress, RASTER_DIR, STORE_DELTA_FILE, STORE_FILE, TILE_REGISTRY, blob_rel};

/// What to back up, where.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The data folder (holds `store.gpkg`).
    pub data: PathBuf,
    /// The backup folder to create (must not exist).
    pub out: PathBuf,
    /// The backup this one follows (an incremental backup), or `None` for a full one.
    pub since: Option<PathBuf>,
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// Bytes written into the backup folder.
    pub bytes: u64,
    /// Store rows carried by an incremental backup.
    pub delta_rows: Option<u64>,
}

/// Reads a backup folder's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| BackupError::NotABackup {
        path: dir.display().to_string(),
        reason: format!("cannot read {MANIFEST_FILE}: {e}"),
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| BackupError::NotABackup {
        path: dir.display().to_string(),
        reason: format!("{MANIFEST_FILE}: {e}"),
    })?;
    m.check_format(&dir.display().to_string())?;
    Ok(m)
}

/// `OUT.tmp`, beside `OUT`.
fn temp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    out.with_file_name(name)
}

/// Takes a backup of `opts.data` while its server may be running and writing.
pub fn backup(opts: &BackupOptions, progress: &dyn Progress) -> Result<BackupReport> {
    let store_path = opts.data.join(STORE_FILE);
    if !store_path.is_file() {
        return Err(BackupError::NotADataFolder {
            path: opts.data.display().to_string(),
            reason: format!("no {STORE_FILE} in it"),
        });
    }
    if opts.out.exists() {
        return Err(BackupError::OutputExists { path: opts.out.display().to_string() });
    }
    let previous = opts.since.as_deref().map(|p| Ok::<_, BackupError>((p, read_manifest(p)?))).transpose()?;
    let tmp = temp_path(&opts.out);
    if tmp.exists() {
        return Err(BackupError::StaleTemp { path: tmp.display().to_string() });
    }
    std::fs::create_dir_all(&tmp).map_err(BackupError::io(&tmp))?;
    let result = write(opts, previous.as_ref().map(|(p, m)| (*p, m)), &tmp, progress);
    match result {
        Ok(report) => {
            std::fs::rename(&tmp, &opts.out).map_err(BackupError::io(&opts.out))?;
            if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
                files::sync_dir(parent)?;
            }
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Everything a backup writes, into `tmp`.
struct Writer<'a> {
    data: &'a Path,
    tmp: &'a Path,
    files: Vec<FileEntry>,
    bytes: u64,
    progress: &'a dyn Progress,
}

impl Writer<'_> {
    /// Copies `rel` of the data folder into the backup, hashing it.
    fn copy(&mut self, rel: &str, kind: FileKind) -> Result<FileEntry> {
        let from = self.data.join(rel);
        let to = self.tmp.join(rel);
        let (size, sha256) = files::copy_hashed(&from, &to, &mut |_| {})?;
        self.bytes += size;
        let entry = FileEntry { path: rel.to_owned(), kind, size, sha256 };
        self.files.push(entry.clone());
        Ok(entry)
    }

    /// Copies a SQLite file of the data folder from one read snapshot; returns the source
    /// connection still inside that snapshot (the caller reads more from it, then ends it).
    fn copy_db(&mut self, rel: &str, kind: FileKind, label: &str) -> Result<Connection> {
        let from = self.data.join(rel);
        let to = self.tmp.join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
        }
        let conn = sqlite::open_existing(&from)?;
        sqlite::begin_snapshot(&conn, &from)?;
        self.progress.stage(label, 0);
        let mut started = false;
        sqlite::copy_snapshot(&conn, &from, &to, &mut |done, total| {
            if !started {
                self.progress.stage(label, total);
                started = true;
            }
            self.progress.set(done);
        })?;
        let (size, sha256) = files::hash_file(&to, &mut |_| {})?;
        self.bytes += size;
        self.files.push(FileEntry { path: rel.to_owned(), kind, size, sha256 });
        Ok(conn)
    }

    /// A file tracked by content: copied unless the chain already holds this content.
    fn tracked(
        &mut self,
        rel: &str,
        kind: FileKind,
        before: Option<&Tracked>,
        now: &mut BTreeMap<String, Tracked>,
    ) -> Result<()> {
        let path = self.data.join(rel);
        let (size, mtime_ns) =
            (std::fs::metadata(&path).map_err(BackupError::io(&path))?.len(), files::mtime_ns(&path)?);
        if let Some(b) = before.filter(|b| b.kind == kind && b.size == size && b.mtime_ns == mtime_ns) {
            now.insert(rel.to_owned(), b.clone());
            return Ok(());
        }
        let entry = self.copy(rel, kind)?;
        if before.is_some_and(|b| b.sha256 == entry.sha256) {
            // Touched but not changed: the chain's copy serves.
            let _ = std::fs::remove_file(self.tmp.join(rel));
            self.bytes -= entry.size;
            self.files.pop();
        }
        now.insert(rel.to_owned(), Tracked { kind, size: entry.size, sha256: entry.sha256, mtime_ns });
        Ok(())
    }
}

fn write(
    opts: &BackupOptions,
    previous: Option<(&Path, &Manifest)>,
    tmp: &Path,
    progress: &dyn Progress,
) -> Result<BackupReport> {
    let mut w = Writer { data: &opts.data, tmp, files: Vec::new(), bytes: 0, progress };
    let before = previous.map(|(_, m)| m.tracked.clone()).unwrap_or_default();
    let mut tracked = BTreeMap::new();

    // 1. The gazetteer, before the store (the transaction it covers is never ahead of the store).
    progress.stage("gazetteer", 0);
    for name in GAZETTEER_FILES {
        if opts.data.join(name).is_file() {
            w.tracked(name, FileKind::Gazetteer, before.get(name), &mut tracked)?;
        }
    }

    // 2. Accounts, whole (small).
    if opts.data.join(AUTH_FILE).is_file() {
        let conn = w.copy_db(AUTH_FILE, FileKind::Auth, "accounts")?;
        sqlite::end_snapshot(&conn, &opts.data.join(AUTH_FILE))?;
    }

    // 3. Tile sets: the registry, whole, then the raster files it lists.
    if opts.data.join(TILE_REGISTRY).is_file() {
        let conn = w.copy_db(TILE_REGISTRY, FileKind::TileRegistry, "tile registry")?;
        let reg = opts.data.join(TILE_REGISTRY);
        let rasters: Vec<String> = {
            let has = conn
                .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'raster_slices'", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(BackupError::sqlite(&reg))?;
            if has == 0 {
                Vec::new()
            } else {
                let mut stmt =
                    conn.prepare("SELECT file FROM raster_slices ORDER BY file").map_err(BackupError::sqlite(&reg))?;
                stmt.query_map([], |r| r.get(0)).and_then(|r| r.collect()).map_err(BackupError::sqlite(&reg))?
            }
        };
        sqlite::end_snapshot(&conn, &reg)?;
        drop(conn);
        progress.stage("raster sets", 0);
        for file in rasters {
            let rel = format!("{RASTER_DIR}/{file}");
            if files::join_rel(&opts.data, &rel).is_none() {
                return Err(BackupError::Unsupported {
                    path: reg.display().to_string(),
                    reason: format!("raster file name `{file}`"),
                });
            }
            progress.detail(&rel);
            w.tracked(&rel, FileKind::Raster, before.get(&rel), &mut tracked)?;
        }
    }

    // 4. The store, from one read snapshot.
    let store_path = opts.data.join(STORE_FILE);
    let (conn, delta_rows) = match previous {
        None => (w.copy_db(STORE_FILE, FileKind::Store, "store")?, None),
        Some((prev_path, prev)) => {
            let conn = sqlite::open_existing(&store_path)?;
            sqlite::begin_snapshot(&conn, &store_path)?;
            check_follows(&conn, &store_path, prev_path, prev)?;
            progress.stage("store changes", 0);
            let delta = tmp.join(STORE_DELTA_FILE);
            let stats =
                sqlite::export_delta(&conn, &store_path, &delta, prev.tx, &prev.store, &mut |t| progress.detail(t))?;
            let (size, sha256) = files::hash_file(&delta, &mut |_| {})?;
            w.bytes += size;
            w.files.push(FileEntry { path: STORE_DELTA_FILE.into(), kind: FileKind::StoreDelta, size, sha256 });
            (conn, Some(stats.rows))
        }
    };
    let store_id = sqlite::store_id(&conn, &store_path)?;
    let (tx, tx_us) = sqlite::last_tx(&conn, &store_path)?;
    let after = previous.map_or(-1, |(_, m)| m.tx);
    let blobs: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT sha256 FROM sk_blobs WHERE uploaded_tx > ?1 ORDER BY sha256")
            .map_err(BackupError::sqlite(&store_path))?;
        stmt.query_map([after], |r| r.get(0)).and_then(|r| r.collect()).map_err(BackupError::sqlite(&store_path))?
    };
    // The digest is read inside the same snapshot as the copy or the rows.
    progress.stage("store digest", 0);
    let digest = sqlite::digest(&conn, &store_path, &mut |t| progress.detail(t))?;
    sqlite::end_snapshot(&conn, &store_path)?;
    drop(conn);

    // 5. Attachments the snapshot records (complete before their record was written).
    progress.stage("attachments", blobs.len() as u64);
    for (i, sha) in blobs.iter().enumerate() {
        let rel = blob_rel(sha).ok_or_else(|| BackupError::Unsupported {
            path: store_path.display().to_string(),
            reason: format!("sk_blobs holds `{sha}`, not a SHA-256"),
        })?;
        let entry = w.copy(&rel, FileKind::Blob)?;
        if entry.sha256 != *sha {
            return Err(BackupError::Damaged {
                path: opts.data.display().to_string(),
                file: rel,
                reason: format!("its content hashes to {}", entry.sha256),
            });
        }
        progress.set(i as u64 + 1);
    }

    let removed: Vec<String> = before.keys().filter(|k| !tracked.contains_key(*k)).cloned().collect();
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        id: uuid::Uuid::now_v7(),
        kind: if previous.is_some() { Kind::Incremental } else { Kind::Full },
        previous: previous.map(|(_, m)| Previous { id: m.id, tx: m.tx }),
        store_id,
        tx,
        tx_time: tx_us.and_then(|us| Timestamp::from_microsecond(us).ok()),
        created_at: Timestamp::now(),
        files: w.files,
        removed,
        tracked,
        blobs: previous.map_or(0, |(_, m)| m.blobs) + blobs.len() as u64,
        store: digest,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BackupError::Unsupported { path: tmp.display().to_string(), reason: format!("manifest: {e}") })?;
    let mpath = tmp.join(MANIFEST_FILE);
    std::fs::write(&mpath, text).map_err(BackupError::io(&mpath))?;
    std::fs::File::open(&mpath).and_then(|f| f.sync_all()).map_err(BackupError::io(&mpath))?;
    for dir in std::iter::once(tmp.to_path_buf()).chain(dirs_of(tmp, &manifest)) {
        files::sync_dir(&dir)?;
    }
    Ok(BackupReport { bytes: w.bytes, delta_rows, manifest })
}

/// The folders of a backup's files (to sync their entries).
fn dirs_of(root: &Path, m: &Manifest) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = m
        .files
        .iter()
        .filter_map(|f| files::join_rel(root, &f.path))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Checks that the store still holds the previous backup's last transaction as it was.
fn check_follows(conn: &Connection, path: &Path, prev_path: &Path, prev: &Manifest) -> Result<()> {
    let id = sqlite::store_id(conn, path)?;
    if id != prev.store_id {
        return Err(BackupError::OtherStore {
            previous: prev_path.display().to_string(),
            previous_store: prev.store_id.clone(),
            store: id,
        });
    }
    if prev.tx == 0 {
        return Ok(());
    }
    let diverged =
        |reason: String| BackupError::Diverged { previous: prev_path.display().to_string(), tx: prev.tx, reason };
    let now = sqlite::tx_time_us(conn, path, prev.tx)?;
    let want = prev.tx_time.map(|t| t.as_microsecond());
    match now {
        None => Err(diverged("the store has no such transaction".into())),
        Some(us) if Some(us) != want => Err(diverged(format!(
            "its instant is {} in the store, {} in the backup",
            Timestamp::from_microsecond(us).map(|t| t.to_string()).unwrap_or_default(),
            prev.tx_time.map(|t| t.to_string()).unwrap_or_default()
        ))),
        Some(_) => Ok(()),
    }
}
