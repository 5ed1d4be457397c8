//! The device: the app's data folder, its platform services and its settings — the one value every
//! effect of the core is a method of. The methods live beside their responsibility (`session`,
//! `areas`, `collect`, `sync`, `reports`, `conflicts`, `settings`); this file only opens the
//! device and holds the parts.
//!
//! On disk, in the app's data folder: `device.json` (language, favourites, settings),
//! `secrets/` (the session token, through [`SecureStorage`]), `replicas/NAME.gpkg` (the offline
//! replicas — the sync guarantees are the replica's) and `replicas/NAME.mbtiles` (its offline
//! basemap), `reports.json` + `report-photos/` (citizens' reports queued while offline).
//! `device.json` and `reports.json` are replaced atomically (write then rename), so killing the
//! app never leaves half a file.
//!
//! Every method is blocking (file and network I/O): the views run them off the render path and
//! render [`AppState`], the in-memory picture the effects keep up to date.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::AppError;
use crate::platform::{Camera, FileSecrets, LocationSource, Network, SecureStorage};
use crate::settings::Settings;
use crate::state::{AppState, Cached};

/// The device: settings, folders and platform services. Clones share the in-memory state, so a
/// sync run on a clone (without holding the views' lock) updates what the views show.
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) dir: PathBuf,
    pub settings: Settings,
    pub location: Arc<dyn LocationSource>,
    pub camera: Arc<dyn Camera>,
    pub network: Arc<dyn Network>,
    pub secrets: Arc<dyn SecureStorage>,
    pub(crate) cache: Arc<RwLock<Cached>>,
}

impl Device {
    /// Opens (creating) the app's data folder; secrets are kept in its `secrets/` folder.
    pub fn open(
        dir: impl Into<PathBuf>,
        location: Arc<dyn LocationSource>,
        camera: Arc<dyn Camera>,
        network: Arc<dyn Network>,
    ) -> Result<Device, AppError> {
        let dir = dir.into();
        let secrets = Arc::new(FileSecrets::new(dir.join("secrets")));
        Device::open_with_secrets(dir, location, camera, network, secrets)
    }

    /// Opens (creating) the app's data folder with the platform's secure storage; reads the
    /// settings, the session and what the first screens show (the offline areas, queued reports).
    pub fn open_with_secrets(
        dir: impl Into<PathBuf>,
        location: Arc<dyn LocationSource>,
        camera: Arc<dyn Camera>,
        network: Arc<dyn Network>,
        secrets: Arc<dyn SecureStorage>,
    ) -> Result<Device, AppError> {
        let dir = dir.into();
        let replicas = dir.join("replicas");
        std::fs::create_dir_all(&replicas).map_err(AppError::io(&replicas))?;
        let settings = Settings::load(&dir, secrets.as_ref())?;
        let device = Device { dir, settings, location, camera, network, secrets, cache: Arc::default() };
        device.refresh_all();
        Ok(device)
    }

    /// The app's data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the views show now: settings, offline areas, the open area's details, queued
    /// reports. Memory only; the effects keep it up to date.
    pub fn state(&self) -> AppState {
        let cached = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        AppState {
            settings: self.settings.clone(),
            areas: cached.areas,
            active: cached.active,
            reports: cached.reports,
            location_label: self.location.describe(),
            camera_label: self.camera.describe(),
        }
    }
}
