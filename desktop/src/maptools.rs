//! The map tools' commands (issue 16, "Map"): geodesic measurement, the pointer's coordinates
//! in CGCS2000 lon/lat and Gauss-Krüger metres, locating an address through the server's
//! geocoder, bookmarks, offline basemap packages (GCJ-02 ones moved into place) and the language.
//!
//! The numbers come from the app core ([`shikong_app_core::maptools`]) and, for the
//! Gauss-Krüger readout, from `shikong-crs` (PROJ): the desktop links PROJ, the mobile app does
//! not, so the projection is done here rather than in the core.
//!
//! **Gauss-Krüger convention shown**: CGCS2000 3° zones with the zone number in the false
//! easting (EPSG:4513–4533, e.g. 114.34°E → zone 38, EPSG:4526, easting 38 5xx xxx m), and the
//! Chinese surveying labels X = northing, Y = easting.

use serde::Serialize;
use shikong_app_core::Place;
use shikong_app_core::i18n::Lang;
use shikong_app_core::maptools::{BasemapPackage, Bookmark, PathMeasure, measure_path};
use shikong_crs::{Crs, ZoneWidth};
use shikong_geodesy::GkZone;
use shikong_model::Coord;
use shikong_protocol::api::{GeocodeResponse, MatchLevel};
use tauri::State;

use crate::commands::{Doing, Shell, blocking};
use crate::connectivity::on_server;

/// The pointer's position as the status line shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readout {
    /// CGCS2000 longitude and latitude, degrees.
    pub lon: f64,
    pub lat: f64,
    /// `None` outside the CGCS2000 3° zones (73.5°–136.5°E).
    pub gk: Option<GkReadout>,
}

/// A point in a CGCS2000 3° Gauss-Krüger zone, the zone number in the easting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GkReadout {
    pub zone: u32,
    pub central_meridian: f64,
    pub epsg: u32,
    /// X, metres north of the equator.
    pub northing: f64,
    /// Y, metres: zone × 1 000 000 + 500 000 + the distance east of the central meridian.
    pub easting: f64,
}

/// The Gauss-Krüger coordinates of `lon, lat` (CGCS2000) in their 3° zone, zone-prefixed.
pub fn gauss_kruger(lon: f64, lat: f64) -> Result<Option<GkReadout>, shikong_crs::CrsError> {
    // Outside the zones (73.5°–136.5°E) there is no readout, which is no error.
    let Ok(zone) = GkZone::from_longitude(lon, ZoneWidth::Three) else { return Ok(None) };
    let zone_crs = Crs::Epsg(zone.epsg(true));
    let c = shikong_crs::with_transform(Crs::CGCS2000, zone_crs, |t| t.convert(Coord::xy(lon, lat)))??;
    Ok(Some(GkReadout {
        zone: zone.number,
        central_meridian: zone.central_meridian(),
        epsg: zone_crs.epsg().unwrap_or_default(),
        northing: c.y,
        easting: c.x,
    }))
}

/// The pointer's readout (the view throttles its calls: one in flight, the latest position next).
#[tauri::command]
pub async fn pointer_coords(lon: f64, lat: f64) -> Result<Readout, String> {
    if !lon.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(format!("not a position: {lon}, {lat}"));
    }
    tauri::async_runtime::spawn_blocking(move || {
        gauss_kruger(lon, lat).map(|gk| Readout { lon, lat, gk }).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("内部错误 / internal error: {e}"))?
}

