//! Where the desktop keeps the session token: the platform's secret storage through `keyring`
//! (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows), so the session
//! survives restarts without a readable token on disk. A machine without one (a headless Linux
//! box, CI, a desktop with no Secret Service running) falls back to the app core's [`FileSecrets`]:
//! one file per secret, mode 0600, in the data folder's `secrets/`. `SHIKONG_DESKTOP_SECRETS=file`
//! chooses the files on purpose.

use std::path::Path;
use std::sync::Arc;

use shikong_app_core::AppError;
use shikong_app_core::platform::{FileSecrets, SecureStorage};

const SERVICE: &str = "shikong-desktop";

/// Secrets in the platform's store; each key is qualified by the data folder, so two data
/// folders (two servers, tests) never share a session.
#[derive(Debug)]
pub struct KeyringSecrets {
    scope: String,
}

impl KeyringSecrets {
    fn entry(&self, key: &str) -> Result<keyring::Entry, AppError> {
        keyring::Entry::new(SERVICE, &format!("{key}@{}", self.scope)).map_err(|e| failure(key, &e))
    }
}

fn failure(key: &str, e: &keyring::Error) -> AppError {
    AppError::SecureStorage { key: key.to_owned(), reason: e.to_string() }
}

impl SecureStorage for KeyringSecrets {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AppError> {
        match self.entry(key)?.get_secret() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(failure(key, &e)),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), AppError> {
        self.entry(key)?.set_secret(value).map_err(|e| failure(key, &e))
    }

    fn remove(&self, key: &str) -> Result<(), AppError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(failure(key, &e)),
        }
    }

    fn describe(&self) -> String {
        "系统密钥环 / system keyring".into()
    }
}

/// The platform's store when it answers, else files in `data/secrets` (mode 0600).
pub fn open(data: &Path) -> Arc<dyn SecureStorage> {
    let files = || -> Arc<dyn SecureStorage> { Arc::new(FileSecrets::new(data.join("secrets"))) };
    if std::env::var("SHIKONG_DESKTOP_SECRETS").is_ok_and(|v| v == "file") {
        return files();
    }
    let keyring = KeyringSecrets { scope: data.display().to_string() };
    // A read of a key never written: "no entry" means the store works; anything else (no D-Bus
    // session, no Secret Service, a locked store refusing access) means it does not.
    match keyring.get("probe") {
        Ok(_) => Arc::new(keyring),
        Err(e) => {
            tracing::info!("no platform secret storage ({e}); the session is kept in a 0600 file");
            files()
        }
    }
}
