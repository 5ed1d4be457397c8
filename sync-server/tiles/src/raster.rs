//! Raster tile sets (imagery, DEM hillshades, scanned historical maps) as time series.
//!
//! A set is a name (`imagery`) with one or more **slices**, each an acquisition at a date: the
//! outline's continuous-snapshot model, where the map at instant T shows the newest acquisition
//! at or before T. Slices are imported from files made by standard tools:
//!
//! - **MBTiles** (`gdal_translate -of MBTILES`, `gdaladdo`, tippecanoe's raster cousins): copied
//!   as they are (`VACUUM INTO`), Web Mercator by the MBTiles specification.
//! - **GeoPackage tile pyramids** (`gdal_translate -of GPKG -co TILING_SCHEME=GoogleMapsCompatible`,
//!   or `InspireCRS84Quad` for the geographic grid): the pyramid must be aligned with one of the
//!   served matrix sets (256-pixel tiles, the set's full extent); its tiles are copied into an
//!   MBTiles-layout file. A `CUSTOM` tiling (GDAL's default) would need resampling, which is
//!   GDAL's job: the error says which option to use.
//!
//! Every slice of a set shares the matrix set, image format and datum, so WMTS and TileJSON
//! describe the set once. Slices live in `DATA/tiles/raster/<set>/<time>.mbtiles`; the registry
//! is a table of `registry.sqlite`.
//!
//! **Datum** ([`RasterCrs`], given at import): tiles cut from Amap/Tencent basemaps are drawn in
//! GCJ-02, 300–600 m off around Wuhan. The file keeps the tiles as imported; the service cuts
//! every tile it serves of such a set into place ([`shikong_tiles::gcj02`], the code the apps'
//! offline GCJ-02 packages use) and keeps the cut tiles in the tile cache (`raster:<set>@<time>`
//! rows of the current class, dropped when the slice is replaced or deleted), so every client —
//! the web map, the apps, WMTS and XYZ clients such as QGIS, offline packages — gets tiles in
//! place without knowing about GCJ-02.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use shikong_model::Bbox;
use shikong_tiles::gcj02::CutFormat;
use shikong_tiles::{TileId, TileMatrixSet};

use crate::cache::CacheKey;
use crate::db::Db;
use crate::error::{Result, TileServerError};
use crate::{TileService, path_text};

/// Image encoding of a raster set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// The file extension in URLs (and MBTiles' `format`).
    pub fn ext(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    pub fn from_ext(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Some(ImageFormat::Png),
            "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
            "webp" => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    /// Recognises an image by its magic bytes.
    pub fn sniff(data: &[u8]) -> Option<Self> {
        if data.starts_with(&[0x89, b'P', b'N', b'G']) {
            Some(ImageFormat::Png)
        } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(ImageFormat::Jpeg)
        } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some(ImageFormat::Webp)
        } else {
            None
        }
    }
}

/// The datum a raster set's tiles are drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RasterCrs {
    /// CGCS2000 (or WGS 84, centimetres away): the platform's frame, served as stored.
    #[default]
    Cgcs2000,
    /// GCJ-02, the offset frame of Amap/Tencent basemaps: served cut into place.
    Gcj02,
}

