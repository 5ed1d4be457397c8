//! The desktop map's tools without a UI (issue 16, "Map"): measurement on the CGCS2000 ellipsoid,
//! bookmarks (named views) in the data folder, and offline basemap packages — MBTiles files in
//! the data folder, with GCJ-02 raster packages (tiles cut from Amap/Tencent-style basemaps) moved
//! to where they belong on a CGCS2000/WGS 84 map.
//!
//! Why here: the numbers (a distance, an area, where a GCJ-02 tile's pixel lands) are the app's
//! answers, tested once in Rust; the views only draw them. The Gauss-Krüger readout needs PROJ
//! (`shikong-crs`), which the mobile app must not link, so it lives in the desktop shell.
//!
//! # GCJ-02 tiles
//! A GCJ-02 basemap draws the point P at GCJ(P). For the Web Mercator tile `(z, x, y)` the
//! map asks for, pixel `p` must therefore show the source pixel at `p + d`, where `d` is
//! `pixel(GCJ(P)) − pixel(P)` at zoom `z`. `d` varies slowly (the offset's steepest terms have a
//! period of 1/3° with an amplitude of about 13 m, a gradient below 0.003), so one `d` per tile,
//! taken at the tile's centre, is right to within 0.7 px anywhere on a 256-px tile at every zoom;
//! rounding it to whole pixels adds 0.5 px. The tile is then cut from the (up to four) source
//! tiles the shifted window covers ([`shifted_tile`]). The code is `shikong_tiles::gcj02`, shared
//! with the tile server, which serves raster sets imported as GCJ-02 cut into place the same way.
//!
//! # Files
//! `bookmarks.json` (replaced atomically) and `basemaps/*.mbtiles` in the data folder; offline
//! areas' own `replicas/*.mbtiles` are listed too. A package is GCJ-02 when its MBTiles metadata
//! says `crs` = `GCJ02` (not in the MBTiles spec, which assumes Web Mercator on WGS 84) or its
//! file name ends in `.gcj02.mbtiles`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shikong_model::{Coord, Geometry};

use crate::settings::write_atomic;
use crate::{AppError, Device};

/// Tile size of raster packages, pixels.
pub const TILE: u32 = 256;
/// Longest bookmark name, characters.
pub const MAX_BOOKMARK_NAME: usize = 60;

// ---------------------------------------------------------------------------------------------
// Measurement

/// A measured path: the length of each segment and in total, and, for a closed shape, its
/// area and perimeter (geodesic edges, on CGCS2000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathMeasure {
    pub segments_m: Vec<f64>,
    pub length_m: f64,
    /// `Some` for an area measurement with at least three points.
    pub area_m2: Option<f64>,
    pub perimeter_m: Option<f64>,
}

