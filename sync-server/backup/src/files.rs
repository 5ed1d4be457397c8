//! Plain files of a data folder: copied with their SHA-256 computed on the way, and made durable
//! (file and folder synced) before a backup or restore is renamed into place.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{BackupError, Result};

const CHUNK: usize = 1 << 20;

/// Copies `from` to the new file `to` (parent folders created); returns (size, SHA-256 hex).
/// `progress` gets the bytes of each chunk copied.
pub(crate) fn copy_hashed(from: &Path, to: &Path, progress: &mut dyn FnMut(u64)) -> Result<(u64, String)> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
    }
    let mut src = File::open(from).map_err(BackupError::io(from))?;
    let mut dst = File::create_new(to).map_err(BackupError::io(to))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(BackupError::io(from))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(BackupError::io(to))?;
        size += n as u64;
        progress(n as u64);
    }
    dst.sync_all().map_err(BackupError::io(to))?;
    Ok((size, format!("{:x}", h.finalize())))
}

/// (size, SHA-256 hex) of a file.
pub(crate) fn hash_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(BackupError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(BackupError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
        progress(n as u64);
    }
    Ok((size, format!("{:x}", h.finalize())))
}

/// Modification time in nanoseconds since the epoch (0 when the platform has none).
pub(crate) fn mtime_ns(path: &Path) -> Result<i128> {
    let m = std::fs::metadata(path).map_err(BackupError::io(path))?;
    Ok(m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0)))
}

/// Syncs a folder, so that the names of the files in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(BackupError::io(dir))
}

/// Every file under `dir` (recursively), as paths relative to `dir` with `/` separators,
/// sorted. A missing folder has none.
#[cfg(test)]
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BackupError::Io { path: dir.display().to_string(), source: e }),
        };
        for entry in entries {
            let entry = entry.map_err(BackupError::io(dir))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(BackupError::io(&path))?;
            if ty.is_dir() {
                walk(root, &path, out)?;
            } else if ty.is_file()
                && let Ok(rel) = path.strip_prefix(root)
            {
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Joins a `/`-separated relative path from a manifest onto `base`, refusing anything that
/// would leave `base` (a damaged or hostile manifest must not write elsewhere).
pub(crate) fn join_rel(base: &Path, rel: &str) -> Option<std::path::PathBuf> {
    let mut p = base.to_path_buf();
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') || part.contains(':') {
            return None;
        }
        p.push(part);
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_folder() {
        let base = Path::new("/b");
        assert_eq!(join_rel(base, "blobs/ab/abcd"), Some(Path::new("/b/blobs/ab/abcd").to_path_buf()));
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "", "c:\\x"] {
            assert_eq!(join_rel(base, bad), None, "{bad}");
        }
    }

    #[test]
    fn copies_are_hashed_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"abc").unwrap();
        let (size, sha) = copy_hashed(&a, &dir.path().join("x/y/b"), &mut |_| {}).unwrap();
        assert_eq!(size, 3);
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash_file(&dir.path().join("x/y/b"), &mut |_| {}).unwrap(), (3, sha));
        assert_eq!(list_files(dir.path()).unwrap(), vec!["a".to_owned(), "x/y/b".to_owned()]);
    }
}