impl RasterCrs {
    /// The registry's and the API's spelling: `CGCS2000` or `GCJ02`.
    pub fn as_str(self) -> &'static str {
        match self {
            RasterCrs::Cgcs2000 => "CGCS2000",
            RasterCrs::Gcj02 => "GCJ02",
        }
    }

    /// Parses an import's `crs`: `gcj02` (also `GCJ-02`), or `cgcs2000`, `EPSG:4490`, `wgs84`,
    /// `EPSG:4326`, `EPSG:3857`, `CRS84` for tiles already in the platform's frame.
    pub fn parse(s: &str) -> Result<Self> {
        let simple = s.trim().to_ascii_uppercase().replace(['-', '_', ' '], "");
        match simple.as_str() {
            "GCJ02" => Ok(RasterCrs::Gcj02),
            "CGCS2000" | "EPSG:4490" | "WGS84" | "EPSG:4326" | "EPSG:3857" | "CRS84" | "OGC:CRS84" => {
                Ok(RasterCrs::Cgcs2000)
            }
            "BD09" | "BD09LL" | "BD09MC" => Err(TileServerError::Invalid(format!(
                "crs `{s}`: Baidu's BD-09 tiles use Baidu's own tile grid, which is not served; use Amap/Tencent (GCJ-02) or CGCS2000/WGS 84 tiles"
            ))),
            _ => Err(TileServerError::Invalid(format!(
                "unknown crs `{s}` for a raster set (use `gcj02` for Amap/Tencent basemaps, or `cgcs2000` — the default — for tiles in CGCS2000/WGS 84)"
            ))),
        }
    }

    fn from_stored(s: &str) -> Self {
        if s == RasterCrs::Gcj02.as_str() { RasterCrs::Gcj02 } else { RasterCrs::Cgcs2000 }
    }
}

impl std::fmt::Display for RasterCrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One acquisition of a raster set.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterSlice {
    pub set: String,
    /// The acquisition date as given at import (`2021-05-01`, or an RFC 3339 instant).
    pub date: String,
    pub time: Timestamp,
    pub title: Option<String>,
    /// `imagery`, `hillshade`, `historical`, … (free text, for the map's layer list).
    pub kind: String,
    pub tms: TileMatrixSet,
    pub format: ImageFormat,
    /// The datum its tiles are drawn in (GCJ-02 tiles are served cut into place).
    pub crs: RasterCrs,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// lon/lat of the tiles as served (a GCJ-02 file's bounds moved into place).
    pub bounds: Bbox,
    pub file: PathBuf,
    /// The file it was imported from.
    pub source: String,
    pub tiles: u64,
    pub bytes: u64,
}

/// A raster set: its slices, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterSet {
    pub name: String,
    pub slices: Vec<RasterSlice>,
}

impl RasterSet {
    fn newest(&self) -> &RasterSlice {
        &self.slices[self.slices.len() - 1]
    }

    pub fn title(&self) -> &str {
        self.newest().title.as_deref().unwrap_or(&self.name)
    }

    pub fn kind(&self) -> &str {
        &self.newest().kind
    }

    pub fn tms(&self) -> TileMatrixSet {
        self.newest().tms
    }

    pub fn format(&self) -> ImageFormat {
        self.newest().format
    }

    pub fn crs(&self) -> RasterCrs {
        self.newest().crs
    }

    pub fn minzoom(&self) -> u8 {
        self.slices.iter().map(|s| s.minzoom).min().unwrap_or(0)
    }

    pub fn maxzoom(&self) -> u8 {
        self.slices.iter().map(|s| s.maxzoom).max().unwrap_or(0)
    }

    pub fn bounds(&self) -> Bbox {
        let mut b = self.slices[0].bounds;
        for s in &self.slices[1..] {
            b = b.union(&s.bounds);
        }
        b
    }

    /// The slice shown at `when`: the newest acquisition at or before it (`None` before the
    /// first); without an instant, the newest.
    pub fn slice_at(&self, when: Option<Timestamp>) -> Option<&RasterSlice> {
        match when {
            None => Some(self.newest()),
            Some(t) => self.slices.iter().rev().find(|s| s.time <= t),
        }
    }

