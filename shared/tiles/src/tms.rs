//! Tile matrix sets: where a tile is, which tiles cover an area, and how lon/lat maps into a tile.
//!
//! Two sets are offered (OGC 17-083r4 *Two Dimensional Tile Matrix Set*):
//!
//! - **WebMercatorQuad** (EPSG:3857, the XYZ grid of every web map): zoom `z` has 2^z × 2^z tiles.
//!   Store coordinates are CGCS2000 lon/lat; they are projected to Web Mercator *as if* they were
//!   WGS 84 lon/lat. The two frames differ by centimetres (see ARCHITECTURE.md, "CGCS2000 and WGS
//!   84"), far below a pixel at any zoom a map shows, so no datum shift is applied.
//! - **CGCS2000Quad** (EPSG:4490, laid out like OGC's WorldCRS84Quad and 天地图's `c` sets): zoom
//!   `z` has 2^(z+1) × 2^z tiles of 180/2^z degrees, origin at (-180°, 90°). Tiles are plain lon/lat
//!   rectangles, so CGCS2000 data needs no projection at all.
//!
//! Tile rows count from the top (north), as in XYZ and OGC API – Tiles; MBTiles' flipped rows are
//! the tile server's business. Everything here is arithmetic on `f64`: no I/O, no allocation.

use std::fmt;

use shikong_model::Bbox;

use crate::error::{Result, TileError};

/// Highest zoom served: ~2 cm per pixel in Web Mercator at the equator.
pub const MAX_ZOOM: u8 = 24;

/// Web Mercator's latitude limit: the square world's edge.
pub const MERCATOR_MAX_LAT: f64 = 85.051_128_779_806_59;

/// Semi-major axis shared by WGS 84 and CGCS2000 (metres).
const EARTH_RADIUS: f64 = 6_378_137.0;

/// A standardised pixel (OGC: 0.28 mm), used for scale denominators.
const PIXEL_SIZE_M: f64 = 0.000_28;

/// A tile matrix set offered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileMatrixSet {
    WebMercatorQuad,
    Cgcs2000Quad,
}

impl TileMatrixSet {
    pub const ALL: [TileMatrixSet; 2] = [TileMatrixSet::WebMercatorQuad, TileMatrixSet::Cgcs2000Quad];

