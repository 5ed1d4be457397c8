//! The device's settings and their persistence: `device.json` in the data folder (language,
//! favourites, the open area, photo watermark, automatic sync, device name, an extra CA certificate
//! for an on-premises HTTPS server), replaced atomically,
//! and the session, which goes through the platform's [`SecureStorage`] instead of the JSON file.
//! A `device.json` written by an older build (session inside) is still read; the next save moves
//! the session out.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shikong_sync_client::{Session, SyncClient};

use crate::i18n::Lang;
use crate::platform::SecureStorage;
use crate::{AppError, Device};

/// The secure-storage key of the session.
const SESSION_KEY: &str = "session";

/// A saved place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Favourite {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
}

/// The device's settings (`device.json`, plus the session from secure storage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The signed-in user. Read from `device.json` when an older build wrote it there; saved to
    /// secure storage only.
    #[serde(skip_serializing)]
    pub session: Option<Session>,
    pub lang: Lang,
    pub favourites: Vec<Favourite>,
    /// File stem of the replica the map shows.
    pub active: Option<String>,
    /// Draw capture time, position, heading and hash onto evidence photos.
    pub watermark: bool,
    pub auto_sync: bool,
    /// Device name sent at enrolment.
    pub device_name: String,
    /// An extra CA certificate (PEM) trusted besides the system's roots, for a server whose
    /// HTTPS certificate an on-premises CA signed. Public data, so it lives in `device.json`.
    pub ca_cert: Option<String>,
}

impl Settings {
    /// The settings of a new device.
    pub fn first_start() -> Settings {
        Settings { device_name: "shikong-mobile".into(), watermark: true, auto_sync: true, ..Settings::default() }
    }

    /// Reads `DIR/device.json` (first-start settings when there is none) and the session.
    pub(crate) fn load(dir: &Path, secrets: &dyn SecureStorage) -> Result<Settings, AppError> {
        let path = dir.join("device.json");
        let mut settings = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| AppError::Corrupt { path, reason: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::first_start(),
            Err(e) => return Err(AppError::Io { path, source: e }),
        };
        if let Some(bytes) = secrets.get(SESSION_KEY)? {
            let session = serde_json::from_slice(&bytes)
                .map_err(|e| AppError::SecureStorage { key: SESSION_KEY.into(), reason: e.to_string() })?;
            settings.session = Some(session);
        }
        Ok(settings)
    }
}

/// Writes `path` through a temporary file and a rename: readers see the old or the new file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(AppError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(AppError::io(path))
}

