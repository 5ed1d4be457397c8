//! Coordinate transformation between any two supported CRSs: the one module where coordinates
//! change space.
//!
//! A [`Transform`] is a short chain of steps built once per `(from, to)` pair:
//! - PROJ (`proj_create_crs_to_crs` + `normalize_for_visualization`, so x = longitude/easting)
//!   for EPSG ↔ EPSG;
//! - the GCJ-02 / BD-09 offsets of `shikong-geodesy` for the pseudo-CRSs, which chain through
//!   WGS 84. CGCS2000 and WGS 84 are treated as identical at that step: they differ by
//!   centimetres, far below GCJ-02's own noise, and PROJ itself relates EPSG:4490 and EPSG:4326 by
//!   a "ballpark" null transformation (which is why a purely geographic chain such as
//!   EPSG:4490 → GCJ02 does not touch PROJ at all).
//!
//! Heights (Z) pass through unchanged: every operation between our CRSs is horizontal (PROJ's
//! pipelines for them are 2-D), and no height datum is converted (see `shikong-geodesy`).
//!
//! # PROJ, offline
//! PROJ is built from source by `proj-sys` as a static library with `proj.db` embedded in it
//! (PROJ's `EMBED_RESOURCE_FILES`, on by default for static builds), without curl or libtiff:
//! there is no network grid fetching, and no file or environment variable is needed at run time.
//! PROJ still looks for a `proj.db` file first — in `~/.local/share/proj`, then `PROJ_DATA` (or
//! else the build tree's `share/proj`, which exists only on the machine that compiled us), then
//! `./proj.db` — and uses the embedded copy when none is found (checked with `strace` and by the
//! `proj_db_is_embedded` test, which runs with `PROJ_DATA` and `HOME` pointing at an empty
//! directory). A `proj.db` from an older PROJ in one of those places (Debian's 9.1, say) would be
//! refused by PROJ, and [`Transform::new`] then fails with PROJ's message: leave `PROJ_DATA` unset
//! for shikong.
//!
//! # Threads
//! PROJ objects belong to one thread (each `Transform` owns a PROJ context), so [`Transform`] is
//! neither `Send` nor `Sync`. Servers use [`with_transform`] / [`transform_geometry`], which keep a
//! per-thread cache keyed by `(from, to)`: the first use on a thread pays the setup (a few
//! milliseconds to read the embedded database), later uses none. The cache holds at most one
//! entry per pair of supported CRSs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use shikong_geodesy::offset;
use shikong_model::{Coord, Crs, Geometry, GeometryError};

use crate::codes::check_supported;
use crate::error::{CrsError, Result};

/// Points per PROJ batch call.
const CHUNK: usize = 4096;

/// One stage of a transformation.
enum Step {
    Proj(proj::Proj),
    Offset { name: &'static str, f: fn(f64, f64) -> (f64, f64) },
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Proj(_) => f.write_str("PROJ"),
            Step::Offset { name, .. } => f.write_str(name),
        }
    }
}

/// A transformation from one CRS to another, x = longitude/easting, y = latitude/northing on both
/// sides. Not `Send`: see the module docs.
#[derive(Debug)]
pub struct Transform {
    from: Crs,
    to: Crs,
    steps: Vec<Step>,
}

/// How far a geographic CRS is from WGS 84 along the offset chain: 0 = WGS 84/CGCS2000, 1 = GCJ-02,
/// 2 = BD-09. `None` for projected CRSs.
fn offset_level(crs: Crs) -> Option<u8> {
    match crs {
        Crs::Epsg(4326 | 4490) | Crs::Crs84 => Some(0),
        Crs::Gcj02 => Some(1),
        Crs::Bd09 => Some(2),
        Crs::Epsg(_) => None,
    }
}

fn offsets_between(from: u8, to: u8) -> Vec<Step> {
    let up = [
        Step::Offset { name: "WGS 84 → GCJ-02", f: offset::wgs84_to_gcj02 },
        Step::Offset { name: "GCJ-02 → BD-09", f: offset::gcj02_to_bd09 },
    ];
    let down = [
        Step::Offset { name: "GCJ-02 → WGS 84", f: offset::gcj02_to_wgs84 },
        Step::Offset { name: "BD-09 → GCJ-02", f: offset::bd09_to_gcj02 },
    ];
    if from <= to {
        up.into_iter().skip(from.into()).take((to - from).into()).collect()
    } else {
        down.into_iter().skip(to.into()).take((from - to).into()).rev().collect()
    }
}

