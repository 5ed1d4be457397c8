//! Offline areas: choosing one (a division found in the server's gazetteer, or a rectangle of the
//! map), estimating it, downloading its replica and basemap, listing, opening and deleting the
//! areas on the device. An area is two files in `replicas/`: `NAME.gpkg` (the replica) and
//! `NAME.mbtiles` (its basemap, optional).

use std::path::PathBuf;

use serde_json::json;
use shikong_protocol::api::FeatureArea;
use shikong_replica::Replica;
use shikong_sync_client::{LayerEntry, PackageArea, Place, ReplicaEstimate, SyncError};

use crate::{AppError, Device};

/// Basemap layers downloaded with every offline area (vector tiles of the store's base layers).
pub const BASEMAP_SET: &str = "road,poi";
pub const BASEMAP_ZOOMS: (u8, u8) = (12, 16);

/// A replica on this device, as the list of offline areas shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSummary {
    /// File stem, unique on the device.
    pub id: String,
    pub name: String,
    pub path: PathBuf,
    /// Where its basemap is (or would be: see `basemap_bytes`).
    pub basemap_path: PathBuf,
    pub area: Option<String>,
    /// `(layer, title, features)`.
    pub layers: Vec<(String, String, u64)>,
    pub pending: u64,
    pub unconfirmed_photos: usize,
    pub conflicts: usize,
    pub bytes: u64,
    pub basemap_bytes: Option<u64>,
}

impl ReplicaSummary {
    /// Features in all its layers.
    pub fn features(&self) -> u64 {
        self.layers.iter().map(|l| l.2).sum()
    }
}

/// The area of a new offline replica.
#[derive(Debug, Clone, PartialEq)]
pub enum AreaChoice {
    /// A division by code (`420111`), with its name for the label and its centre (used when
    /// the server holds no boundary polygon for it: see [`AreaChoice::fallback`]).
    Division { code: String, name: String, centre: Option<(f64, f64)> },
    /// A lon/lat rectangle (the map view or a drawn box).
    Rect { min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64 },
}

impl AreaChoice {
    /// A division the server's gazetteer offered.
    pub fn from_place(p: &Place) -> AreaChoice {
        AreaChoice::Division {
            code: p.code.clone().unwrap_or_default(),
            name: p.name.clone(),
            centre: p.lon.zip(p.lat),
        }
    }

    /// What a phone screen shows around `(lon, lat)` at `zoom`: half the visible span on a
    /// ~400 px wide screen each way.
    pub fn map_view(lon: f64, lat: f64, zoom: f64) -> AreaChoice {
        let half = 360.0 / 2f64.powf(zoom) * 400.0 / 256.0 / 2.0;
        AreaChoice::Rect {
            min_lon: lon - half,
            min_lat: lat - half * 0.8,
            max_lon: lon + half,
            max_lat: lat + half * 0.8,
        }
    }

    /// The replica request's `area`.
    pub fn wire(&self) -> String {
        match self {
            AreaChoice::Division { code, .. } => format!("admin:{code}"),
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => format!(
                "POLYGON(({min_lon} {min_lat},{max_lon} {min_lat},{max_lon} {max_lat},{min_lon} {max_lat},{min_lon} {min_lat}))"
            ),
        }
    }

    /// A division without a boundary on the server becomes a 10 km × 9 km box around its centre
    /// (what a day's inspection round covers); the label says so.
    pub fn fallback(&self) -> Option<AreaChoice> {
        match self {
            AreaChoice::Division { centre: Some((lon, lat)), .. } => Some(AreaChoice::Rect {
                min_lon: lon - 0.052,
                min_lat: lat - 0.04,
                max_lon: lon + 0.052,
                max_lat: lat + 0.04,
            }),
            _ => None,
        }
    }

    /// The tile package's `area`.
    fn package(&self) -> PackageArea {
        match self {
            AreaChoice::Division { code, .. } => {
                PackageArea::Feature(FeatureArea { layer: "division".into(), feature: code.clone() })
            }
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => {
                PackageArea::Geometry(json!({"type": "Polygon", "coordinates": [[
                [min_lon, min_lat], [max_lon, min_lat], [max_lon, max_lat], [min_lon, max_lat], [min_lon, min_lat]]]}))
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            AreaChoice::Division { name, code, .. } => format!("{name} ({code})"),
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => {
                format!("{min_lon:.4},{min_lat:.4} – {max_lon:.4},{max_lat:.4}")
            }
        }
    }

    /// The name a downloaded area gets.
    pub fn default_name(&self) -> String {
        match self {
            AreaChoice::Division { name, .. } => name.clone(),
            AreaChoice::Rect { .. } => "地图范围".to_owned(),
        }
    }
}

/// Steps of an offline-area download, for the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadStep {
    Replica,
    Basemap,
    Done,
}