    /// The identifier in URLs and documents.
    pub fn id(self) -> &'static str {
        match self {
            TileMatrixSet::WebMercatorQuad => "WebMercatorQuad",
            TileMatrixSet::Cgcs2000Quad => "CGCS2000Quad",
        }
    }

    /// Parses an identifier (case-insensitive; WMTS's `GoogleMapsCompatible` and the EPSG codes
    /// are accepted as aliases).
    pub fn from_id(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "webmercatorquad" | "googlemapscompatible" | "epsg:3857" | "3857" => Ok(TileMatrixSet::WebMercatorQuad),
            "cgcs2000quad" | "epsg:4490" | "4490" => Ok(TileMatrixSet::Cgcs2000Quad),
            _ => Err(TileError::UnknownMatrixSet(s.to_owned())),
        }
    }

    /// A short stable number for cache keys.
    pub fn code(self) -> u8 {
        match self {
            TileMatrixSet::WebMercatorQuad => 0,
            TileMatrixSet::Cgcs2000Quad => 1,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        TileMatrixSet::ALL.into_iter().find(|t| t.code() == c)
    }

    pub fn epsg(self) -> u32 {
        match self {
            TileMatrixSet::WebMercatorQuad => 3857,
            TileMatrixSet::Cgcs2000Quad => 4490,
        }
    }

    pub fn crs_uri(self) -> String {
        format!("http://www.opengis.net/def/crs/EPSG/0/{}", self.epsg())
    }

    /// Human title, zh-CN first.
    pub fn title(self) -> &'static str {
        match self {
            TileMatrixSet::WebMercatorQuad => "Web 墨卡托 (Google Maps Compatible, EPSG:3857)",
            TileMatrixSet::Cgcs2000Quad => "CGCS2000 经纬度格网 (EPSG:4490, WorldCRS84Quad 布局)",
        }
    }

    /// Columns and rows of the matrix at zoom `z`.
    pub fn matrix_size(self, z: u8) -> (u64, u64) {
        let n = 1u64 << z;
        match self {
            TileMatrixSet::WebMercatorQuad => (n, n),
            TileMatrixSet::Cgcs2000Quad => (2 * n, n),
        }
    }

    /// Top-left corner of the matrix in the set's CRS, as (x/easting/longitude, y/northing/latitude).
    pub fn origin(self) -> (f64, f64) {
        match self {
            TileMatrixSet::WebMercatorQuad => {
                (-std::f64::consts::PI * EARTH_RADIUS, std::f64::consts::PI * EARTH_RADIUS)
            }
            TileMatrixSet::Cgcs2000Quad => (-180.0, 90.0),
        }
    }

    /// Width of a tile in the set's CRS units at zoom `z`.
    pub fn tile_span(self, z: u8) -> f64 {
        let n = (1u64 << z) as f64;
        match self {
            TileMatrixSet::WebMercatorQuad => 2.0 * std::f64::consts::PI * EARTH_RADIUS / n,
            TileMatrixSet::Cgcs2000Quad => 180.0 / n,
        }
    }

    /// CRS units per pixel of a 256-pixel tile at zoom `z`.
    pub fn cell_size(self, z: u8) -> f64 {
        self.tile_span(z) / 256.0
    }

    /// Scale denominator at zoom `z` for a 0.28 mm pixel (degrees are converted with the
    /// equatorial metres per degree, as OGC's WorldCRS84Quad does).
    pub fn scale_denominator(self, z: u8) -> f64 {
        let metres_per_unit = match self {
            TileMatrixSet::WebMercatorQuad => 1.0,
            TileMatrixSet::Cgcs2000Quad => 2.0 * std::f64::consts::PI * EARTH_RADIUS / 360.0,
        };
        self.cell_size(z) * metres_per_unit / PIXEL_SIZE_M
    }

    /// The area the matrix covers, lon/lat.
    pub fn bounds(self) -> Bbox {
        match self {
            TileMatrixSet::WebMercatorQuad => {
                Bbox { min_x: -180.0, min_y: -MERCATOR_MAX_LAT, max_x: 180.0, max_y: MERCATOR_MAX_LAT }
            }
            TileMatrixSet::Cgcs2000Quad => Bbox { min_x: -180.0, min_y: -90.0, max_x: 180.0, max_y: 90.0 },
        }
    }

    /// Position of lon/lat in units of zoom-0 tiles from the matrix origin (x right, y down).
    /// Latitudes beyond Web Mercator's limit are clamped to it.
    pub fn unit(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            TileMatrixSet::WebMercatorQuad => {
                let lat = lat.clamp(-MERCATOR_MAX_LAT, MERCATOR_MAX_LAT).to_radians();
                let x = (lon + 180.0) / 360.0;
                let y = (1.0 - lat.tan().asinh() / std::f64::consts::PI) / 2.0;
                (x, y)
            }
            TileMatrixSet::Cgcs2000Quad => ((lon + 180.0) / 180.0, (90.0 - lat) / 180.0),
        }
    }

    /// The inverse of [`TileMatrixSet::unit`].
    pub fn lonlat(self, ux: f64, uy: f64) -> (f64, f64) {
        match self {
            TileMatrixSet::WebMercatorQuad => {
                let lon = ux * 360.0 - 180.0;
                let lat = (std::f64::consts::PI * (1.0 - 2.0 * uy)).sinh().atan().to_degrees();
                (lon, lat)
            }
            TileMatrixSet::Cgcs2000Quad => (ux * 180.0 - 180.0, 90.0 - uy * 180.0),
        }
    }

    /// The tile's extent in lon/lat, grown by `buffer` (a fraction of the tile's width) on every side.
    pub fn tile_bbox(self, t: TileId, buffer: f64) -> Bbox {
        let n = (1u64 << t.z) as f64;
        let (min_lon, max_lat) = self.lonlat((f64::from(t.x) - buffer) / n, (f64::from(t.y) - buffer) / n);
        let (max_lon, min_lat) = self.lonlat((f64::from(t.x) + 1.0 + buffer) / n, (f64::from(t.y) + 1.0 + buffer) / n);
        Bbox { min_x: min_lon, min_y: min_lat, max_x: max_lon, max_y: max_lat }
    }

    /// The tile's extent in the set's own CRS (metres or degrees): (min_x, min_y, max_x, max_y).
    pub fn tile_extent_native(self, t: TileId) -> [f64; 4] {
        let (ox, oy) = self.origin();
        let s = self.tile_span(t.z);
        let min_x = ox + f64::from(t.x) * s;
        let max_y = oy - f64::from(t.y) * s;
        [min_x, max_y - s, min_x + s, max_y]
    }

    /// The tile at zoom `z` holding lon/lat (latitudes clamped as in [`TileMatrixSet::unit`]; a
    /// point on the last edge belongs to the last tile).
    pub fn tile_at(self, lon: f64, lat: f64, z: u8) -> TileId {
        let (ux, uy) = self.unit(lon, lat);
        let (cols, rows) = self.matrix_size(z);
        let n = (1u64 << z) as f64;
        let cell = |u: f64, count: u64| ((u * n).floor().max(0.0) as u64).min(count.saturating_sub(1)) as u32;
        TileId { z, x: cell(ux, cols), y: cell(uy, rows) }
    }

    /// Checks `z/x/y` lies inside the matrix.
    pub fn tile(self, z: u8, x: u32, y: u32) -> Result<TileId> {
        if z > MAX_ZOOM {
            return Err(TileError::Zoom { z, max: MAX_ZOOM });
        }
        let (cols, rows) = self.matrix_size(z);
        if u64::from(x) >= cols || u64::from(y) >= rows {
            return Err(TileError::OutsideMatrix { tms: self, z, x, y, cols, rows });
        }
        Ok(TileId { z, x, y })
    }

    /// The tiles at zoom `z` whose extent grown by `buffer` (fraction of a tile) meets `bbox`
    /// (lon/lat): exactly the tiles whose content a feature inside `bbox` can appear in. `None`
    /// when `bbox` lies outside the matrix.
    pub fn tiles_for(self, bbox: &Bbox, z: u8, buffer: f64) -> Option<TileRange> {
        let world = self.bounds();
        if !bbox.intersects(&world) || ![bbox.min_x, bbox.min_y, bbox.max_x, bbox.max_y].iter().all(|v| v.is_finite()) {
            return None;
        }
        let n = (1u64 << z) as f64;
        let (x0, y0) = self.unit(bbox.min_x, bbox.max_y);
        let (x1, y1) = self.unit(bbox.max_x, bbox.min_y);
        let (cols, rows) = self.matrix_size(z);
        // Tile t's buffered extent is [t - b, t + 1 + b] in zoom-z tile units; it meets [a, c]
        // when a - 1 - b <= t <= c + b.
        let lo = |v: f64| ((v * n - 1.0 - buffer).ceil().max(0.0)) as u64;
        let hi = |v: f64, count: u64| ((v * n + buffer).floor().max(0.0) as u64).min(count - 1);
        let r = TileRange {
            z,
            min_x: lo(x0).min(cols - 1) as u32,
            min_y: lo(y0).min(rows - 1) as u32,
            max_x: hi(x1, cols) as u32,
            max_y: hi(y1, rows) as u32,
        };
        (r.min_x <= r.max_x && r.min_y <= r.max_y).then_some(r)
    }

    /// The projection of lon/lat into tile `t`'s pixel space with `extent` units per side.
    pub fn projector(self, t: TileId, extent: u32) -> TileProjector {
        let n = (1u64 << t.z) as f64;
        TileProjector { tms: self, scale: n * f64::from(extent), x0: f64::from(t.x), y0: f64::from(t.y), n }
    }
}