    /// The slice with this date text or instant.
    pub fn slice_named(&self, date: &str) -> Option<&RasterSlice> {
        self.slices.iter().find(|s| s.date == date).or_else(|| {
            let t = shikong_model::parse_instant(date).ok()?;
            self.slices.iter().find(|s| s.time == t)
        })
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct RasterImport<'a> {
    pub set: &'a str,
    /// Acquisition date (`2021-05-01` = that day in Beijing; or an RFC 3339 instant).
    pub date: &'a str,
    pub title: Option<&'a str>,
    pub kind: &'a str,
    /// The datum of the file's tiles (every acquisition of a set shares it).
    pub crs: RasterCrs,
    /// An MBTiles or GeoPackage file.
    pub source: &'a Path,
}

/// Checks a set name: what layer names allow (ASCII letters, digits, `_`, `-`), 1–64 characters.
pub fn check_set_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(TileServerError::Invalid(format!(
            "invalid tile set name `{name}`: use 1–64 ASCII letters, digits, `_` or `-`, starting with a letter (the Chinese name goes in the title)"
        )))
    }
}

/// Open read pools of slice files.
#[derive(Debug, Default)]
pub(crate) struct SliceFiles {
    open: Mutex<HashMap<PathBuf, Arc<Db>>>,
}

impl SliceFiles {
    fn get(&self, path: &Path) -> Arc<Db> {
        let mut m = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(path.to_owned()).or_insert_with(|| Arc::new(Db::readonly(path))).clone()
    }

    fn forget(&self, path: &Path) {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(path);
    }
}

fn read_slice(r: &rusqlite::Row<'_>, dir: &Path) -> rusqlite::Result<RasterSlice> {
    let us: i64 = r.get("time_us")?;
    let tms: u8 = r.get("tms")?;
    let format: String = r.get("format")?;
    let crs: String = r.get("crs")?;
    let stored =
        Bbox { min_x: r.get("min_x")?, min_y: r.get("min_y")?, max_x: r.get("max_x")?, max_y: r.get("max_y")? };
    let file: String = r.get("file")?;
    Ok(RasterSlice {
        set: r.get("set_name")?,
        date: r.get("date")?,
        time: Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH),
        title: r.get("title")?,
        kind: r.get("kind")?,
        tms: TileMatrixSet::from_code(tms).unwrap_or(TileMatrixSet::WebMercatorQuad),
        format: ImageFormat::from_ext(&format).unwrap_or(ImageFormat::Png),
        crs: RasterCrs::from_stored(&crs),
        minzoom: r.get("minzoom")?,
        maxzoom: r.get("maxzoom")?,
        bounds: match RasterCrs::from_stored(&crs) {
            RasterCrs::Cgcs2000 => stored,
            RasterCrs::Gcj02 => shikong_tiles::gcj02::gcj02_bbox_to_cgcs2000(&stored),
        },
        file: dir.join(file),
        source: r.get("source")?,
        tiles: r.get::<_, i64>("tiles")? as u64,
        bytes: r.get::<_, i64>("bytes")? as u64,
    })
}

/// Brings a registry made before raster sets had a datum up to date (their slices are CGCS2000,
/// as they were served). Idempotent; run at every open.
pub(crate) fn migrate_registry(c: &Connection) -> Result<()> {
    let has_crs = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row("SELECT count(*) > 0 FROM pragma_table_info('raster_slices') WHERE name = 'crs'", [], |r| r.get(0))
    };
    if !has_crs(c)?
        && let Err(e) = c.execute_batch("ALTER TABLE raster_slices ADD COLUMN crs TEXT NOT NULL DEFAULT 'CGCS2000'")
        // Another process (a CLI import beside the server) may have added it meanwhile.
        && !has_crs(c)?
    {
        return Err(e.into());
    }
    Ok(())
}

/// The tile cache's layer name for the cut tiles of a GCJ-02 slice (`:` is in no layer or set
/// name, so these rows never meet a layer's).
fn cut_cache_layer(slice: &RasterSlice) -> String {
    format!("raster:{}@{}", slice.set, slice.time.as_microsecond())
}

/// The MBTiles row of an XYZ/OGC tile (MBTiles counts rows from the bottom).
fn mbtiles_row(tms: TileMatrixSet, t: TileId) -> u32 {
    let rows = tms.matrix_size(t.z).1 as u32;
    rows - 1 - t.y
}

impl TileService {
    fn raster_dir(&self) -> PathBuf {
        self.config.dir.join("raster")
    }

