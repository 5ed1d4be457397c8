//! Attachments (blobs) as the sync engine sees them: what a valid attachment value is, and who may
//! download one. Kept apart from the HTTP routes so that the rule "readers of a layer that
//! references the blob, or its uploader" is decided where every other permission is, through
//! the [`crate::Authorizer`].
//!
//! [`scan_unrecorded`] closes a crash window at start: an upload is renamed into place, then
//! recorded in the store; a server that stopped in between leaves a file without its record.
//! Downloads and uploads of that hash recover it one by one; the scan at start checks every such
//! file's hash and records it (or removes it when the bytes do not match the name), within a
//! budget of files and bytes so that a huge folder cannot hold the server up.

use std::io::Read as _;
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use shikong_auth::{Action, Principal};
use shikong_store::{BlobRecord, Store, TxMeta};

use crate::sync::{Result, layer_access};

/// Whether `s` names an attachment: exactly 64 lowercase hex digits (its SHA-256). Checked
/// before any file is looked up, since attachment values and URL segments come from clients.
pub fn valid_blob_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// At most 80 characters of a client's value, for messages.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Who may download attachment `sha` (a valid id): its recorded uploader, or anyone who may read
/// a layer whose features reference it in any version (admins read every layer). `uploaded_by`
/// is the uploader the store recorded, if any.
pub fn may_read_blob(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    sha: &str,
    uploaded_by: Option<&str>,
) -> Result<bool> {
    if who.is_admin() || uploaded_by.is_some_and(|u| u == who.username) {
        return Ok(true);
    }
    for name in store.blob_layers(sha)? {
        let layer = match store.layer(&name) {
            Ok(l) => l,
            Err(shikong_store::StoreError::NoSuchLayer(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if auth.authorize(Some(who), &layer_access(&layer), Action::Read)?.is_allowed() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Bounds of [`scan_unrecorded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Attachment files looked up in the store at most.
    pub max_files: u64,
    /// Bytes hashed at most (a file that would pass this is left for later).
    pub max_hash_bytes: u64,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits { max_files: 1_000_000, max_hash_bytes: 4 << 30 }
    }
}

/// What [`scan_unrecorded`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobScan {
    /// Attachment files looked up in the store.
    pub files: u64,
    /// Files found without their record whose bytes match their name: recorded now.
    pub recorded: u64,
    /// Files found without their record whose bytes do not match their name: removed (the next
    /// upload of that hash writes it again).
    pub removed: u64,
    /// Files not examined because the budget ran out (the next start, upload or download of
    /// each recovers it).
    pub deferred: u64,
    pub hashed_bytes: u64,
    /// Files that could not be read or removed (at most 16 messages).
    pub errors: Vec<String>,
}

/// Records attachment files of `dir` (`<dir>/<first two hex digits>/<sha256>`) that the store
/// has no record of, after checking that their bytes hash to their name; removes those that do
/// not. Files modified at or after `before` are skipped: an upload in flight renames its file
/// and records it itself. Other files (`partial/`, names that are not attachment ids) are left
/// alone. A recovered attachment has no uploader (readers of a referencing layer may download
/// it, as before the crash).
pub fn scan_unrecorded(store: &dyn Store, dir: &Path, before: SystemTime, limits: ScanLimits) -> Result<BlobScan> {
    let mut scan = BlobScan::default();
    let error = |scan: &mut BlobScan, what: String| {
        if scan.errors.len() < 16 {
            scan.errors.push(what);
        }
    };
    let Ok(shards) = std::fs::read_dir(dir) else { return Ok(scan) };
    let mut shards: Vec<_> = shards.flatten().map(|e| e.path()).collect();
    shards.sort();
    for shard in shards {
        let Some(prefix) = shard.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            continue; // `partial/` and anything else that is not a shard
        }
        let Ok(entries) = std::fs::read_dir(&shard) else { continue };
        for e in entries.flatten() {
            let Some(sha) = e.file_name().to_str().map(str::to_owned) else { continue };
            if !valid_blob_id(&sha) || !sha.starts_with(&prefix) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() || meta.modified().is_ok_and(|m| m >= before) {
                continue;
            }
            if scan.files >= limits.max_files {
                scan.deferred += 1;
                continue;
            }
            scan.files += 1;
            if store.blob(&sha)?.is_some() {
                continue;
            }
            if scan.hashed_bytes.saturating_add(meta.len()) > limits.max_hash_bytes {
                scan.deferred += 1;
                continue;
            }
            let path = e.path();
            scan.hashed_bytes += meta.len();
            let got = match sha256_file(&path) {
                Ok(h) => h,
                Err(err) => {
                    error(&mut scan, format!("{}: {err}", path.display()));
                    continue;
                }
            };
            if got != sha {
                match std::fs::remove_file(&path) {
                    Ok(()) => scan.removed += 1,
                    Err(err) => error(&mut scan, format!("{}: cannot remove: {err}", path.display())),
                }
                continue;
            }
            let mut tx = store.begin(TxMeta::by("server:recovery").source("attachment (recovered at start)"))?;
            tx.put_blob(&BlobRecord {
                sha256: sha.clone(),
                size: meta.len(),
                mime: "application/octet-stream".into(),
                evidence: serde_json::json!({}),
                uploaded_by: String::new(),
            })?;
            tx.commit()?;
            scan.recorded += 1;
        }
    }
    Ok(scan)
}

/// The SHA-256 of a file's bytes, in lowercase hex.
pub fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_sha256_hex_names_an_attachment() {
        let good = "0123456789abcdef".repeat(4);
        assert!(valid_blob_id(&good));
        for bad in [
            String::new(),
            "a".into(),
            "ab".into(),
            good.to_uppercase(),
            format!("{good}0"),
            good[..63].to_owned(),
            format!("{}井", &good[..61]),
            format!("/{}", &good[..63]),
            format!("../{}", &good[..61]),
        ] {
            assert!(!valid_blob_id(&bad), "{bad}");
        }
        assert_eq!(shown(&"井".repeat(100)).chars().count(), 81);
        assert_eq!(shown("ab"), "ab");
    }

    #[test]
    fn the_start_up_scan_records_intact_files_and_removes_damaged_ones() {
        let data = tempfile::tempdir().unwrap();
        let store = shikong_store::init(&shikong_store::StoreConfig::in_dir(data.path())).unwrap();
        let dir = data.path().join("blobs");
        let put = |bytes: &[u8], name: Option<&str>| {
            let sha = name.map_or_else(|| hex_sha(bytes), str::to_owned);
            std::fs::create_dir_all(dir.join(&sha[..2])).unwrap();
            std::fs::write(dir.join(&sha[..2]).join(&sha), bytes).unwrap();
            sha
        };
        let intact = put(&[7u8; 3000], None);
        let recorded_before = put(b"already recorded", None);
        let mut tx = store.begin(TxMeta::by("li").source("attachment")).unwrap();
        tx.put_blob(&BlobRecord {
            sha256: recorded_before.clone(),
            size: 16,
            mime: "image/jpeg".into(),
            evidence: serde_json::json!({}),
            uploaded_by: "li".into(),
        })
        .unwrap();
        tx.commit().unwrap();
        let damaged = put(b"torn", Some(&hex_sha(b"the whole photo")));
        std::fs::create_dir_all(dir.join("partial/3")).unwrap();
        std::fs::write(dir.join("partial/3").join(format!("{}.part", hex_sha(b"x"))), b"half").unwrap();
        std::fs::write(dir.join(&intact[..2]).join("README"), b"not an attachment").unwrap();

        // Files written after the scan began are an upload's business.
        let early = scan_unrecorded(&*store, &dir, SystemTime::UNIX_EPOCH, ScanLimits::default()).unwrap();
        assert_eq!(early, BlobScan::default());
        // A budget of one file's bytes: the rest waits.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let tight = ScanLimits { max_files: 10, max_hash_bytes: 10 };
        let s = scan_unrecorded(&*store, &dir, later, tight).unwrap();
        assert_eq!((s.files, s.recorded, s.removed, s.deferred), (3, 0, 1, 1), "{s:?}");
        assert!(!dir.join(&damaged[..2]).join(&damaged).exists());

        let s = scan_unrecorded(&*store, &dir, later, ScanLimits::default()).unwrap();
        assert_eq!((s.files, s.recorded, s.removed, s.deferred, s.errors.len()), (2, 1, 0, 0, 0), "{s:?}");
        assert_eq!(s.hashed_bytes, 3000);
        let rec = store.blob(&intact).unwrap().unwrap();
        assert_eq!((rec.size, rec.uploaded_by.as_str()), (3000, ""));
        assert_eq!(store.blob(&recorded_before).unwrap().unwrap().uploaded_by, "li", "records are kept");
        assert!(store.blob(&damaged).unwrap().is_none());
        assert!(
            dir.join(&intact[..2]).join("README").exists() && dir.join("partial/3").read_dir().unwrap().count() == 1
        );
        // Nothing left to do.
        let s = scan_unrecorded(&*store, &dir, later, ScanLimits::default()).unwrap();
        assert_eq!((s.files, s.recorded, s.removed), (2, 0, 0), "{s:?}");
    }

    fn hex_sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }
}
