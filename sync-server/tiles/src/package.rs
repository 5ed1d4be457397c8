//! Offline packages: the tiles of an area and zoom range in one MBTiles file that travels beside
//! the inspector's replica, so the map works with no network.
//!
//! One package holds one tile set: a layer group's vector tiles (gzip MVT, `format=pbf`, with
//! the `json` metadata MapLibre and GDAL read) or one raster set's acquisition. MBTiles is what
//! GDAL, QGIS, MapLibre Native and the mobile SDKs open directly. Tiles come through the tile
//! cache, so packaging an area warms the cache and a second package of it is a copy.
//!
//! **Updates** fetch only what changed: a package records the transaction it reflects
//! (`shikong:tx`); a package asked `since` that transaction holds only the tiles touched by
//! later writes (by the same envelope rule as cache invalidation), tiles that became empty
//! included as empty blobs so the device deletes them. A raster package records its
//! acquisition date; its update is empty unless a newer acquisition exists.
//!
//! Before downloading, [`TileService::estimate_package`] counts the tiles exactly and the bytes
//! exactly for raster sets (sums of stored sizes; for a GCJ-02 set, whose tiles are cut into
//! place as they are written, the stored tiles of the area's ranges: not exact) and by sampling
//! for vector sets (a few tiles per zoom are rendered — and cached — and their mean size scales
//! the count).

use std::path::Path;

use geo::Intersects;
use jiff::Timestamp;
use rusqlite::{Connection, params};
use shikong_model::{Bbox, Geometry, TxId};
use shikong_store::{FeatureStore, Layer};
use shikong_tiles::{TileId, TileMatrixSet};

use crate::error::{Result, TileServerError};
use crate::raster::{RasterCrs, RasterSet};
use crate::{Changed, TileService, VectorRequest};

/// What a package holds.
#[derive(Debug, Clone, Copy)]
pub enum PackageContent<'a> {
    /// A layer group's vector tiles (as they are now).
    Vector { layers: &'a [Layer] },
    /// One acquisition of a raster set: the one in effect at `when` (newest without).
    Raster { set: &'a RasterSet, when: Option<Timestamp> },
}

/// A package request.
#[derive(Debug, Clone, Copy)]
pub struct PackageSpec<'a> {
    /// Polygon or multipolygon (CGCS2000 lon/lat): a drawn area or an administrative unit.
    pub area: &'a Geometry,
    pub minzoom: u8,
    pub maxzoom: u8,
    pub content: PackageContent<'a>,
    /// For an update: the `shikong:tx` (vector) of the package the device holds.
    pub since_tx: Option<TxId>,
    /// For an update: the `shikong:date` (raster) of the package the device holds.
    pub since_date: Option<&'a str>,
    /// Refuse areas with more tiles than this.
    pub max_tiles: u64,
}

/// The size of a package before it is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub tiles: u64,
    /// Estimated bytes of tile data.
    pub bytes: u64,
    /// Whether `bytes` is exact (raster) or extrapolated from rendered samples (vector).
    pub exact: bool,
    /// Tiles rendered to estimate (vector).
    pub sampled: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageInfo {
    /// Tiles written (empty ones only in updates).
    pub tiles: u64,
    pub bytes: u64,
    /// The transaction a vector package reflects.
    pub tx: Option<TxId>,
    /// The acquisition a raster package holds.
    pub date: Option<String>,
    pub tms: TileMatrixSet,
}