impl fmt::Display for TileMatrixSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One tile: zoom, column, row (from the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// An inclusive rectangle of tiles at one zoom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRange {
    pub z: u8,
    pub min_x: u32,
    pub min_y: u32,
    pub max_x: u32,
    pub max_y: u32,
}

impl TileRange {
    pub fn count(&self) -> u64 {
        (u64::from(self.max_x - self.min_x) + 1) * (u64::from(self.max_y - self.min_y) + 1)
    }

    pub fn contains(&self, t: TileId) -> bool {
        t.z == self.z && (self.min_x..=self.max_x).contains(&t.x) && (self.min_y..=self.max_y).contains(&t.y)
    }

    /// Row by row, west to east.
    pub fn iter(&self) -> impl Iterator<Item = TileId> + '_ {
        let z = self.z;
        (self.min_y..=self.max_y).flat_map(move |y| (self.min_x..=self.max_x).map(move |x| TileId { z, x, y }))
    }
}

/// Maps lon/lat into one tile's pixel grid (x right, y down, `extent` units per side; outside the
/// tile gives values below 0 or above `extent`).
#[derive(Debug, Clone, Copy)]
pub struct TileProjector {
    tms: TileMatrixSet,
    scale: f64,
    x0: f64,
    y0: f64,
    n: f64,
}