    /// Every raster set, by name.
    pub fn raster_sets(&self) -> Result<Vec<RasterSet>> {
        let dir = self.raster_dir();
        let slices = self.registry()?.read(|c| {
            let mut st = c.prepare_cached("SELECT * FROM raster_slices ORDER BY set_name, time_us")?;
            let rows = st.query_map([], |r| read_slice(r, &dir))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut sets: Vec<RasterSet> = Vec::new();
        for s in slices {
            match sets.last_mut() {
                Some(last) if last.name == s.set => last.slices.push(s),
                _ => sets.push(RasterSet { name: s.set.clone(), slices: vec![s] }),
            }
        }
        Ok(sets)
    }

    /// One raster set, or [`TileServerError::NoSuchSet`].
    pub fn raster_set(&self, name: &str) -> Result<RasterSet> {
        let dir = self.raster_dir();
        let slices = self.registry()?.read(|c| {
            let mut st = c.prepare_cached("SELECT * FROM raster_slices WHERE set_name = ?1 ORDER BY time_us")?;
            let rows = st.query_map([name], |r| read_slice(r, &dir))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        if slices.is_empty() {
            return Err(TileServerError::NoSuchSet(name.to_owned()));
        }
        Ok(RasterSet { name: name.to_owned(), slices })
    }

    /// A tile of a slice as the map needs it (`None`: the slice has no tile there): a GCJ-02
    /// slice's tile is cut into place from the stored tiles (and cached), others are as stored.
    pub fn raster_tile(&self, slice: &RasterSlice, tile: TileId) -> Result<Option<Vec<u8>>> {
        if slice.crs == RasterCrs::Cgcs2000 {
            return self.stored_raster_tile(slice, tile);
        }
        let layer = cut_cache_layer(slice);
        let key =
            CacheKey { layer: &layer, tms: slice.tms.code(), z: tile.z, x: tile.x, y: tile.y, tx: 0, variant: "" };
        let cache = self.cache()?;
        if let Some(data) = cache.get(&key)? {
            return Ok((!data.is_empty()).then_some(data));
        }
        let epoch = self.epoch();
        let format = if slice.format == ImageFormat::Jpeg { CutFormat::Jpeg } else { CutFormat::Png };
        let cut = shikong_tiles::gcj02::gcj02_tile(slice.tms, tile, format, |s| self.stored_raster_tile(slice, s))?;
        // An empty blob records "no tile here", so far-off requests cost one lookup too.
        cache.put(&key, cut.as_deref().unwrap_or_default(), epoch, &|| self.epoch())?;
        Ok(cut)
    }

    /// Drops the cut tiles cached for a GCJ-02 slice (it is being replaced or deleted).
    fn forget_cut_tiles(&self, slice: &RasterSlice) -> Result<()> {
        if slice.crs == RasterCrs::Gcj02 {
            self.cache()?.delete_layer(Some(&cut_cache_layer(slice)), &|| self.epoch(), || self.bump())?;
        }
        Ok(())
    }

    /// A tile of a slice as stored in its file.
    fn stored_raster_tile(&self, slice: &RasterSlice, tile: TileId) -> Result<Option<Vec<u8>>> {
        let db = self.slices.get(&slice.file);
        let row = mbtiles_row(slice.tms, tile);
        db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            )?;
            Ok(st.query_row(params![tile.z, tile.x, row], |r| r.get(0)).optional()?)
        })
    }

    /// Calls `f` with every tile of `slice` at zoom `z` within columns/rows `[x0, x1] × [y0, y1]`
    /// (XYZ rows).
    pub fn raster_tiles_in(
        &self,
        slice: &RasterSlice,
        range: &shikong_tiles::TileRange,
        f: &mut dyn FnMut(TileId, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let db = self.slices.get(&slice.file);
        let rows = slice.tms.matrix_size(range.z).1 as u32;
        let (r0, r1) = (rows - 1 - range.max_y, rows - 1 - range.min_y);
        db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column BETWEEN ?2 AND ?3 AND tile_row BETWEEN ?4 AND ?5",
            )?;
            let mut q = st.query(params![range.z, range.min_x, range.max_x, r0, r1])?;
            while let Some(r) = q.next()? {
                let x: u32 = r.get(0)?;
                let row: u32 = r.get(1)?;
                f(TileId { z: range.z, x, y: rows - 1 - row }, r.get(2)?)?;
            }
            Ok(())
        })
    }

    /// Sum of tile sizes and count of `slice` in a range (for package estimates).
    pub fn raster_size_in(&self, slice: &RasterSlice, range: &shikong_tiles::TileRange) -> Result<(u64, u64)> {
        let db = self.slices.get(&slice.file);
        let rows = slice.tms.matrix_size(range.z).1 as u32;
        let (r0, r1) = (rows - 1 - range.max_y, rows - 1 - range.min_y);
        db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT count(*), coalesce(sum(length(tile_data)), 0) FROM tiles WHERE zoom_level = ?1 AND tile_column BETWEEN ?2 AND ?3 AND tile_row BETWEEN ?4 AND ?5",
            )?;
            let (n, b): (i64, i64) =
                st.query_row(params![range.z, range.min_x, range.max_x, r0, r1], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((n as u64, b as u64))
        })
    }

    /// Imports one acquisition of a raster set from an MBTiles or GeoPackage file. A slice with
    /// the same set and instant is replaced.
    pub fn import_raster(&self, imp: &RasterImport<'_>) -> Result<RasterSlice> {
        check_set_name(imp.set)?;
        let time = shikong_model::parse_instant(imp.date).map_err(|e| TileServerError::Invalid(e.to_string()))?;
        // The registry keeps instants at microseconds: finer digits would not find the slice again.
        let time = Timestamp::from_microsecond(time.as_microsecond())
            .map_err(|e| TileServerError::Invalid(format!("date `{}`: {e}", imp.date)))?;
        let src = imp.source;
        let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| TileServerError::import(src, format!("not an SQLite file ({e})")))?;
        let has = |t: &str| -> Result<bool> {
            Ok(conn
                .query_row("SELECT 1 FROM sqlite_master WHERE name = ?1 AND type IN ('table', 'view')", [t], |_| Ok(()))
                .optional()
                .map_err(|e| TileServerError::import(src, format!("not an SQLite file ({e})")))?
                .is_some())
        };
        let dir = self.raster_dir().join(imp.set);
        std::fs::create_dir_all(&dir).map_err(|e| TileServerError::io(&dir, e))?;
        let file_name = format!("{}.mbtiles", time.as_microsecond());
        let dest = dir.join(&file_name);
        let tmp = dir.join(format!("{file_name}.importing"));
        let _ = std::fs::remove_file(&tmp);
        let (tms, meta) = if has("gpkg_tile_matrix_set")? {
            let tms = import_gpkg(&conn, src, &tmp)?;
            (tms, read_meta(&Connection::open(&tmp)?)?)
        } else if has("tiles")? && has("metadata")? {
            let meta = read_meta(&conn)?;
            if meta.get("format").is_some_and(|f| f == "pbf" || f == "mvt") {
                return Err(TileServerError::import(
                    src,
                    "this MBTiles holds vector tiles; vector data is served from layers (import the features with `shikong import`)",
                ));
            }
            let tmp_text = path_text(&tmp);
            conn.execute("VACUUM INTO ?1", [&tmp_text])?;
            (TileMatrixSet::WebMercatorQuad, meta)
        } else {
            return Err(TileServerError::import(
                src,
                "neither an MBTiles file (tables `tiles`, `metadata`) nor a GeoPackage with a tile pyramid",
            ));
        };
        drop(conn);
        let out = Connection::open(&tmp)?;
        let is_table: bool = out
            .query_row("SELECT type = 'table' FROM sqlite_master WHERE name = 'tiles'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(false);
        if is_table {
            out.execute_batch(
                "CREATE UNIQUE INDEX IF NOT EXISTS sk_tile_index ON tiles (zoom_level, tile_column, tile_row)",
            )?;
        }
        let (minzoom, maxzoom, tiles, bytes): (Option<u8>, Option<u8>, i64, i64) = out.query_row(
            "SELECT min(zoom_level), max(zoom_level), count(*), coalesce(sum(length(tile_data)), 0) FROM tiles",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (Some(minzoom), Some(maxzoom)) = (minzoom, maxzoom) else {
            let _ = std::fs::remove_file(&tmp);
            return Err(TileServerError::import(src, "the file holds no tiles"));
        };
        let first: Vec<u8> = out.query_row("SELECT tile_data FROM tiles LIMIT 1", [], |r| r.get(0))?;
        let format = ImageFormat::sniff(&first)
            .or_else(|| meta.get("format").and_then(|f| ImageFormat::from_ext(f)))
            .ok_or_else(|| TileServerError::import(src, "tiles are not PNG, JPEG or WebP images"))?;
        let bounds = match meta.get("bounds").and_then(|b| b.parse::<Bbox>().ok()) {
            Some(b) => b,
            None => tiles_bounds(&out, tms, maxzoom)?,
        };
        drop(out);
        if imp.crs == RasterCrs::Gcj02 && format == ImageFormat::Webp {
            let _ = std::fs::remove_file(&tmp);
            return Err(TileServerError::import(
                src,
                "GCJ-02 tiles are cut into place when served, which needs PNG or JPEG tiles; this file has WebP tiles",
            ));
        }
        let existing = self.raster_set(imp.set).ok();
        if let Some(existing) = &existing {
            let s = existing.newest();
            let others = existing.slices.iter().filter(|s| s.time != time).collect::<Vec<_>>();
            if let Some(o) = others.iter().find(|o| o.crs != imp.crs) {
                let _ = std::fs::remove_file(&tmp);
                return Err(TileServerError::import(
                    src,
                    format!(
                        "set `{}` holds {} tiles (acquisition {}); this import says {} (every acquisition of a set shares its datum: import into another set, or delete the set first)",
                        imp.set, o.crs, o.date, imp.crs
                    ),
                ));
            }
            if s.tms != tms || s.format != format {
                let _ = std::fs::remove_file(&tmp);
                return Err(TileServerError::import(
                    src,
                    format!(
                        "set `{}` holds {} {} tiles; this file has {} {} tiles (every acquisition of a set shares grid and format)",
                        imp.set,
                        s.tms,
                        s.format.ext(),
                        tms,
                        format.ext()
                    ),
                ));
            }
        }
        self.slices.forget(&dest);
        std::fs::rename(&tmp, &dest).map_err(|e| TileServerError::io(&dest, e))?;
        let rel = format!("{}/{file_name}", imp.set);
        let source = path_text(src);
        self.registry()?.write(|c| {
            c.execute(
                "INSERT OR REPLACE INTO raster_slices (set_name, date, time_us, title, kind, tms, format, minzoom, maxzoom, \
                 min_x, min_y, max_x, max_y, file, source, tiles, bytes, crs) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                params![
                    imp.set,
                    imp.date,
                    time.as_microsecond(),
                    imp.title,
                    imp.kind,
                    tms.code(),
                    format.ext(),
                    minzoom,
                    maxzoom,
                    bounds.min_x,
                    bounds.min_y,
                    bounds.max_x,
                    bounds.max_y,
                    rel,
                    source,
                    tiles,
                    bytes,
                    imp.crs.as_str()
                ],
            )?;
            Ok(())
        })?;
        // After the new file and row are in place: a tile cut from the old file before this
        // (epoch bumped here) is not cached.
        if let Some(old) = existing.as_ref().and_then(|e| e.slices.iter().find(|s| s.time == time)) {
            self.forget_cut_tiles(old)?;
        }
        let set = self.raster_set(imp.set)?;
        set.slices.into_iter().find(|s| s.time == time).ok_or_else(|| {
            TileServerError::Invalid(format!("slice {} of `{}` vanished after import", imp.date, imp.set))
        })
    }

    /// Removes one acquisition (or, without a date, the whole set). Returns how many slices went.
    pub fn delete_raster(&self, set: &str, date: Option<&str>) -> Result<usize> {
        let s = self.raster_set(set)?;
        let doomed: Vec<&RasterSlice> = match date {
            None => s.slices.iter().collect(),
            Some(d) => s.slice_named(d).into_iter().collect(),
        };
        if doomed.is_empty() {
            return Err(TileServerError::NoSliceAt { set: set.to_owned(), when: date.unwrap_or_default().to_owned() });
        }
        for sl in &doomed {
            self.registry()?.write(|c| {
                c.execute(
                    "DELETE FROM raster_slices WHERE set_name = ?1 AND time_us = ?2",
                    params![set, sl.time.as_microsecond()],
                )?;
                Ok(())
            })?;
            self.forget_cut_tiles(sl)?;
            self.slices.forget(&sl.file);
            let _ = std::fs::remove_file(&sl.file);
        }
        Ok(doomed.len())
    }
}