/// The tiles of the matrix set meeting `area` at zooms `minzoom..=maxzoom`, zoom by zoom.
pub fn area_tiles(
    area: &Geometry,
    tms: TileMatrixSet,
    minzoom: u8,
    maxzoom: u8,
    max_tiles: u64,
) -> Result<Vec<TileId>> {
    if minzoom > maxzoom || maxzoom > shikong_tiles::MAX_ZOOM {
        return Err(TileServerError::Invalid(format!(
            "zoom range {minzoom}–{maxzoom} is not within 0–{}",
            shikong_tiles::MAX_ZOOM
        )));
    }
    let bbox = area.bbox().ok_or_else(|| TileServerError::Invalid("the area has no extent".into()))?;
    let shape = area.to_geo();
    let mut out = Vec::new();
    for z in minzoom..=maxzoom {
        let Some(range) = tms.tiles_for(&bbox, z, 0.0) else { continue };
        if out.len() as u64 + range.count() > max_tiles.saturating_mul(4) {
            return Err(too_many(max_tiles));
        }
        for t in range.iter() {
            let b = tms.tile_bbox(t, 0.0);
            let rect = geo::Rect::new(geo::coord! { x: b.min_x, y: b.min_y }, geo::coord! { x: b.max_x, y: b.max_y });
            if rect.intersects(&shape) {
                out.push(t);
            }
        }
        if out.len() as u64 > max_tiles {
            return Err(too_many(max_tiles));
        }
    }
    Ok(out)
}

fn too_many(max: u64) -> TileServerError {
    TileServerError::Invalid(format!(
        "the area and zoom range need more than {max} tiles; choose a smaller area or a lower maximum zoom"
    ))
}

impl TileService {
    fn tms_of(content: &PackageContent<'_>) -> TileMatrixSet {
        match content {
            PackageContent::Vector { .. } => TileMatrixSet::WebMercatorQuad,
            PackageContent::Raster { set, .. } => set.tms(),
        }
    }

    /// The tiles a package (or update) holds, and for vector updates the transaction it reflects.
    fn package_tiles(&self, store: &dyn FeatureStore, spec: &PackageSpec<'_>) -> Result<(Vec<TileId>, TxId)> {
        let tms = Self::tms_of(&spec.content);
        let mut tiles = area_tiles(spec.area, tms, spec.minzoom, spec.maxzoom, spec.max_tiles)?;
        let latest = store.latest_tx()?;
        match (&spec.content, spec.since_tx) {
            (PackageContent::Vector { layers }, Some(since)) => {
                let mut ranges = Vec::new();
                for l in *layers {
                    if l.schema_tx > since {
                        return Ok((tiles, latest));
                    }
                    match self.changed_envelopes(store, l, since)? {
                        Changed::None => {}
                        Changed::Too(_) => return Ok((tiles, latest)),
                        Changed::Envelopes(_, envs) => ranges.extend(Self::touched_tiles(&envs)),
                    }
                }
                tiles.retain(|t| ranges.iter().any(|(code, r)| *code == tms.code() && r.contains(*t)));
            }
            (PackageContent::Raster { set, when }, _) => {
                let slice = set.slice_at(*when);
                if spec.since_date.is_some() && slice.map(|s| s.date.as_str()) == spec.since_date {
                    tiles.clear();
                }
            }
            _ => {}
        }
        Ok((tiles, latest))
    }