/// Measures the path through `points` (lon, lat in CGCS2000 degrees) on the CGCS2000 ellipsoid;
/// `area`: also the polygon they enclose (closed back to the first point).
pub fn measure_path(points: &[[f64; 2]], area: bool) -> Result<PathMeasure, AppError> {
    let coords: Vec<Coord> = points.iter().map(|p| Coord::xy(p[0], p[1])).collect();
    let bad = |e: shikong_geodesy::GeodesyError| AppError::input("points", e.to_string());
    let segments_m = coords
        .windows(2)
        .map(|w| shikong_geodesy::distance(&w[0], &w[1]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let length_m = segments_m.iter().sum();
    let (area_m2, perimeter_m) = if area && coords.len() >= 3 {
        let mut ring = coords.clone();
        ring.push(coords[0]);
        let m = shikong_geodesy::measure_geodesic(&Geometry::Polygon(vec![ring])).map_err(bad)?;
        (Some(m.area_m2), Some(m.perimeter_m))
    } else {
        (None, None)
    };
    Ok(PathMeasure { segments_m, length_m, area_m2, perimeter_m })
}

// ---------------------------------------------------------------------------------------------
// Bookmarks

/// A named view of the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    pub zoom: f64,
    #[serde(default)]
    pub bearing: f64,
    #[serde(default)]
    pub pitch: f64,
}

impl Bookmark {
    /// The bookmark with its name trimmed, or the reason it is refused.
    fn checked(mut self) -> Result<Bookmark, AppError> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return Err(AppError::input("name", "a bookmark needs a name"));
        }
        let chars = self.name.chars().count();
        if chars > MAX_BOOKMARK_NAME {
            return Err(AppError::input("name", format!("{chars} characters; at most {MAX_BOOKMARK_NAME}")));
        }
        let ok = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        for (field, v, lo, hi) in [
            ("lon", self.lon, -180.0, 180.0),
            ("lat", self.lat, -90.0, 90.0),
            ("zoom", self.zoom, 0.0, 24.0),
            ("bearing", self.bearing, -360.0, 360.0),
            ("pitch", self.pitch, 0.0, 85.0),
        ] {
            if !ok(v, lo, hi) {
                return Err(AppError::input(field, format!("{v} is outside {lo}–{hi}")));
            }
        }
        Ok(self)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BookmarkFile {
    bookmarks: Vec<Bookmark>,
}

impl Device {
    fn bookmarks_path(&self) -> PathBuf {
        self.dir.join("bookmarks.json")
    }

    /// The saved views, in the order they were saved.
    pub fn bookmarks(&self) -> Result<Vec<Bookmark>, AppError> {
        let path = self.bookmarks_path();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<BookmarkFile>(&b)
                .map(|f| f.bookmarks)
                .map_err(|e| AppError::Corrupt { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(AppError::Io { path, source: e }),
        }
    }

    fn write_bookmarks(&self, bookmarks: Vec<Bookmark>) -> Result<Vec<Bookmark>, AppError> {
        let path = self.bookmarks_path();
        let file = BookmarkFile { bookmarks };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| AppError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        write_atomic(&path, &bytes)?;
        Ok(file.bookmarks)
    }

    /// Saves a view (replacing one of the same name, in its place); returns the list.
    pub fn save_bookmark(&self, bookmark: Bookmark) -> Result<Vec<Bookmark>, AppError> {
        let b = bookmark.checked()?;
        let mut list = self.bookmarks()?;
        match list.iter_mut().find(|x| x.name == b.name) {
            Some(x) => *x = b,
            None => list.push(b),
        }
        self.write_bookmarks(list)
    }

    /// Removes the view named `name` (nothing when there is none); returns the list.
    pub fn delete_bookmark(&self, name: &str) -> Result<Vec<Bookmark>, AppError> {
        let mut list = self.bookmarks()?;
        list.retain(|b| b.name != name.trim());
        self.write_bookmarks(list)
    }
}

// ---------------------------------------------------------------------------------------------
// GCJ-02 tiles

/// Global pixel position of `lon, lat` at zoom `z` (Web Mercator, 256-px tiles).
#[cfg(test)]
fn pixel(lon: f64, lat: f64, z: u8) -> (f64, f64) {
    let size = f64::from(TILE) * 2f64.powi(i32::from(z));
    let x = (lon + 180.0) / 360.0 * size;
    let s = lat.to_radians().sin().clamp(-0.9999, 0.9999);
    let y = (0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * std::f64::consts::PI)) * size;
    (x, y)
}

/// Longitude/latitude of a global pixel position at zoom `z`.
#[cfg(test)]
fn unpixel(x: f64, y: f64, z: u8) -> (f64, f64) {
    let size = f64::from(TILE) * 2f64.powi(i32::from(z));
    let lon = x / size * 360.0 - 180.0;
    let n = std::f64::consts::PI * (1.0 - 2.0 * y / size);
    (lon, n.sinh().atan().to_degrees())
}

/// Where the GCJ-02 basemap draws what belongs at the centre of tile `(z, x, y)`: the shift
/// `pixel(GCJ(P)) − pixel(P)` in pixels at zoom `z` (see the module docs). Zero outside China.
/// The tile server's GCJ-02 raster sets use the same code (`shikong_tiles::gcj02`).
pub fn gcj02_tile_shift(z: u8, x: u32, y: u32) -> (f64, f64) {
    shikong_tiles::gcj02::gcj02_tile_shift(
        shikong_tiles::TileMatrixSet::WebMercatorQuad,
        shikong_tiles::TileId { z, x, y },
    )
}

/// The tile `(z, x, y)` of a CGCS2000/WGS 84 map cut out of a GCJ-02 raster basemap: the window
/// shifted by [`gcj02_tile_shift`], from the source tiles `source(z, x, y)` gives (encoded images;
/// `None` where the package has none, left transparent). Returns a PNG, or `None` when no source
/// tile covers the window.
pub fn shifted_tile(
    z: u8,
    x: u32,
    y: u32,
    mut source: impl FnMut(u8, u32, u32) -> Result<Option<Vec<u8>>, AppError>,
) -> Result<Option<Vec<u8>>, AppError> {
    shikong_tiles::gcj02::gcj02_tile(
        shikong_tiles::TileMatrixSet::WebMercatorQuad,
        shikong_tiles::TileId { z, x, y },
        shikong_tiles::gcj02::CutFormat::Png,
        |t| source(t.z, t.x, t.y),
    )
}

impl From<shikong_tiles::TileError> for AppError {
    fn from(e: shikong_tiles::TileError) -> Self {
        match e {
            shikong_tiles::TileError::Image { tile, reason } => {
                AppError::Image { name: format!("tile {tile}"), reason }
            }
            other => AppError::Image { name: "tile".into(), reason: other.to_string() },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Offline basemap packages

/// An MBTiles file the map can show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasemapPackage {
    /// File stem, the id the map asks tiles by (`basemaps/NAME.mbtiles`, or
    /// `replica:NAME` for an offline area's package).
    pub id: String,
    pub title: String,
    /// `png`, `jpg`, `webp` (raster) or `pbf` (vector tiles).
    pub format: String,
    /// `EPSG:3857` (the MBTiles default) or `GCJ02`.
    pub crs: String,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// West, south, east, north (as the package declares them).
    pub bounds: Option<[f64; 4]>,
    /// Vector packages: the layer ids inside (from the `json` metadata).
    pub vector_layers: Vec<String>,
}

impl BasemapPackage {
    pub fn is_raster(&self) -> bool {
        self.format != "pbf"
    }
}

/// A tile of a package, ready for the map (vector tiles unzipped).
#[derive(Debug, Clone, PartialEq)]
pub struct PackageTile {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

fn open_mbtiles(path: &Path) -> Result<rusqlite::Connection, AppError> {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| AppError::Corrupt { path: path.to_owned(), reason: e.to_string() })
}

fn read_package(id: String, path: &Path) -> Result<BasemapPackage, AppError> {
    let db = open_mbtiles(path)?;
    let corrupt = |e: rusqlite::Error| AppError::Corrupt { path: path.to_owned(), reason: e.to_string() };
    let mut stmt = db.prepare("SELECT name, value FROM metadata").map_err(corrupt)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(corrupt)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let meta = |k: &str| rows.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_owned());
    let format = meta("format").unwrap_or_else(|| "png".into()).to_ascii_lowercase();
    let file_gcj =
        path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_ascii_lowercase().ends_with(".gcj02.mbtiles"));
    let meta_gcj = meta("crs").is_some_and(|c| c.eq_ignore_ascii_case("gcj02") || c.eq_ignore_ascii_case("gcj-02"));
    let bounds = meta("bounds").and_then(|b| {
        let v: Vec<f64> = b.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        <[f64; 4]>::try_from(v).ok()
    });
    let vector_layers = meta("json")
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .and_then(|j| {
            j.get("vector_layers")?
                .as_array()
                .map(|a| a.iter().filter_map(|l| l.get("id")?.as_str().map(str::to_owned)).collect())
        })
        .unwrap_or_default();
    let zoom = |k: &str, d: u8| meta(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    Ok(BasemapPackage {
        title: meta("name").filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone()),
        id,
        format: if format == "jpeg" { "jpg".into() } else { format },
        crs: if file_gcj || meta_gcj { "GCJ02".into() } else { "EPSG:3857".into() },
        minzoom: zoom("minzoom", 0),
        maxzoom: zoom("maxzoom", 18),
        bounds,
        vector_layers,
    })
}

fn read_tile(db: &rusqlite::Connection, path: &Path, z: u8, x: u32, y: u32) -> Result<Option<Vec<u8>>, AppError> {
    use rusqlite::OptionalExtension as _;
    if z > 30 || u64::from(x) >= 1u64 << z || u64::from(y) >= 1u64 << z {
        return Ok(None);
    }
    // MBTiles rows count from the south (TMS).
    let row = (1u64 << z) - 1 - u64::from(y);
    db.query_row(
        "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
        rusqlite::params![z, x, row],
        |r| r.get::<_, Vec<u8>>(0),
    )
    .optional()
    .map_err(|e| AppError::Corrupt { path: path.to_owned(), reason: e.to_string() })
}

impl Device {
    /// The folder offline basemap packages are copied into.
    pub fn basemaps_dir(&self) -> PathBuf {
        self.dir.join("basemaps")
    }

    fn package_path(&self, id: &str) -> Result<PathBuf, AppError> {
        let (folder, stem) = match id.strip_prefix("replica:") {
            Some(stem) => (self.dir.join("replicas"), stem),
            None => (self.basemaps_dir(), id),
        };
        if stem.is_empty() || stem.contains(['/', '\\']) || stem.starts_with('.') {
            return Err(AppError::input("basemap", format!("`{id}` is not a package name")));
        }
        let path = folder.join(format!("{stem}.mbtiles"));
        if !path.is_file() {
            return Err(AppError::input("basemap", format!("no offline basemap `{id}`")));
        }
        Ok(path)
    }

    /// The offline basemap packages in the data folder (`basemaps/`, then the offline areas'),
    /// by name. A file that is not an MBTiles is skipped with a warning.
    pub fn basemap_packages(&self) -> Vec<BasemapPackage> {
        let mut out = Vec::new();
        for (folder, prefix) in [(self.basemaps_dir(), ""), (self.dir.join("replicas"), "replica:")] {
            let Ok(entries) = std::fs::read_dir(&folder) else { continue };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "mbtiles"))
                .collect();
            files.sort();
            for path in files {
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
                match read_package(format!("{prefix}{stem}"), &path) {
                    Ok(p) => out.push(p),
                    Err(e) => tracing::warn!("basemap package {}: {e}", path.display()),
                }
            }
        }
        out
    }

    /// Tile `(z, x, y)` (XYZ, rows from the north) of the package `id` as the map needs it: a
    /// GCJ-02 raster package's tile is cut from its tiles shifted into place ([`shifted_tile`]).
    pub fn basemap_tile(&self, id: &str, z: u8, x: u32, y: u32) -> Result<Option<PackageTile>, AppError> {
        let path = self.package_path(id)?;
        let package = read_package(id.to_owned(), &path)?;
        let db = open_mbtiles(&path)?;
        if package.is_raster() && package.crs == "GCJ02" {
            let png = shifted_tile(z, x, y, |z, x, y| read_tile(&db, &path, z, x, y))?;
            return Ok(png.map(|bytes| PackageTile { content_type: "image/png", bytes }));
        }
        let Some(bytes) = read_tile(&db, &path, z, x, y)? else { return Ok(None) };
        let content_type = match package.format.as_str() {
            "pbf" => "application/x-protobuf",
            "jpg" => "image/jpeg",
            "webp" => "image/webp",
            _ => "image/png",
        };
        if content_type == "application/x-protobuf" && bytes.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read as _;
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut plain)
                .map_err(|e| AppError::Corrupt { path: path.clone(), reason: format!("tile {z}/{x}/{y}: {e}") })?;
            return Ok(Some(PackageTile { content_type, bytes: plain }));
        }
        Ok(Some(PackageTile { content_type, bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[track_caller]
    fn close(got: f64, expected: f64, tol: f64) {
        assert!((got - expected).abs() <= tol, "got {got}, expected {expected} ± {tol}");
    }

    #[test]
    fn measurement_is_geodesic_on_cgcs2000() {
        // GeographicLib 2.1 on a = 6378137, 1/f = 298.257222101: Wuhan → Beijing.
        let m = measure_path(&[[114.3055, 30.5928], [116.4074, 39.9042]], false).unwrap();
        close(m.length_m, 1_050_528.005_821, 1e-5);
        assert_eq!((m.segments_m.len(), m.area_m2), (1, None));
        // The 0.01° cell of shikong-crs's reference table: 1,064,199.2378878593 m².
        let cell = [[114.3, 30.5], [114.31, 30.5], [114.31, 30.51], [114.3, 30.51]];
        let m = measure_path(&cell, true).unwrap();
        close(m.area_m2.unwrap(), 1_064_199.237_887_859_3, 1e-3);
        close(m.perimeter_m.unwrap(), m.length_m + distance(cell[3], cell[0]), 1e-6);
        assert_eq!(m.segments_m.len(), 3);
        let e = measure_path(&[[114.0, 30.0], [114.0, 95.0]], false).unwrap_err();
        assert!(matches!(&e, AppError::Input { field, .. } if field == "points"), "{e:?}");
        assert_eq!(measure_path(&[[114.0, 30.0]], true).unwrap().length_m, 0.0);
    }

    fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
        shikong_geodesy::distance(&Coord::xy(a[0], a[1]), &Coord::xy(b[0], b[1])).unwrap()
    }

    #[test]
    fn bookmarks_persist_and_are_checked() {
        let (dir, d) = testkit::device();
        assert!(d.bookmarks().unwrap().is_empty());
        let b = |name: &str, zoom: f64| Bookmark {
            name: name.into(),
            lon: 114.36,
            lat: 30.56,
            zoom,
            bearing: 0.0,
            pitch: 0.0,
        };
        d.save_bookmark(b(" 省博 ", 15.0)).unwrap();
        d.save_bookmark(b("光谷", 14.0)).unwrap();
        let list = d.save_bookmark(b("省博", 16.5)).unwrap();
        assert_eq!(
            list.iter().map(|b| (b.name.as_str(), b.zoom)).collect::<Vec<_>>(),
            [("省博", 16.5), ("光谷", 14.0)]
        );
        let again = testkit::reopen(dir.path());
        assert_eq!(again.bookmarks().unwrap(), list, "kept across restarts");
        assert_eq!(again.delete_bookmark("光谷").unwrap().len(), 1);
        for (bad, field) in [(b("  ", 10.0), "name"), (b("x", 30.0), "zoom"), (b(&"长".repeat(61), 10.0), "name")] {
            let e = d.save_bookmark(bad).unwrap_err();
            assert!(matches!(&e, AppError::Input { field: f, .. } if f == field), "{e:?}");
        }
        std::fs::write(dir.path().join("bookmarks.json"), "{").unwrap();
        assert!(matches!(d.bookmarks(), Err(AppError::Corrupt { .. })));
    }

    #[test]
    fn the_gcj02_shift_points_where_the_basemap_draws() {
        // Wuhan, zoom 16: GCJ-02 is ~ 500 m east-south-east-ish; check against the point itself.
        let (lon, lat) = (114.3660, 30.5628);
        let z = 16;
        let (px, py) = pixel(lon, lat, z);
        let (x, y) = ((px / 256.0) as u32, (py / 256.0) as u32);
        let (dx, dy) = gcj02_tile_shift(z, x, y);
        let (g, h) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
        let (gx, gy) = pixel(g, h, z);
        close(dx, gx - px, 0.7);
        close(dy, gy - py, 0.7);
        assert!(dx.hypot(dy) > 100.0, "hundreds of metres at z16 are hundreds of pixels: {dx} {dy}");
        // Outside China: no shift.
        let (ox, oy) = gcj02_tile_shift(3, 0, 0);
        assert!(ox.abs() < 1e-9 && oy.abs() < 1e-9, "{ox} {oy}");
        let (a, b) = unpixel(px, py, z);
        close(a, lon, 1e-9);
        close(b, lat, 1e-9);
    }

    /// A source tile that is transparent but for one red pixel at `(i, j)`.
    fn marker_tile(i: u32, j: u32) -> Vec<u8> {
        let mut img = image::RgbaImage::new(TILE, TILE);
        img.put_pixel(i, j, image::Rgba([255, 0, 0, 255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    /// A GCJ-02 MBTiles of one tile holding a red pixel where GCJ-02 draws `lon, lat` at `z`.
    fn gcj_package(path: &Path, lon: f64, lat: f64, z: u8) {
        let (g, h) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
        let (gx, gy) = pixel(g, h, z);
        let (tx, ty) = ((gx / 256.0) as u32, (gy / 256.0) as u32);
        let tile = marker_tile((gx - f64::from(tx) * 256.0) as u32, (gy - f64::from(ty) * 256.0) as u32);
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
             INSERT INTO metadata VALUES ('name', '高德示例'), ('format', 'png'), ('crs', 'GCJ02'), ('minzoom', '16'), ('maxzoom', '16');",
        )
        .unwrap();
        let row = (1u32 << z) - 1 - ty;
        db.execute("INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)", rusqlite::params![z, tx, row, tile]).unwrap();
    }

    #[test]
    fn vector_packages_of_offline_areas_are_listed_and_unzipped() {
        use std::io::Write as _;
        let (_dir, d) = testkit::device();
        let path = d.dir().join("replicas").join("hongshan.mbtiles");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            r#"CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
             INSERT INTO metadata VALUES ('format', 'pbf'), ('bounds', '114.3,30.5,114.4,30.6'),
               ('json', '{"vector_layers": [{"id": "road"}, {"id": "poi"}]}');"#,
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"vector tile bytes").unwrap();
        db.execute("INSERT INTO tiles VALUES (12, 3348, 2746, ?1)", [gz.finish().unwrap()]).unwrap();
        let list = d.basemap_packages();
        assert_eq!(list.len(), 1);
        let p = &list[0];
        assert_eq!((p.id.as_str(), p.format.as_str(), p.crs.as_str()), ("replica:hongshan", "pbf", "EPSG:3857"));
        assert_eq!(
            (p.vector_layers.clone(), p.bounds),
            (vec!["road".to_owned(), "poi".to_owned()], Some([114.3, 30.5, 114.4, 30.6]))
        );
        // XYZ row 1349 is MBTiles row 4095 − 1349 = 2746.
        let t = d.basemap_tile("replica:hongshan", 12, 3348, 1349).unwrap().unwrap();
        assert_eq!((t.content_type, t.bytes.as_slice()), ("application/x-protobuf", &b"vector tile bytes"[..]));
        assert_eq!(d.basemap_tile("replica:hongshan", 12, 3348, 1350).unwrap(), None);
        assert_eq!(d.basemap_tile("replica:hongshan", 3, 9, 0).unwrap(), None, "outside the zoom's grid");
    }

    #[test]
    fn a_gcj02_package_is_drawn_in_place() {
        let (dir, d) = testkit::device();
        std::fs::create_dir_all(d.basemaps_dir()).unwrap();
        let (lon, lat, z) = (114.3660, 30.5628, 16u8);
        gcj_package(&d.basemaps_dir().join("amap.mbtiles"), lon, lat, z);
        std::fs::write(d.basemaps_dir().join("junk.mbtiles"), "not sqlite").unwrap();
        let list = d.basemap_packages();
        assert_eq!(list.len(), 1, "the damaged file is skipped: {list:?}");
        assert_eq!((list[0].id.as_str(), list[0].title.as_str(), list[0].crs.as_str()), ("amap", "高德示例", "GCJ02"));
        // The red pixel of the source lands where the point is on the map, within a pixel.
        let (px, py) = pixel(lon, lat, z);
        let (x, y) = ((px / 256.0) as u32, (py / 256.0) as u32);
        let mut found = None;
        for (tx, ty) in [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1), (x - 1, y), (x, y - 1), (x - 1, y - 1)] {
            if let Some(t) = d.basemap_tile("amap", z, tx, ty).unwrap() {
                let img = image::load_from_memory(&t.bytes).unwrap().to_rgba8();
                if let Some((i, j, _)) = img.enumerate_pixels().find(|(_, _, p)| p.0[0] == 255 && p.0[3] == 255) {
                    found = Some((f64::from(tx * 256 + i), f64::from(ty * 256 + j)));
                }
            }
        }
        let (fx, fy) = found.expect("the marker is drawn");
        assert!((fx - px.floor()).abs() <= 1.5 && (fy - py.floor()).abs() <= 1.5, "at {fx},{fy}, expected {px},{py}");
        let e = d.basemap_tile("../x", z, 0, 0).unwrap_err();
        assert!(matches!(&e, AppError::Input { field, .. } if field == "basemap"), "{e:?}");
        drop(dir);
    }
}