impl Device {
    /// Saves the settings: `device.json` and the session in secure storage.
    pub fn save(&self) -> Result<(), AppError> {
        match &self.settings.session {
            Some(s) => {
                let bytes = serde_json::to_vec(s)
                    .map_err(|e| AppError::SecureStorage { key: SESSION_KEY.into(), reason: e.to_string() })?;
                self.secrets.set(SESSION_KEY, &bytes)?;
            }
            None => self.secrets.remove(SESSION_KEY)?,
        }
        let path = self.dir.join("device.json");
        let bytes = serde_json::to_vec_pretty(&self.settings)
            .map_err(|e| AppError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        write_atomic(&path, &bytes)
    }

    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    pub fn set_lang(&mut self, lang: Lang) -> Result<(), AppError> {
        self.settings.lang = lang;
        self.save()
    }

    pub fn set_watermark(&mut self, on: bool) -> Result<(), AppError> {
        self.settings.watermark = on;
        self.save()
    }

    /// Trusts the CA certificate `pem` (PEM text) besides the system's roots for every server
    /// request; `None` or blank text removes it. A text that holds no certificate is refused.
    pub fn set_ca_cert(&mut self, pem: Option<&str>) -> Result<(), AppError> {
        let pem = pem.map(str::trim).filter(|p| !p.is_empty());
        if let Some(p) = pem {
            shikong_sync_client::check_ca_pem(p.as_bytes()).map_err(|e| AppError::input("ca_cert", e.to_string()))?;
        }
        self.settings.ca_cert = pem.map(|p| format!("{p}\n"));
        self.save()
    }

    /// A client for `server` with `token` that trusts the device's extra CA (if set).
    pub(crate) fn client_for(&self, server: &str, token: &str) -> Result<SyncClient, AppError> {
        let ca = self.settings.ca_cert.as_deref().map(str::as_bytes);
        Ok(SyncClient::with_ca(server, token, ca)?)
    }

    pub fn set_auto_sync(&mut self, on: bool) -> Result<(), AppError> {
        self.settings.auto_sync = on;
        self.save()
    }

    /// Saves a place under `name` (replacing one of the same name).
    pub fn add_favourite(&mut self, name: &str, lon: f64, lat: f64) -> Result<(), AppError> {
        self.settings.favourites.retain(|f| f.name != name);
        self.settings.favourites.push(Favourite { name: name.to_owned(), lon, lat });
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn a_new_device_starts_with_defaults() {
        let (_dir, d) = testkit::device();
        assert_eq!(d.settings, Settings::first_start());
        assert_eq!(d.lang(), Lang::Zh);
        assert!(d.state().settings.watermark);
    }

    #[test]
    fn settings_persist_across_restarts() {
        let (dir, mut d) = testkit::device();
        assert!(d.set_lang(Lang::En).is_ok());
        assert!(d.set_watermark(false).is_ok());
        assert!(d.set_auto_sync(false).is_ok());
        assert!(d.add_favourite("东门", 114.3, 30.5).is_ok());
        assert!(d.add_favourite("东门", 114.4, 30.6).is_ok(), "same name replaces");
        let again = testkit::reopen(dir.path());
        assert_eq!(again.settings.lang, Lang::En);
        assert!(!again.settings.watermark && !again.settings.auto_sync);
        assert_eq!(again.settings.favourites, [Favourite { name: "东门".into(), lon: 114.4, lat: 30.6 }]);
        assert_eq!(again.state().settings.favourites.len(), 1, "the views see them");
    }

    #[test]
    fn the_session_is_kept_out_of_device_json() {
        let (dir, mut d) = testkit::device();
        d.settings.session = Some(testkit::session("http://127.0.0.1:9"));
        assert!(d.save().is_ok());
        let json = std::fs::read_to_string(dir.path().join("device.json")).unwrap_or_default();
        assert!(!json.contains("secret-token") && !json.contains("session"), "{json}");
        let again = testkit::reopen(dir.path());
        assert_eq!(again.settings.session.map(|s| s.token), Some("secret-token".to_owned()));
    }

    #[test]
    fn an_older_device_json_with_the_session_is_read() {
        let dir = tempfile::tempdir().ok();
        let path = dir.as_ref().map(|d| d.path().to_owned()).unwrap_or_default();
        let written = std::fs::write(
            path.join("device.json"),
            r#"{"session": {"server": "http://127.0.0.1:9", "token": "t", "username": "张三", "role": "inspector", "expires_at": ""}}"#,
        );
        assert!(written.is_ok());
        let d = testkit::reopen(&path);
        assert_eq!(d.session().map(|s| s.username.as_str()), Some("张三"));
        assert!(!d.settings.watermark, "fields an old file leaves out take their type's default");
    }

    #[test]
    fn an_extra_ca_certificate_is_checked_and_kept() {
        let (dir, mut d) = testkit::device();
        let e = d.set_ca_cert(Some("not a certificate")).err();
        assert!(matches!(&e, Some(AppError::Input { field, .. }) if field == "ca_cert"), "{e:?}");
        assert_eq!(d.settings.ca_cert, None);
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .and_then(|p| rcgen::KeyPair::generate().and_then(|k| p.self_signed(&k)))
            .map(|c| c.pem())
            .unwrap_or_default();
        assert!(d.set_ca_cert(Some(&ca)).is_ok());
        assert!(d.client_for("https://127.0.0.1:9", "").is_ok());
        let again = testkit::reopen(dir.path());
        assert_eq!(again.settings.ca_cert.as_deref().map(str::trim), Some(ca.trim()));
        assert!(d.set_ca_cert(Some("  ")).is_ok());
        assert_eq!(testkit::reopen(dir.path()).settings.ca_cert, None, "blank text removes it");
    }

    #[test]
    fn a_damaged_device_json_is_named() {
        let dir = tempfile::tempdir().ok();
        let path = dir.as_ref().map(|d| d.path().to_owned()).unwrap_or_default();
        assert!(std::fs::write(path.join("device.json"), "{").is_ok());
        let e = testkit::try_open(&path).err();
        assert!(matches!(&e, Some(AppError::Corrupt { path, .. }) if path.ends_with("device.json")), "{e:?}");
    }
}