/// Geodesic length (and area, closed) of the path through `points` ([lon, lat], CGCS2000).
#[tauri::command]
pub fn measure(points: Vec<[f64; 2]>, area: bool) -> Result<PathMeasure, String> {
    measure_path(&points, area).map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn bookmarks(shell: State<'_, Shell>) -> Result<Vec<Bookmark>, String> {
    Ok(blocking(&shell, Doing::Read, |d| d.bookmarks()).await?.1)
}

#[tauri::command]
pub async fn save_bookmark(shell: State<'_, Shell>, bookmark: Bookmark) -> Result<Vec<Bookmark>, String> {
    Ok(blocking(&shell, Doing::Write, move |d| d.save_bookmark(bookmark)).await?.1)
}

#[tauri::command]
pub async fn delete_bookmark(shell: State<'_, Shell>, name: String) -> Result<Vec<Bookmark>, String> {
    Ok(blocking(&shell, Doing::Write, move |d| d.delete_bookmark(&name)).await?.1)
}

/// The best match of an address on the server's geocoder.
#[tauri::command]
pub async fn geocode(shell: State<'_, Shell>, q: String) -> Result<GeocodeResponse, String> {
    on_server(&shell, Doing::Read, move |d| Ok(d.server_client()?.geocode(&q)?)).await
}

/// A place the search box offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggested {
    pub name: String,
    pub standard_address: String,
    pub level: MatchLevel,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

impl From<Place> for Suggested {
    fn from(p: Place) -> Self {
        Suggested { name: p.name, standard_address: p.standard_address, level: p.level, lon: p.lon, lat: p.lat }
    }
}

/// Places whose name or pinyin starts with `q` (the search box's list).
#[tauri::command]
pub async fn geocode_suggest(shell: State<'_, Shell>, q: String) -> Result<Vec<Suggested>, String> {
    if q.trim().is_empty() {
        return Ok(Vec::new());
    }
    let places = on_server(&shell, Doing::Read, move |d| Ok(d.server_client()?.suggest(q.trim(), 8)?)).await?;
    Ok(places.into_iter().map(Suggested::from).collect())
}

/// The offline basemap packages in the data folder.
#[tauri::command]
pub async fn basemaps(shell: State<'_, Shell>) -> Result<Vec<BasemapPackage>, String> {
    Ok(blocking(&shell, Doing::Read, |d| Ok(d.basemap_packages())).await?.1)
}

/// A tile of an offline package, as bytes (empty where the package has none: MapLibre draws
/// nothing there).
#[tauri::command]
pub async fn basemap_tile(
    shell: State<'_, Shell>,
    id: String,
    z: u8,
    x: u32,
    y: u32,
) -> Result<tauri::ipc::Response, String> {
    let tile = blocking(&shell, Doing::Read, move |d| d.basemap_tile(&id, z, x, y)).await?.1;
    Ok(tauri::ipc::Response::new(tile.map(|t| t.bytes).unwrap_or_default()))
}

/// The interface language: `zh` or `en`.
#[tauri::command]
pub fn lang(shell: State<'_, Shell>) -> &'static str {
    match shell.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner).settings.lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// Sets the interface language (kept in `device.json`; the Rust side's messages follow it).
#[tauri::command]
pub async fn set_lang(shell: State<'_, Shell>, lang: String) -> Result<(), String> {
    let lang = match lang.as_str() {
        "zh" | "zh-CN" => Lang::Zh,
        "en" => Lang::En,
        other => return Err(format!("unknown language `{other}` (zh, en)")),
    };
    let (device, ()) = blocking(&shell, Doing::Write, move |d| d.set_lang(lang)).await?;
    shell.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner).settings.lang = device.settings.lang;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meridian arc length from the equator to `lat` on CGCS2000 (Helmert's series, to the
    /// sixth power of n): the northing of a point on a central meridian, independent of PROJ.
    fn meridian_arc(lat: f64) -> f64 {
        let (a, f) = (6_378_137.0_f64, 1.0 / 298.257_222_101);
        let n = f / (2.0 - f);
        let phi = lat.to_radians();
        let a0 = a / (1.0 + n) * (1.0 + n.powi(2) / 4.0 + n.powi(4) / 64.0);
        let c2 = -3.0 / 2.0 * n + 9.0 / 16.0 * n.powi(3);
        let c4 = 15.0 / 16.0 * n.powi(2) - 15.0 / 32.0 * n.powi(4);
        let c6 = -35.0 / 48.0 * n.powi(3);
        let c8 = 315.0 / 512.0 * n.powi(4);
        a0 * (phi + c2 * (2.0 * phi).sin() + c4 * (4.0 * phi).sin() + c6 * (6.0 * phi).sin() + c8 * (8.0 * phi).sin())
    }

    #[test]
    fn gauss_kruger_zone_38_with_the_zone_prefix() {
        // 114.34°E is in 3° zone 38 (CM 114°E): EPSG:4526, false easting 38 500 000 m.
        let g = gauss_kruger(114.34, 30.5).unwrap().unwrap();
        assert_eq!((g.zone, g.central_meridian, g.epsg), (38, 114.0, 4526));
        assert!((g.easting - 38_532_600.0).abs() < 1_000.0, "{g:?}");
        // On the central meridian: easting exactly the false easting, northing the meridian arc.
        let c = gauss_kruger(114.0, 30.5).unwrap().unwrap();
        assert!((c.easting - 38_500_000.0).abs() < 1e-6, "{c:?}");
        assert!((c.northing - meridian_arc(30.5)).abs() < 1e-3, "{c:?} vs {}", meridian_arc(30.5));
        // Symmetric about the central meridian.
        let w = gauss_kruger(113.66, 30.5).unwrap().unwrap();
        assert!((w.easting - 38_500_000.0 + (g.easting - 38_500_000.0)).abs() < 1e-3, "{w:?} {g:?}");
        assert!((w.northing - g.northing).abs() < 1e-3);
        // The planar distance matches the geodesic one times the zone's scale (≈ 1 + y²/2R²).
        let d = measure_path(&[[114.0, 30.5], [114.34, 30.5]], false).unwrap().length_m;
        let planar = (g.easting - c.easting).hypot(g.northing - c.northing);
        assert!((planar / d - 1.0).abs() < 2e-5, "{planar} vs {d}");
        // Outside the zones: no Gauss-Krüger readout, not an error.
        assert_eq!(gauss_kruger(10.0, 50.0).unwrap(), None);
    }

    #[test]
    fn the_zone_boundary_goes_east() {
        assert_eq!(gauss_kruger(115.5, 30.0).unwrap().map(|g| g.zone), Some(39));
        assert_eq!(gauss_kruger(115.4999, 30.0).unwrap().map(|g| g.zone), Some(38));
    }
}
