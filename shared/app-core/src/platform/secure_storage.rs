//! Where secrets live: the [`SecureStorage`] trait the session token goes through, so it never
//! lands in `device.json` (which users copy and attach to bug reports). The desktop build keeps
//! each secret in a file of its own readable only by the user ([`FileSecrets`]); tests use
//! [`MemorySecrets`]; Android/iOS builds plug in the Keystore / Keychain behind the same trait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::AppError;

/// A small key → bytes store for credentials.
pub trait SecureStorage: Send + Sync + std::fmt::Debug {
    /// The secret under `key`, `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AppError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), AppError>;
    /// Forgets `key` (nothing to do when it is not there).
    fn remove(&self, key: &str) -> Result<(), AppError>;
    /// A label for settings ("files in …/secrets").
    fn describe(&self) -> String;
}

/// Keys are short names chosen by the app; anything else is refused rather than turned into a
/// path.
fn check_key(key: &str) -> Result<(), AppError> {
    let ok =
        !key.is_empty() && key.len() <= 64 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(AppError::SecureStorage { key: key.to_owned(), reason: "not a valid key".into() }) }
}

/// The desktop store: one file per key in a folder, written atomically and, on Unix, readable and
/// writable by the owner only (mode 0600).
#[derive(Debug, Clone)]
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    pub fn new(dir: impl Into<PathBuf>) -> FileSecrets {
        FileSecrets { dir: dir.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, AppError> {
        check_key(key)?;
        Ok(self.dir.join(key))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl SecureStorage for FileSecrets {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AppError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AppError::Io { path, source: e }),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), AppError> {
        let path = self.path(key)?;
        std::fs::create_dir_all(&self.dir).map_err(AppError::io(&self.dir))?;
        let tmp = path.with_extension("tmp");
        write_private(&tmp, value).map_err(AppError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(AppError::io(&path))
    }

    fn remove(&self, key: &str) -> Result<(), AppError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AppError::Io { path, source: e }),
        }
    }

    fn describe(&self) -> String {
        format!("文件 / files: {}", self.dir.display())
    }
}

/// Secrets kept in memory only, gone when the app ends (tests, kiosk devices).
#[derive(Debug, Default)]
pub struct MemorySecrets {
    values: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl SecureStorage for MemorySecrets {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AppError> {
        check_key(key)?;
        Ok(self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), AppError> {
        check_key(key)?;
        self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), AppError> {
        check_key(key)?;
        self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
        Ok(())
    }

    fn describe(&self) -> String {
        "内存 / memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &dyn SecureStorage) {
        assert_eq!(s.get("session").ok(), Some(None));
        assert!(s.set("session", b"token").is_ok());
        assert_eq!(s.get("session").ok().flatten().as_deref(), Some(&b"token"[..]));
        assert!(s.remove("session").is_ok());
        assert!(s.remove("session").is_ok(), "removing twice is fine");
        assert_eq!(s.get("session").ok(), Some(None));
        assert!(matches!(s.set("../x", b""), Err(AppError::SecureStorage { .. })));
    }

    #[test]
    fn file_and_memory_stores_behave_alike() {
        let dir = tempfile::tempdir().ok();
        let dir = dir.as_ref().map(|d| d.path().join("secrets")).unwrap_or_default();
        round_trip(&FileSecrets::new(&dir));
        round_trip(&MemorySecrets::default());
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().ok();
        let dir = dir.as_ref().map(|d| d.path().to_owned()).unwrap_or_default();
        let s = FileSecrets::new(&dir);
        assert!(s.set("session", b"token").is_ok());
        let mode = std::fs::metadata(dir.join("session")).map(|m| m.permissions().mode() & 0o777).ok();
        assert_eq!(mode, Some(0o600));
    }
}