    /// Counts a package's tiles and estimates its size.
    pub fn estimate_package(&self, store: &dyn FeatureStore, spec: &PackageSpec<'_>) -> Result<Estimate> {
        let (tiles, _) = self.package_tiles(store, spec)?;
        let n = tiles.len() as u64;
        match spec.content {
            PackageContent::Raster { set, when } => {
                let Some(slice) = set.slice_at(when) else {
                    return Ok(Estimate { tiles: 0, bytes: 0, exact: true, sampled: 0 });
                };
                // Count what the slice really holds within each zoom's tiles.
                let (mut count, mut bytes) = (0, 0);
                let mut by_zoom: std::collections::BTreeMap<u8, Vec<TileId>> = Default::default();
                for t in &tiles {
                    by_zoom.entry(t.z).or_default().push(*t);
                }
                for (z, ts) in by_zoom {
                    let keep: std::collections::HashSet<TileId> = ts.iter().copied().collect();
                    let r = shikong_tiles::TileRange {
                        z,
                        min_x: ts.iter().map(|t| t.x).min().unwrap_or(0),
                        max_x: ts.iter().map(|t| t.x).max().unwrap_or(0),
                        min_y: ts.iter().map(|t| t.y).min().unwrap_or(0),
                        max_y: ts.iter().map(|t| t.y).max().unwrap_or(0),
                    };
                    if keep.len() as u64 == r.count() || slice.crs == RasterCrs::Gcj02 {
                        // A GCJ-02 slice's tiles are cut into place when written: the stored
                        // tiles of the range are the estimate (off by a tile row or column).
                        let (c, b) = self.raster_size_in(slice, &r)?;
                        count += c;
                        bytes += b;
                    } else {
                        self.raster_tiles_in(slice, &r, &mut |t, data| {
                            if keep.contains(&t) {
                                count += 1;
                                bytes += data.len() as u64;
                            }
                            Ok(())
                        })?;
                    }
                }
                Ok(Estimate { tiles: count, bytes, exact: slice.crs == RasterCrs::Cgcs2000, sampled: 0 })
            }
            PackageContent::Vector { layers } => {
                let mut bytes = 0f64;
                let mut sampled = 0;
                for z in spec.minzoom..=spec.maxzoom {
                    let at_z: Vec<&TileId> = tiles.iter().filter(|t| t.z == z).collect();
                    if at_z.is_empty() {
                        continue;
                    }
                    // Up to 4 tiles spread over the zoom's list.
                    let k = at_z.len().min(4);
                    let mut sum = 0usize;
                    for i in 0..k {
                        let t = at_z[i * at_z.len() / k];
                        let v = self.vector_tile(
                            store,
                            &VectorRequest {
                                layers,
                                tms: TileMatrixSet::WebMercatorQuad,
                                tile: *t,
                                as_of: None,
                                fields: None,
                            },
                        )?;
                        sum += v.gzip.len();
                        sampled += 1;
                    }
                    bytes += sum as f64 / k as f64 * at_z.len() as f64;
                }
                Ok(Estimate { tiles: n, bytes: bytes.round() as u64, exact: false, sampled })
            }
        }
    }