/// A file-name-safe stem from a label (keeps Chinese letters; replaces separators).
fn stem(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .chars()
        .take(40)
        .collect();
    if s.is_empty() { "area".into() } else { s }
}

impl Device {
    pub fn replica_path(&self, id: &str) -> PathBuf {
        self.dir.join("replicas").join(format!("{id}.gpkg"))
    }

    pub fn basemap_path(&self, id: &str) -> PathBuf {
        self.dir.join("replicas").join(format!("{id}.mbtiles"))
    }

    /// The areas on the device, read from their files, in file-name order.
    pub fn replicas(&self) -> Result<Vec<ReplicaSummary>, AppError> {
        let folder = self.dir.join("replicas");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(AppError::io(&folder))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gpkg"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            let id = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(self.summary(&id)?);
        }
        Ok(out)
    }

    /// One area, read from its files.
    pub fn summary(&self, id: &str) -> Result<ReplicaSummary, AppError> {
        let r = self.open_replica(id)?;
        self.summarize(id, &r)
    }

    pub(crate) fn summarize(&self, id: &str, r: &Replica) -> Result<ReplicaSummary, AppError> {
        let path = self.replica_path(id);
        let mut layers = Vec::new();
        for l in r.layers() {
            layers.push((l.name.clone(), l.display_name().to_owned(), r.count(&l.name)?));
        }
        let basemap_path = self.basemap_path(id);
        Ok(ReplicaSummary {
            id: id.to_owned(),
            name: r.info().name.clone().unwrap_or_else(|| id.to_owned()),
            area: r.info().area.clone(),
            layers,
            pending: r.pending()?,
            unconfirmed_photos: r.unconfirmed_attachments()?.len(),
            conflicts: r.conflicts()?.len(),
            bytes: std::fs::metadata(&path).map_err(AppError::io(&path))?.len(),
            basemap_bytes: std::fs::metadata(&basemap_path).ok().map(|m| m.len()),
            basemap_path,
            path,
        })
    }

    /// Layers the user may take offline.
    pub fn server_layers(&self) -> Result<Vec<LayerEntry>, AppError> {
        Ok(self.client()?.layers()?)
    }

    /// Divisions (and other places) matching `q`, from the server's gazetteer.
    pub fn search_divisions(&self, q: &str) -> Result<Vec<Place>, AppError> {
        Ok(self.client()?.suggest(q, 8)?.into_iter().filter(|p| p.code.is_some()).collect())
    }

    /// The area the server can cut: the division itself, or its fallback box when the server
    /// has no boundary polygon for it.
    pub fn usable_area(&self, layers: &[String], area: &AreaChoice) -> Result<(AreaChoice, ReplicaEstimate), AppError> {
        let client = self.client()?;
        match client.estimate_replica(layers, Some(&area.wire())) {
            Ok(e) => Ok((area.clone(), e)),
            Err(e) => match (&e, area.fallback()) {
                (SyncError::Server { status: 400, message, .. }, Some(rect)) if message.contains("no boundary") => {
                    let estimate = client.estimate_replica(layers, Some(&rect.wire()))?;
                    Ok((rect, estimate))
                }
                _ => Err(e.into()),
            },
        }
    }

    pub fn estimate(&self, layers: &[String], area: &AreaChoice) -> Result<ReplicaEstimate, AppError> {
        Ok(self.usable_area(layers, area)?.1)
    }

    /// Downloads a replica of `layers` in `area` and its basemap; returns its summary. The first
    /// area downloaded is opened.
    pub fn download(
        &mut self,
        name: &str,
        layers: &[String],
        area: &AreaChoice,
        progress: &mut dyn FnMut(DownloadStep),
    ) -> Result<ReplicaSummary, AppError> {
        if layers.is_empty() {
            return Err(AppError::input("layers", "pick at least one layer"));
        }
        let client = self.client()?;
        let mut id = stem(name);
        let mut n = 2;
        while self.replica_path(&id).exists() {
            id = format!("{}-{n}", stem(name));
            n += 1;
        }
        progress(DownloadStep::Replica);
        let (area, _) = self.usable_area(layers, area)?;
        client.create_replica(layers, Some(&area.wire()), Some(name), &self.replica_path(&id))?;
        progress(DownloadStep::Basemap);
        let (lo, hi) = BASEMAP_ZOOMS;
        if let Err(e) = client.download_basemap(BASEMAP_SET, &area.package(), lo, hi, &self.basemap_path(&id)) {
            // The data is what the inspector needs; a missing basemap is shown, not fatal.
            tracing::warn!("basemap of {id}: {e}");
        }
        if self.settings.active.is_none() {
            self.settings.active = Some(id.clone());
            self.save()?;
        }
        progress(DownloadStep::Done);
        self.refresh_areas();
        self.summary(&id)
    }

    /// Deletes a replica; refuses while it holds unsent edits unless `force`.
    pub fn delete_replica(&mut self, id: &str, force: bool) -> Result<(), AppError> {
        let s = self.summary(id)?;
        if !force && (s.pending > 0 || s.unconfirmed_photos > 0) {
            return Err(AppError::Unsent { area: s.name, pending: s.pending, photos: s.unconfirmed_photos });
        }
        let path = self.replica_path(id);
        std::fs::remove_file(&path).map_err(AppError::io(&path))?;
        let _ = std::fs::remove_file(self.basemap_path(id));
        if self.settings.active.as_deref() == Some(id) {
            self.settings.active = None;
            self.save()?;
        }
        self.refresh_areas();
        Ok(())
    }

    /// Opens an area: the map and the collect, sync and conflict screens show it.
    pub fn set_active(&mut self, id: &str) -> Result<(), AppError> {
        if !self.replica_path(id).exists() {
            return Err(AppError::NoArea { id: id.to_owned() });
        }
        self.settings.active = Some(id.to_owned());
        self.save()?;
        self.refresh_active();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn areas_are_listed_with_their_counts() {
        let (dir, d) = testkit::device();
        assert!(d.state().areas.is_empty());
        testkit::replica(dir.path(), "洪山区", 3);
        testkit::replica(dir.path(), "武昌区", 1);
        let d = testkit::reopen(dir.path());
        let areas = d.state().areas;
        let ids: Vec<&str> = areas.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["武昌区", "洪山区"], "file-name order");
        assert_eq!(areas[1].features(), 3);
        assert_eq!(areas[1].layers[0].1, "井盖");
        assert_eq!((areas[1].pending, areas[1].conflicts, areas[1].basemap_bytes), (0, 0, None));
        assert!(d.state().active.is_none(), "nothing opened yet");
        assert_eq!(d.replicas().ok().map(|l| l.len()), Some(2));
    }

    #[test]
    fn opening_an_area_shows_its_details() {
        let (dir, mut d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 2);
        assert!(matches!(d.set_active("nowhere"), Err(AppError::NoArea { .. })));
        assert!(d.set_active("洪山区").is_ok());
        let active = d.state().active;
        assert_eq!(active.as_ref().map(|a| a.summary.features()), Some(2), "{active:?}");
        assert_eq!(active.map(|a| a.layers.len()), Some(1));
        assert_eq!(testkit::reopen(dir.path()).settings.active.as_deref(), Some("洪山区"), "remembered");
    }

    #[test]
    fn an_area_with_unsent_work_is_not_deleted_by_accident() {
        let (dir, mut d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 2);
        assert!(d.set_active("洪山区").is_ok());
        let form = [("名称".to_owned(), "改名".to_owned()), ("状态".to_owned(), "2".to_owned())].into();
        let edited = d.edit_in_active("manhole", "420111-JG-000001", &form);
        assert!(edited.is_ok(), "{edited:?}");
        assert_eq!(d.state().active.map(|a| a.summary.pending), Some(1), "the edit shows at once");
        let e = d.delete_replica("洪山区", false).err();
        assert!(matches!(e, Some(AppError::Unsent { pending: 1, photos: 0, .. })), "{e:?}");
        assert!(d.delete_replica("洪山区", true).is_ok());
        assert!(d.state().areas.is_empty() && d.state().active.is_none());
        assert!(d.settings.active.is_none());
    }

    #[test]
    fn area_choices() {
        let a = AreaChoice::Division { code: "420111".into(), name: "洪山区".into(), centre: Some((114.3, 30.5)) };
        assert_eq!(a.wire(), "admin:420111");
        assert_eq!(a.label(), "洪山区 (420111)");
        assert!(matches!(a.fallback(), Some(AreaChoice::Rect { min_lon, .. }) if (min_lon - 114.248).abs() < 1e-9));
        let r = AreaChoice::map_view(114.0, 30.0, 15.0);
        assert!(r.wire().starts_with("POLYGON((113.99"), "{}", r.wire());
        assert_eq!(r.default_name(), "地图范围");
        assert_eq!(stem("洪山区 / 巡查"), "洪山区___巡查");
        assert_eq!(stem("///"), "area");
    }

    #[test]
    fn server_actions_need_a_session() {
        let (_dir, d) = testkit::device();
        assert!(matches!(d.server_layers(), Err(AppError::NotSignedIn)));
        assert!(matches!(d.search_divisions("洪山"), Err(AppError::NotSignedIn)));
    }
}