fn read_meta(c: &Connection) -> Result<HashMap<String, String>> {
    let mut st = c.prepare("SELECT name, value FROM metadata")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
}

/// Bounds of the tiles at `z` (lon/lat), for files without a `bounds` entry.
fn tiles_bounds(c: &Connection, tms: TileMatrixSet, z: u8) -> Result<Bbox> {
    let (x0, x1, r0, r1): (u32, u32, u32, u32) = c.query_row(
        "SELECT min(tile_column), max(tile_column), min(tile_row), max(tile_row) FROM tiles WHERE zoom_level = ?1",
        [z],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let rows = tms.matrix_size(z).1 as u32;
    let nw = tms.tile_bbox(TileId { z, x: x0, y: rows - 1 - r1 }, 0.0);
    let se = tms.tile_bbox(TileId { z, x: x1, y: rows - 1 - r0 }, 0.0);
    Ok(nw.union(&se))
}

/// Copies a GeoPackage tile pyramid aligned with a served matrix set into an MBTiles-layout file.
fn import_gpkg(conn: &Connection, src: &Path, dest: &Path) -> Result<TileMatrixSet> {
    let mut st = conn.prepare("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles' ORDER BY table_name")?;
    let tables = st.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let table = match tables.as_slice() {
        [t] => t.clone(),
        [] => {
            return Err(TileServerError::import(
                src,
                "the GeoPackage has no tile pyramid (gpkg_contents lists no `tiles` table)",
            ));
        }
        many => {
            return Err(TileServerError::import(
                src,
                format!("the GeoPackage has several tile pyramids ({}); import a file with one", many.join(", ")),
            ));
        }
    };
    let (srs, min_x, min_y, max_x, max_y): (i64, f64, f64, f64, f64) = conn.query_row(
        "SELECT coalesce(s.organization_coordsys_id, m.srs_id), m.min_x, m.min_y, m.max_x, m.max_y \
         FROM gpkg_tile_matrix_set m LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = m.srs_id WHERE m.table_name = ?1",
        [&table],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let tms = match srs {
        3857 | 900_913 => TileMatrixSet::WebMercatorQuad,
        4326 | 4490 => TileMatrixSet::Cgcs2000Quad,
        other => {
            return Err(TileServerError::import(
                src,
                format!(
                    "tile pyramid `{table}` is in EPSG:{other}; only EPSG:3857 (TILING_SCHEME=GoogleMapsCompatible) and EPSG:4326/4490 (TILING_SCHEME=InspireCRS84Quad) grids are served"
                ),
            ));
        }
    };
    let (ox, oy) = tms.origin();
    let tol = tms.tile_span(0) * 1e-6;
    let aligned = (min_x - ox).abs() < tol && (max_y - oy).abs() < tol && (max_x + ox).abs() < tol;
    let hint = match tms {
        TileMatrixSet::WebMercatorQuad => "-co TILING_SCHEME=GoogleMapsCompatible",
        TileMatrixSet::Cgcs2000Quad => "-co TILING_SCHEME=InspireCRS84Quad",
    };
    if !aligned {
        return Err(TileServerError::import(
            src,
            format!(
                "tile pyramid `{table}` is not aligned with {tms} (extent {min_x},{min_y},{max_x},{max_y}); create it with `gdal_translate -of GPKG {hint}`"
            ),
        ));
    }
    let mut st =
        conn.prepare("SELECT zoom_level, matrix_width, matrix_height, tile_width, tile_height FROM gpkg_tile_matrix WHERE table_name = ?1")?;
    let levels = st
        .query_map([&table], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, u32>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut zooms = HashMap::new();
    for (level, w, h, tw, th) in levels {
        let z = (0..=shikong_tiles::MAX_ZOOM).find(|z| tms.matrix_size(*z) == (w, h));
        match z {
            Some(z) if tw == 256 && th == 256 => {
                zooms.insert(level, z);
            }
            _ => {
                return Err(TileServerError::import(
                    src,
                    format!(
                        "zoom level {level} of `{table}` ({w}×{h} tiles of {tw}×{th} px) is not a level of {tms} with 256-pixel tiles; create it with `gdal_translate -of GPKG {hint}`"
                    ),
                ));
            }
        }
    }
    let mut out = Connection::open(dest)?;
    out.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, tile_row INTEGER NOT NULL, tile_data BLOB NOT NULL);
         CREATE UNIQUE INDEX sk_tile_index ON tiles (zoom_level, tile_column, tile_row);",
    )?;
    let tx = out.transaction()?;
    {
        let mut ins = tx.prepare("INSERT OR REPLACE INTO tiles VALUES (?1, ?2, ?3, ?4)")?;
        let mut rd = conn.prepare(&format!(
            "SELECT zoom_level, tile_column, tile_row, tile_data FROM {}",
            shikong_gpkg_quote(&table)
        ))?;
        let mut rows = rd.query([])?;
        while let Some(r) = rows.next()? {
            let level: i64 = r.get(0)?;
            let Some(z) = zooms.get(&level) else { continue };
            let col: u32 = r.get(1)?;
            let row: u32 = r.get(2)?;
            let data: Vec<u8> = r.get(3)?;
            let flipped = tms.matrix_size(*z).1 as u32 - 1 - row;
            ins.execute(params![z, col, flipped, data])?;
        }
        let (lo_lon, lo_lat, hi_lon, hi_lat) = match conn.query_row(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?1",
            [&table],
            |r| {
                Ok((
                    r.get::<_, Option<f64>>(0)?,
                    r.get::<_, Option<f64>>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            },
        )? {
            (Some(a), Some(b), Some(c), Some(d)) => {
                let to_ll = |x: f64, y: f64| match tms {
                    TileMatrixSet::WebMercatorQuad => {
                        let span = 2.0 * -ox;
                        tms.lonlat((x - ox) / span, (oy - y) / span)
                    }
                    TileMatrixSet::Cgcs2000Quad => (x, y),
                };
                let (a, b) = to_ll(a, b);
                let (c, d) = to_ll(c, d);
                (a, b, c, d)
            }
            _ => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        let mut meta = tx.prepare("INSERT INTO metadata VALUES (?1, ?2)")?;
        meta.execute(["name", &table])?;
        meta.execute(["type", "baselayer"])?;
        meta.execute(["shikong:tms", tms.id()])?;
        if lo_lon.is_finite() {
            meta.execute(["bounds", &format!("{lo_lon},{lo_lat},{hi_lon},{hi_lat}")])?;
        }
    }
    tx.commit()?;
    Ok(tms)
}

fn shikong_gpkg_quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