    /// Writes the package to `out` (an MBTiles file, replaced if present).
    pub fn write_package(&self, store: &dyn FeatureStore, spec: &PackageSpec<'_>, out: &Path) -> Result<PackageInfo> {
        let tms = Self::tms_of(&spec.content);
        let (tiles, tx) = self.package_tiles(store, spec)?;
        let _ = std::fs::remove_file(out);
        let mut conn = Connection::open(out)?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, tile_row INTEGER NOT NULL, tile_data BLOB NOT NULL);
             CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);",
        )?;
        let update = spec.since_tx.is_some() || spec.since_date.is_some();
        let bounds = spec.area.bbox().unwrap_or(Bbox { min_x: 0.0, min_y: 0.0, max_x: 0.0, max_y: 0.0 });
        let db = conn.transaction()?;
        let (mut count, mut bytes) = (0u64, 0u64);
        let mut meta: Vec<(&str, String)> = vec![
            ("bounds", format!("{},{},{},{}", bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y)),
            (
                "center",
                format!(
                    "{},{},{}",
                    (bounds.min_x + bounds.max_x) / 2.0,
                    (bounds.min_y + bounds.max_y) / 2.0,
                    spec.minzoom
                ),
            ),
            ("minzoom", spec.minzoom.to_string()),
            ("maxzoom", spec.maxzoom.to_string()),
            ("shikong:area", shikong_model::wkt::to_wkt(spec.area)),
            ("shikong:tms", tms.id().to_owned()),
            ("shikong:update", update.to_string()),
        ];
        let mut date = None;
        {
            let mut ins = db.prepare("INSERT OR REPLACE INTO tiles VALUES (?1, ?2, ?3, ?4)")?;
            let mut put = |t: TileId, data: &[u8]| -> Result<()> {
                let row = tms.matrix_size(t.z).1 as u32 - 1 - t.y;
                ins.execute(params![t.z, t.x, row, data])?;
                count += 1;
                bytes += data.len() as u64;
                Ok(())
            };
            match spec.content {
                PackageContent::Vector { layers } => {
                    for t in &tiles {
                        let v = self.vector_tile(
                            store,
                            &VectorRequest {
                                layers,
                                tms: TileMatrixSet::WebMercatorQuad,
                                tile: *t,
                                as_of: None,
                                fields: None,
                            },
                        )?;
                        if !v.gzip.is_empty() || update {
                            put(*t, &v.gzip)?;
                        }
                    }
                    let names: Vec<&str> = layers.iter().map(Layer::name).collect();
                    meta.push(("name", names.join(",")));
                    meta.push(("format", "pbf".into()));
                    meta.push(("type", "overlay".into()));
                    meta.push(("shikong:tx", tx.0.to_string()));
                    meta.push(("json", vector_layers_json(layers, spec.minzoom, spec.maxzoom)));
                }
                PackageContent::Raster { set, when } => {
                    if let Some(slice) = set.slice_at(when) {
                        let keep: std::collections::HashSet<TileId> = tiles.iter().copied().collect();
                        for z in spec.minzoom..=spec.maxzoom {
                            let ts: Vec<&TileId> = tiles.iter().filter(|t| t.z == z).collect();
                            if ts.is_empty() {
                                continue;
                            }
                            let r = shikong_tiles::TileRange {
                                z,
                                min_x: ts.iter().map(|t| t.x).min().unwrap_or(0),
                                max_x: ts.iter().map(|t| t.x).max().unwrap_or(0),
                                min_y: ts.iter().map(|t| t.y).min().unwrap_or(0),
                                max_y: ts.iter().map(|t| t.y).max().unwrap_or(0),
                            };
                            if slice.crs == RasterCrs::Gcj02 {
                                // Cut into place, as served: the package reads right anywhere.
                                for t in ts {
                                    if let Some(data) = self.raster_tile(slice, *t)? {
                                        put(*t, &data)?;
                                    }
                                }
                                continue;
                            }
                            self.raster_tiles_in(slice, &r, &mut |t, data| {
                                if keep.contains(&t) { put(t, &data) } else { Ok(()) }
                            })?;
                        }
                        meta.push(("format", slice.format.ext().to_owned()));
                        meta.push(("shikong:date", slice.date.clone()));
                        date = Some(slice.date.clone());
                    }
                    meta.push(("name", set.name.clone()));
                    meta.push(("description", set.title().to_owned()));
                    meta.push(("type", "baselayer".into()));
                }
            }
        }
        {
            let mut m = db.prepare("INSERT INTO metadata VALUES (?1, ?2)")?;
            for (k, v) in &meta {
                m.execute(params![k, v])?;
            }
        }
        db.commit()?;
        let is_vector = matches!(spec.content, PackageContent::Vector { .. });
        Ok(PackageInfo { tiles: count, bytes, tx: is_vector.then_some(tx), date, tms })
    }
}

/// MBTiles' `json` metadata for vector tiles: the layers and their attribute types.
pub fn vector_layers_json(layers: &[Layer], minzoom: u8, maxzoom: u8) -> String {
    let vl: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let mut fields = serde_json::Map::new();
            fields.insert("id".into(), "String".into());
            fields.insert("code".into(), "String".into());
            for f in &l.schema().fields {
                let ty = match f.ty {
                    shikong_model::FieldType::Integer | shikong_model::FieldType::Real => "Number",
                    shikong_model::FieldType::Bool => "Boolean",
                    _ => "String",
                };
                fields.insert(f.name.clone(), ty.into());
            }
            serde_json::json!({
                "id": l.name(),
                "description": l.display_name(),
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "fields": fields,
            })
        })
        .collect();
    serde_json::json!({ "vector_layers": vl }).to_string()
}