fn epsg_code(crs: Crs) -> String {
    // Only called for CRSs with an EPSG code (CRS84 → 4326; its axis order is normalised anyway).
    format!("EPSG:{}", crs.epsg().unwrap_or(4326))
}

impl Transform {
    /// Builds the transformation; fails for unsupported codes (with the list of supported ones).
    pub fn new(from: Crs, to: Crs) -> Result<Transform> {
        check_supported(from)?;
        check_supported(to)?;
        let steps = match (offset_level(from), offset_level(to)) {
            // Both geographic: offsets only (EPSG:4326 ↔ 4490 is PROJ's null "ballpark" operation).
            (Some(a), Some(b)) => offsets_between(a, b),
            (a, b) => {
                let proj_from = if a.is_some() { Crs::WGS84 } else { from };
                let proj_to = if b.is_some() { Crs::WGS84 } else { to };
                let mut steps = offsets_between(a.unwrap_or(0), 0);
                let p = proj::Proj::new_known_crs(&epsg_code(proj_from), &epsg_code(proj_to), None)
                    .map_err(|e| CrsError::Build { from, to, message: e.to_string() })?;
                steps.push(Step::Proj(p));
                steps.extend(offsets_between(0, b.unwrap_or(0)));
                steps
            }
        };
        Ok(Transform { from, to, steps })
    }

    pub fn from(&self) -> Crs {
        self.from
    }

    pub fn to(&self) -> Crs {
        self.to
    }

    /// Transforms `points` (x, y) in place. Input is checked first (finite numbers; latitude within
    /// ±90° for geographic sources) and output must be finite; errors name the first bad point.
    pub fn convert_xy(&self, points: &mut [(f64, f64)]) -> Result<()> {
        let geographic = self.from.is_geographic();
        for (index, &(x, y)) in points.iter().enumerate() {
            for v in [x, y] {
                if !v.is_finite() {
                    return Err(GeometryError::NotFinite { index, value: v.to_string() }.into());
                }
            }
            if geographic && !(-90.0..=90.0).contains(&y) {
                return Err(GeometryError::LatitudeOutOfRange { index, lat: y }.into());
            }
        }
        // In chunks: PROJ's batch call copies its input, and a chunk's copy (and ours, kept to name
        // a failing point by its input value) stays in cache.
        let mut original = Vec::with_capacity(CHUNK.min(points.len()));
        for (c, chunk) in points.chunks_mut(CHUNK).enumerate() {
            let base = c * CHUNK;
            original.clear();
            original.extend_from_slice(chunk);
            for step in &self.steps {
                match step {
                    Step::Offset { f, .. } => chunk.iter_mut().for_each(|p| *p = f(p.0, p.1)),
                    Step::Proj(p) => {
                        if let Err(e) = p.convert_array(chunk) {
                            return Err(self.locate_failure(base, &original, &e.to_string()));
                        }
                    }
                }
            }
            if let Some(i) = chunk.iter().position(|p| !p.0.is_finite() || !p.1.is_finite()) {
                let (x, y) = original[i];
                return Err(self.point_error(base + i, x, y, "the result is not finite".to_owned()));
            }
        }
        Ok(())
    }

    /// After a batch failed in PROJ, finds the first point that fails on its own, for the message.
    fn locate_failure(&self, base: usize, original: &[(f64, f64)], batch_message: &str) -> CrsError {
        for (i, &(x, y)) in original.iter().enumerate() {
            let mut one = [(x, y)];
            let mut p = &mut one[..];
            for step in &self.steps {
                match step {
                    Step::Offset { f, .. } => p[0] = f(p[0].0, p[0].1),
                    Step::Proj(proj) => match proj.convert_array(p) {
                        Ok(done) => p = done,
                        Err(e) => return self.point_error(base + i, x, y, e.to_string()),
                    },
                }
            }
        }
        let (x, y) = original.first().copied().unwrap_or((f64::NAN, f64::NAN));
        self.point_error(base, x, y, batch_message.to_owned())
    }

    fn point_error(&self, index: usize, x: f64, y: f64, message: String) -> CrsError {
        CrsError::Point { index, coord: format!("({x} {y})"), from: self.from, to: self.to, message }
    }

    /// Transforms one coordinate; Z is kept.
    pub fn convert(&self, c: Coord) -> Result<Coord> {
        if let Some(z) = c.z.filter(|z| !z.is_finite()) {
            return Err(GeometryError::NotFinite { index: 0, value: z.to_string() }.into());
        }
        let mut p = [(c.x, c.y)];
        self.convert_xy(&mut p)?;
        Ok(Coord { x: p[0].0, y: p[0].1, z: c.z })
    }

