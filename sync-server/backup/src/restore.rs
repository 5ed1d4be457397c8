//! Restoring a chain of backups (one full, then incrementals in order) into a new data folder.
//! Built in a sibling folder and renamed into place only after the rebuilt store matched the
//! last backup's digest, so the target is either a complete data folder or untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::backup::read_manifest;
use crate::error::{BackupError, Result};
use crate::files;
use crate::manifest::{FileEntry, FileKind, Kind, Manifest, check_chain};
use crate::sqlite;
use crate::{Progress, STORE_FILE};

/// What a restore rebuilt.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The last store transaction restored, and its instant.
    pub tx: i64,
    pub tx_time: Option<Timestamp>,
    pub backups: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Rebuilds the data folder `target` (new, or an empty folder) from `backups`: a full backup
/// followed by its incrementals, in order.
pub fn restore(target: &Path, backups: &[PathBuf], progress: &dyn Progress) -> Result<RestoreReport> {
    if target.exists() {
        let entries = std::fs::read_dir(target).map_err(BackupError::io(target))?.count();
        if entries > 0 {
            return Err(BackupError::TargetNotEmpty { path: target.display().to_string(), entries });
        }
    }
    let mut chain = Vec::new();
    for b in backups {
        chain.push((b.display().to_string(), read_manifest(b)?));
    }
    check_chain(&chain)?;
    for (path, m) in &chain {
        for f in &m.files {
            if files::join_rel(Path::new(path), &f.path).is_none() {
                return Err(BackupError::Damaged {
                    path: path.clone(),
                    file: f.path.clone(),
                    reason: "the path leaves the backup folder".into(),
                });
            }
        }
    }
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    let tmp = target.with_file_name(format!(".{name}.restoring-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&tmp).map_err(BackupError::io(&tmp))?;
    match build(&tmp, backups, &chain, progress) {
        Ok(report) => {
            if target.exists() {
                std::fs::remove_dir(target).map_err(BackupError::io(target))?;
            }
            std::fs::rename(&tmp, target).map_err(BackupError::io(target))?;
            if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
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

/// Copies one backup file into the folder being built, checking its SHA-256 on the way.
fn restore_file(backup: &Path, f: &FileEntry, tmp: &Path, bytes: &mut u64, progress: &dyn Progress) -> Result<()> {
    let (Some(from), Some(to)) = (files::join_rel(backup, &f.path), files::join_rel(tmp, &f.path)) else {
        return Err(damaged(backup, f, "bad path".into()));
    };
    let base = *bytes;
    let (size, sha) = files::copy_hashed(&from, &to, &mut |n| {
        *bytes += n;
        progress.set(*bytes);
    })
    .map_err(|e| match e {
        BackupError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound && !from.exists() => {
            damaged(backup, f, "it is missing".into())
        }
        other => other,
    })?;
    *bytes = base + size;
    if size != f.size || sha != f.sha256 {
        return Err(damaged(
            backup,
            f,
            format!("{size} bytes with SHA-256 {sha}; the manifest says {} bytes, {}", f.size, f.sha256),
        ));
    }
    Ok(())
}

fn damaged(backup: &Path, f: &FileEntry, reason: String) -> BackupError {
    BackupError::Damaged { path: backup.display().to_string(), file: f.path.clone(), reason }
}

fn build(
    tmp: &Path,
    backups: &[PathBuf],
    chain: &[(String, Manifest)],
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let last = &chain[chain.len() - 1].1;
    // Which backup's copy of each file the restored folder takes: the store from the full one,
    // the account and registry databases from the last, tracked files from the newest backup
    // holding their current content, every attachment of the chain.
    let mut picks: BTreeMap<String, (usize, FileEntry)> = BTreeMap::new();
    let mut deltas: Vec<(usize, FileEntry)> = Vec::new();
    for (i, (_, m)) in chain.iter().enumerate() {
        for f in &m.files {
            match f.kind {
                FileKind::StoreDelta => deltas.push((i, f.clone())),
                FileKind::Store | FileKind::Auth | FileKind::TileRegistry | FileKind::Blob => {
                    picks.insert(f.path.clone(), (i, f.clone()));
                }
                FileKind::Raster | FileKind::Gazetteer => {
                    if last.tracked.get(&f.path).is_some_and(|t| t.sha256 == f.sha256) {
                        picks.insert(f.path.clone(), (i, f.clone()));
                    }
                }
            }
        }
    }
    // The account and tile databases come from the last backup only; an older copy would be a
    // state the last backup no longer had.
    picks.retain(|_, (i, f)| !matches!(f.kind, FileKind::Auth | FileKind::TileRegistry) || *i == chain.len() - 1);
    for (path, t) in &last.tracked {
        if !picks.contains_key(path) {
            return Err(BackupError::Chain(format!(
                "no backup in the chain holds `{path}` with SHA-256 {} (the last backup's record of it)",
                t.sha256
            )));
        }
    }
    if !picks.contains_key(STORE_FILE) {
        return Err(BackupError::Chain(format!("the full backup {} has no {STORE_FILE}", chain[0].0)));
    }
    let total: u64 = picks.values().map(|(_, f)| f.size).sum();
    progress.stage("copying", total);
    let mut bytes = 0u64;
    for (i, f) in picks.values() {
        progress.detail(&f.path);
        restore_file(&backups[*i], f, tmp, &mut bytes, progress)?;
    }
    let store = tmp.join(STORE_FILE);
    if !deltas.is_empty() {
        let conn = sqlite::open_existing(&store)?;
        for (i, f) in &deltas {
            let path =
                files::join_rel(&backups[*i], &f.path).ok_or_else(|| damaged(&backups[*i], f, "bad path".into()))?;
            progress.stage(&format!("applying {} of {}", i, chain.len() - 1), 0);
            let (size, sha) = files::hash_file(&path, &mut |_| {})?;
            if size != f.size || sha != f.sha256 {
                return Err(damaged(&backups[*i], f, format!("SHA-256 {sha}; the manifest says {}", f.sha256)));
            }
            sqlite::apply_delta(&conn, &store, &path, &mut |t| progress.detail(t))?;
        }
        progress.stage("verifying the store", 0);
        let got = sqlite::digest(&conn, &store, &mut |t| progress.detail(t))?;
        if let Some((table, detail)) = got.first_difference(&last.store) {
            return Err(BackupError::Verify { backup: chain[chain.len() - 1].0.clone(), table, detail });
        }
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(BackupError::sqlite(&store))?;
    }
    let dirs: std::collections::BTreeSet<PathBuf> = picks
        .values()
        .filter_map(|(_, f)| files::join_rel(tmp, &f.path))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    for d in dirs {
        files::sync_dir(&d)?;
    }
    debug_assert!(chain[0].1.kind == Kind::Full);
    Ok(RestoreReport { tx: last.tx, tx_time: last.tx_time, backups: chain.len(), files: picks.len(), bytes })
}