impl TileProjector {
    #[inline]
    pub fn project(&self, lon: f64, lat: f64) -> (f64, f64) {
        let (ux, uy) = self.tms.unit(lon, lat);
        ((ux - self.x0 / self.n) * self.scale, (uy - self.y0 / self.n) * self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WM: TileMatrixSet = TileMatrixSet::WebMercatorQuad;
    const CG: TileMatrixSet = TileMatrixSet::Cgcs2000Quad;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    fn tile_of(tms: TileMatrixSet, lon: f64, lat: f64, z: u8) -> (u32, u32) {
        let t = tms.tile_at(lon, lat, z);
        (t.x, t.y)
    }

    #[test]
    fn known_tiles() {
        // Wuhan 光谷 (114.4, 30.5): XYZ tiles checked against slippy-map formulas.
        let check = |tms, lon, lat, z, expected: (u32, u32)| assert_eq!(tile_of(tms, lon, lat, z), expected);
        check(WM, 114.4, 30.5, 0, (0, 0));
        check(WM, 114.4, 30.5, 10, (837, 420));
        check(WM, 114.4, 30.5, 16, (53_593, 26_933));
        check(WM, -0.1, 51.5, 12, (2046, 1362));
        check(CG, 114.4, 30.5, 0, (1, 0));
        check(CG, 114.4, 30.5, 1, (3, 0));
        check(CG, -179.9, -89.9, 3, (0, 7));
    }

    #[test]
    fn matrix_definitions_match_ogc() {
        // OGC 17-083r4 Annex D: WebMercatorQuad level 0 and 18; WorldCRS84Quad level 0.
        assert!(close(WM.scale_denominator(0), 559_082_264.028_717_8, 1e-6));
        assert!(close(WM.cell_size(0), 156_543.033_928_041, 1e-6));
        assert!(close(WM.scale_denominator(18), 2_132.729_583_849_784, 1e-6));
        assert!(close(CG.cell_size(0), 0.703_125, 1e-12));
        assert!(close(CG.scale_denominator(0), 279_541_132.014_358_76, 1e-4));
        assert_eq!(WM.matrix_size(3), (8, 8));
        assert_eq!(CG.matrix_size(3), (16, 8));
        assert_eq!(CG.tile_extent_native(TileId { z: 0, x: 1, y: 0 }), [0.0, -90.0, 180.0, 90.0]);
    }

    #[test]
    fn ids_and_ranges() {
        assert_eq!(TileMatrixSet::from_id("webmercatorquad").unwrap(), WM);
        assert_eq!(TileMatrixSet::from_id("GoogleMapsCompatible").unwrap(), WM);
        assert_eq!(TileMatrixSet::from_id("CGCS2000Quad").unwrap(), CG);
        assert!(TileMatrixSet::from_id("WorldMercatorWGS84Quad").unwrap_err().to_string().contains("WebMercatorQuad"));
        assert!(WM.tile(2, 3, 3).is_ok());
        assert_eq!(
            WM.tile(2, 4, 0).unwrap_err().to_string(),
            "tile 2/4/0 is outside WebMercatorQuad: zoom 2 has 4 columns and 4 rows"
        );
        assert!(CG.tile(2, 7, 3).is_ok());
        assert!(CG.tile(2, 7, 4).is_err());
        assert!(WM.tile(25, 0, 0).unwrap_err().to_string().contains("zoom 25"));
    }

    #[test]
    fn tile_bbox_round_trips() {
        for tms in TileMatrixSet::ALL {
            let t = TileId { z: 14, x: 13_405, y: 6_755 };
            let b = tms.tile_bbox(t, 0.0);
            let r = tms
                .tiles_for(
                    &Bbox {
                        min_x: b.min_x + 1e-9,
                        min_y: b.min_y + 1e-9,
                        max_x: b.max_x - 1e-9,
                        max_y: b.max_y - 1e-9,
                    },
                    14,
                    0.0,
                )
                .unwrap();
            assert_eq!((r.min_x, r.min_y, r.max_x, r.max_y), (t.x, t.y, t.x, t.y), "{tms}");
            let p = tms.projector(t, 4096);
            let (x, y) = p.project(b.min_x, b.max_y);
            assert!(close(x, 0.0, 1e-6) && close(y, 0.0, 1e-6), "{tms}: {x} {y}");
            let (x, y) = p.project(b.max_x, b.min_y);
            assert!(close(x, 4096.0, 1e-6) && close(y, 4096.0, 1e-6), "{tms}: {x} {y}");
        }
    }

    #[test]
    fn buffered_ranges_include_neighbours() {
        // A point just inside the west edge of tile x touches tile x-1 through its buffer.
        let t = TileId { z: 12, x: 3300, y: 1700 };
        let b = WM.tile_bbox(t, 0.0);
        let lon = b.min_x + (b.max_x - b.min_x) * 0.001;
        let lat = (b.min_y + b.max_y) / 2.0;
        let p = Bbox { min_x: lon, min_y: lat, max_x: lon, max_y: lat };
        let r = WM.tiles_for(&p, 12, 64.0 / 4096.0).unwrap();
        assert_eq!((r.min_x, r.max_x, r.min_y, r.max_y), (3299, 3300, 1700, 1700));
        let r = WM.tiles_for(&p, 12, 0.0).unwrap();
        assert_eq!(r.count(), 1);
        assert!(r.contains(t));
        // Outside the matrix (beyond Mercator's limit) gives nothing; the whole world everything.
        assert!(WM.tiles_for(&Bbox { min_x: 0.0, min_y: 86.0, max_x: 1.0, max_y: 89.0 }, 3, 0.0).is_none());
        assert_eq!(CG.tiles_for(&CG.bounds(), 2, 0.0).unwrap().count(), 32);
        assert_eq!(WM.tiles_for(&WM.bounds(), 2, 0.1).unwrap().count(), 16);
    }

    proptest::proptest! {
        #[test]
        fn a_point_is_in_the_range_of_its_own_tile(lon in -179.99f64..179.99, lat in -85.0f64..85.0, z in 0u8..=20) {
            for tms in TileMatrixSet::ALL {
                let (x, y) = tile_of(tms, lon, lat, z);
                let r = tms.tiles_for(&Bbox { min_x: lon, min_y: lat, max_x: lon, max_y: lat }, z, 64.0 / 4096.0).unwrap();
                let t = TileId { z, x, y };
                proptest::prop_assert!(r.contains(t));
                proptest::prop_assert!(r.count() <= 4);
                let (px, py) = tms.projector(TileId { z, x, y }, 4096).project(lon, lat);
                proptest::prop_assert!((-1e-6..=4096.0 + 1e-6).contains(&px) && (-1e-6..=4096.0 + 1e-6).contains(&py));
            }
        }
    }
}