    /// Transforms every coordinate of a geometry (any type; Z kept), after checking its structure.
    pub fn geometry(&self, g: &Geometry) -> Result<Geometry> {
        g.validate()?;
        let mut xy = Vec::with_capacity(g.coord_count());
        g.for_each_coord(|c| xy.push((c.x, c.y)));
        self.convert_xy(&mut xy)?;
        let mut it = xy.into_iter();
        let mapped: std::result::Result<Geometry, GeometryError> = g.try_map_coords(|c| {
            // Same traversal order as `for_each_coord`, so the iterator cannot run short.
            let (x, y) = it.next().ok_or(GeometryError::Empty("transformed coordinates"))?;
            Ok(Coord { x, y, z: c.z })
        });
        Ok(mapped?)
    }

    /// The steps, for logs and `Debug` (e.g. `["GCJ-02 → WGS 84", "PROJ"]`).
    pub fn describe(&self) -> String {
        if self.steps.is_empty() {
            return format!("{} → {}: identity", self.from, self.to);
        }
        let steps: Vec<String> = self.steps.iter().map(|s| format!("{s:?}")).collect();
        format!("{} → {}: {}", self.from, self.to, steps.join(", "))
    }
}

thread_local! {
    static CACHE: RefCell<HashMap<(Crs, Crs), Rc<Transform>>> = RefCell::new(HashMap::new());
}

/// Runs `f` with this thread's cached transformation `from → to`, building it on first use.
pub fn with_transform<R>(from: Crs, to: Crs, f: impl FnOnce(&Transform) -> R) -> Result<R> {
    let cached = CACHE.with(|c| c.borrow().get(&(from, to)).cloned());
    let t = match cached {
        Some(t) => t,
        None => {
            let t = Rc::new(Transform::new(from, to)?);
            CACHE.with(|c| c.borrow_mut().insert((from, to), Rc::clone(&t)));
            t
        }
    };
    // The cache is not borrowed while `f` runs, so `f` may itself transform.
    Ok(f(&t))
}

/// Transforms a geometry with this thread's cached transformation (the entry point for servers
/// and importers).
pub fn transform_geometry(g: &Geometry, from: Crs, to: Crs) -> Result<Geometry> {
    with_transform(from, to, |t| t.geometry(g))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(from: Crs, to: Crs, input: (f64, f64), expected: (f64, f64), tol: f64) {
        let t = Transform::new(from, to).unwrap();
        let got = t.convert(Coord::xy(input.0, input.1)).unwrap();
        assert!(
            (got.x - expected.0).abs() <= tol && (got.y - expected.1).abs() <= tol,
            "{}: {input:?} gave ({} {}), expected {expected:?}",
            t.describe(),
            got.x,
            got.y
        );
    }

    const WUHAN: (f64, f64) = (114.3055, 30.5928);
    const WUHAN_4547: (f64, f64) = (529_299.860_317_495_1, 3_385_869.453_411_797);
    const WUHAN_GCJ: (f64, f64) = (114.310_944_888_431_75, 30.590_390_564_305_725);
    const WUHAN_BD: (f64, f64) = (114.317_512_681_826_8, 30.596_099_925_786_2);

    #[test]
    fn known_points() {
        let e = Crs::Epsg;
        check(e(4490), e(4547), WUHAN, WUHAN_4547, 1e-6);
        check(e(4547), e(4490), WUHAN_4547, WUHAN, 1e-10);
        check(e(4490), e(4526), WUHAN, (38_000_000.0 + WUHAN_4547.0, WUHAN_4547.1), 1e-6);
        check(e(4490), e(4490), WUHAN, WUHAN, 0.0);
        check(Crs::Crs84, e(4326), WUHAN, WUHAN, 0.0);
        check(e(4326), Crs::Gcj02, WUHAN, WUHAN_GCJ, 1e-12);
        check(Crs::Gcj02, Crs::Bd09, WUHAN_GCJ, WUHAN_BD, 1e-12);
        check(Crs::Bd09, e(4490), WUHAN_BD, WUHAN, 1e-10);
        check(Crs::Bd09, Crs::Gcj02, WUHAN_BD, WUHAN_GCJ, 1e-10);
        check(Crs::Gcj02, e(4547), WUHAN_GCJ, WUHAN_4547, 1e-4);
        check(e(4547), Crs::Bd09, WUHAN_4547, WUHAN_BD, 1e-10);
    }

    #[test]
    fn chains_are_as_short_as_possible() {
        let d = |a, b| Transform::new(a, b).unwrap().describe();
        assert_eq!(d(Crs::CGCS2000, Crs::WGS84), "EPSG:4490 → EPSG:4326: identity");
        assert_eq!(d(Crs::Gcj02, Crs::Bd09), "GCJ02 → BD09: GCJ-02 → BD-09");
        assert_eq!(d(Crs::Bd09, Crs::CGCS2000), "BD09 → EPSG:4490: BD-09 → GCJ-02, GCJ-02 → WGS 84");
        assert_eq!(d(Crs::Bd09, Crs::Epsg(4547)), "BD09 → EPSG:4547: BD-09 → GCJ-02, GCJ-02 → WGS 84, PROJ");
        assert_eq!(d(Crs::Epsg(3857), Crs::Gcj02), "EPSG:3857 → GCJ02: PROJ, WGS 84 → GCJ-02");
    }

    #[test]
    fn geometries_keep_their_shape_and_z() {
        let g = shikong_model::wkt::parse(
            "MULTIPOLYGON Z (((114 30 1,115 30 2,115 31 3,114 30 1)),((114.2 30.2 5,114.3 30.2 5,114.3 30.3 5,114.2 30.2 5)))",
        )
        .unwrap();
        let t = Transform::new(Crs::CGCS2000, Crs::Epsg(4547)).unwrap();
        let out = t.geometry(&g).unwrap();
        assert_eq!(out.kind(), g.kind());
        assert_eq!(out.coord_count(), g.coord_count());
        let mut zs = Vec::new();
        out.for_each_coord(|c| zs.push(c.z));
        assert_eq!(zs, [1., 2., 3., 1., 5., 5., 5., 5.].map(Some));
        let back = Transform::new(Crs::Epsg(4547), Crs::CGCS2000).unwrap().geometry(&out).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        g.for_each_coord(|c| a.push(*c));
        back.for_each_coord(|c| b.push(*c));
        for (p, q) in a.iter().zip(&b) {
            assert!((p.x - q.x).abs() < 1e-9 && (p.y - q.y).abs() < 1e-9 && p.z == q.z, "{p} {q}");
        }
        for wkt in ["POINT (114 30)", "LINESTRING (114 30,115 31)", "MULTIPOINT ((114 30),(115 31))"] {
            let g = shikong_model::wkt::parse(wkt).unwrap();
            assert_eq!(transform_geometry(&g, Crs::Gcj02, Crs::WEB_MERCATOR).unwrap().kind(), g.kind());
        }
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let t = Transform::new(Crs::CGCS2000, Crs::Epsg(4547)).unwrap();
        let err = |t: &Transform, x: f64, y: f64| t.convert(Coord::xy(x, y)).unwrap_err().to_string();
        assert_eq!(err(&t, f64::NAN, 30.0), "invalid geometry: coordinate 0 is not a finite number (NaN)");
        assert_eq!(err(&t, 114.0, 91.0), "invalid geometry: latitude 91 at coordinate 0 is beyond ±90°");
        assert_eq!(err(&t, 114.0, f64::INFINITY), "invalid geometry: coordinate 0 is not a finite number (inf)");
        // Projected input has no latitude check, but PROJ's own domain errors are reported per point.
        let inv = Transform::new(Crs::Epsg(4547), Crs::CGCS2000).unwrap();
        let mut pts = [(500_000.0, 3_000_000.0), (1e15, 1e15)];
        let e = inv.convert_xy(&mut pts).unwrap_err().to_string();
        assert!(e.starts_with("coordinate 1 (1000000000000000 1000000000000000) cannot be transformed"), "{e}");
        let open = shikong_model::wkt::parse("POLYGON ((114 30,115 30,115 31,114 31))").unwrap();
        assert!(t.geometry(&open).unwrap_err().to_string().contains("not closed"));
        let e = Transform::new(Crs::Epsg(9999), Crs::CGCS2000).unwrap_err().to_string();
        assert!(e.starts_with("unknown CRS `EPSG:9999`; supported:"), "{e}");
    }

    #[test]
    fn the_thread_cache_reuses_and_allows_nesting() {
        let n = with_transform(Crs::CGCS2000, Crs::Epsg(4547), |_| {
            with_transform(Crs::Epsg(4547), Crs::CGCS2000, |_| 2).unwrap() + 1
        })
        .unwrap();
        assert_eq!(n, 3);
        let p1 = with_transform(Crs::CGCS2000, Crs::Epsg(4547), |t| std::ptr::from_ref(t) as usize).unwrap();
        let p2 = with_transform(Crs::CGCS2000, Crs::Epsg(4547), |t| std::ptr::from_ref(t) as usize).unwrap();
        assert_eq!(p1, p2);
    }
}
