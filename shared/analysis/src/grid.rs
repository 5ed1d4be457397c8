//! A square grid of metres laid over longitude/latitude: the bins of the emerging hot-spot cube
//! and the cells of grid aggregation.
//!
//! Why this projection: bins are compared by their counts, so every bin must cover the same
//! ground area, whatever its latitude. The grid lives on the ellipsoidal sinusoidal projection
//! centred on a meridian `λ0` (by default the middle of the data's longitudes):
//!
//! - `y = M(φ)`, the meridian arc from the equator (exact, Helmert's series in the third
//!   flattening, good to well under a micrometre);
//! - `x = N(φ)·cos φ·(λ - λ0)`, the true length along the parallel.
//!
//! It is equal-area on the CGCS2000 ellipsoid (its Jacobian is `N cos φ · ρ`, the area element),
//! so a cell of `c` metres covers exactly `c²` m²; lengths are true along every parallel and along
//! the central meridian, and shapes shear by about `sin φ · Δλ` away from it (0.25° at 30°N and
//! half a degree of longitude off: a city or a prefecture is far inside this). A Gauss–Krüger
//! grid would keep shapes instead of areas; for counting, areas matter. The data may reach at
//! most [`MAX_HALF_SPAN_DEG`] of longitude either side of `λ0`, and at most [`MAX_ABS_LAT_DEG`]
//! of latitude (beyond that the parallels shrink too fast for square cells to mean much).
//!
//! Cell `(i, j)` covers `x ∈ [i·c, (i+1)·c)`, `y ∈ [j·c, (j+1)·c)`; its south and north edges are
//! parallels, its east and west edges are curves that [`Grid::cell_polygon`] draws as straight
//! lines between the corners (a few millimetres off for cells of a kilometre).

use shikong_geodesy::measure::{CGCS2000_A, CGCS2000_INV_F};

use crate::error::{AnalysisError, Result};
use crate::geodesic::LonLat;

/// Longitude (degrees) a grid may reach either side of its central meridian.
pub const MAX_HALF_SPAN_DEG: f64 = 15.0;
/// Highest absolute latitude (degrees) a grid may reach.
pub const MAX_ABS_LAT_DEG: f64 = 85.0;
/// Smallest cell side, metres.
pub const MIN_CELL_M: f64 = 1.0;
/// Largest cell side, metres.
pub const MAX_CELL_M: f64 = 100_000.0;

fn f() -> f64 {
    1.0 / CGCS2000_INV_F
}

fn e2() -> f64 {
    f() * (2.0 - f())
}

/// The meridian arc from the equator to latitude `phi` (radians), metres (Helmert's series).
pub(crate) fn meridian_arc(phi: f64) -> f64 {
    let n = f() / (2.0 - f());
    let (n2, n3, n4) = (n * n, n * n * n, n * n * n * n);
    let a = CGCS2000_A / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0);
    a * (phi
        + (-1.5 * n + 9.0 / 16.0 * n3) * (2.0 * phi).sin()
        + (15.0 / 16.0 * n2 - 15.0 / 32.0 * n4) * (4.0 * phi).sin()
        - 35.0 / 48.0 * n3 * (6.0 * phi).sin()
        + 315.0 / 512.0 * n4 * (8.0 * phi).sin())
}

/// The latitude (radians) whose meridian arc is `y` metres: Newton's method on `dM/dφ = ρ`.
fn latitude_of_arc(y: f64) -> f64 {
    let e2 = e2();
    let mut phi = y / CGCS2000_A;
    for _ in 0..8 {
        let s = phi.sin();
        let rho = CGCS2000_A * (1.0 - e2) / (1.0 - e2 * s * s).powf(1.5);
        let step = (meridian_arc(phi) - y) / rho;
        phi -= step;
        if step.abs() < 1e-15 {
            break;
        }
    }
    phi
}

/// Radius of the parallel at latitude `phi` (radians): `N(φ)·cos φ`.
fn parallel_radius(phi: f64) -> f64 {
    let s = phi.sin();
    CGCS2000_A / (1.0 - e2() * s * s).sqrt() * phi.cos()
}

/// A square grid of `cell_m` metres on the equal-area projection centred on `central_meridian`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub central_meridian: f64,
    pub cell_m: f64,
}

impl Grid {
    /// A grid of `cell_m` metres centred on `central_meridian`, or on the middle of the points'
    /// longitudes when `None`; every point must be within the grid's reach (see the module docs).
    /// The points are assumed checked by [`crate::geodesic::check_points`].
    pub fn over(points: &[LonLat], cell_m: f64, central_meridian: Option<f64>) -> Result<Self> {
        if !(cell_m.is_finite() && (MIN_CELL_M..=MAX_CELL_M).contains(&cell_m)) {
            return Err(AnalysisError::OutOfRange {
                what: "cell size (metres)",
                value: cell_m,
                range: "MIN_CELL_M = 1 <= cell <= MAX_CELL_M = 100000",
            });
        }
        if points.is_empty() && central_meridian.is_none() {
            return Err(AnalysisError::Empty { what: "points (a grid centres on them)" });
        }
        let (lo, hi) =
            points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        let central_meridian = central_meridian.unwrap_or((lo + hi) / 2.0);
        if !(central_meridian.is_finite() && (-180.0..=180.0).contains(&central_meridian)) {
            return Err(AnalysisError::OutOfRange {
                what: "central meridian",
                value: central_meridian,
                range: "-180 <= longitude <= 180",
            });
        }
        for p in points {
            if (p[0] - central_meridian).abs() > MAX_HALF_SPAN_DEG {
                return Err(AnalysisError::OutOfRange {
                    what: "longitude from the grid's central meridian (degrees)",
                    value: p[0] - central_meridian,
                    range: "|Δλ| <= MAX_HALF_SPAN_DEG = 15",
                });
            }
            if p[1].abs() > MAX_ABS_LAT_DEG {
                return Err(AnalysisError::OutOfRange {
                    what: "latitude of a gridded point",
                    value: p[1],
                    range: "|φ| <= MAX_ABS_LAT_DEG = 85",
                });
            }
        }
        Ok(Self { central_meridian, cell_m })
    }

    /// Projected coordinates (metres) of a point.
    pub fn project(&self, p: LonLat) -> [f64; 2] {
        let phi = p[1].to_radians();
        [parallel_radius(phi) * (p[0] - self.central_meridian).to_radians(), meridian_arc(phi)]
    }

    /// The point at projected coordinates `xy` (metres).
    pub fn unproject(&self, xy: [f64; 2]) -> LonLat {
        let phi = latitude_of_arc(xy[1]);
        [self.central_meridian + (xy[0] / parallel_radius(phi)).to_degrees(), phi.to_degrees()]
    }

    /// The cell holding a point.
    pub fn cell_of(&self, p: LonLat) -> [i64; 2] {
        let [x, y] = self.project(p);
        [(x / self.cell_m).floor() as i64, (y / self.cell_m).floor() as i64]
    }

    /// The centre of a cell.
    pub fn cell_centre(&self, cell: [i64; 2]) -> LonLat {
        self.unproject([(cell[0] as f64 + 0.5) * self.cell_m, (cell[1] as f64 + 0.5) * self.cell_m])
    }

    /// A cell's outline: its four corners anticlockwise from the south-west, closed.
    pub fn cell_polygon(&self, cell: [i64; 2]) -> Vec<LonLat> {
        let c = self.cell_m;
        let (x0, y0) = (cell[0] as f64 * c, cell[1] as f64 * c);
        let corners = [[x0, y0], [x0 + c, y0], [x0 + c, y0 + c], [x0, y0 + c], [x0, y0]];
        corners.iter().map(|&xy| self.unproject(xy)).collect()
    }

    /// The ground area of every cell, m² (the projection is equal-area).
    pub fn cell_area_m2(&self) -> f64 {
        self.cell_m * self.cell_m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geodesic::geodesic_m;

    #[test]
    fn meridian_arc_equals_the_geodesic_along_the_meridian() {
        for lat in [0.5, 22.5, 30.5, 45.0, 60.0, 84.0] {
            let geodesic = geodesic_m([114.0, 0.0], [114.0, lat]);
            let arc = meridian_arc(f64::to_radians(lat));
            assert!((arc - geodesic).abs() < 1e-6, "lat {lat}: {arc} vs {geodesic}");
            assert!((latitude_of_arc(arc).to_degrees() - lat).abs() < 1e-12);
        }
    }

    #[test]
    fn round_trip_and_true_scale_along_parallels() {
        let g = Grid { central_meridian: 114.4, cell_m: 250.0 };
        let p = [114.531_234_5, 30.512_345_6];
        let back = g.unproject(g.project(p));
        assert!((back[0] - p[0]).abs() < 1e-11 && (back[1] - p[1]).abs() < 1e-11, "{back:?}");
        // Along a parallel, x is the parallel's arc, within a micrometre per kilometre of the
        // geodesic (which bows poleward of the parallel).
        let [x0, _] = g.project([114.4, 30.5]);
        let [x1, _] = g.project([114.41, 30.5]);
        let d = geodesic_m([114.4, 30.5], [114.41, 30.5]);
        assert!(((x1 - x0) - d).abs() < 1e-3, "{} vs {d}", x1 - x0);
        let cell = g.cell_of(p);
        let poly = g.cell_polygon(cell);
        let c = g.cell_centre(cell);
        assert!(poly[0][0] <= p[0] && p[0] <= poly[2][0] && poly[0][1] <= p[1] && p[1] <= poly[2][1]);
        assert!(poly[0][0] < c[0] && c[0] < poly[2][0]);
    }

    #[test]
    fn bounds_are_named() {
        let pts = [[114.0, 30.0], [131.0, 30.0]];
        assert!(matches!(Grid::over(&pts, 100.0, Some(114.0)), Err(AnalysisError::OutOfRange { .. })));
        assert!(matches!(Grid::over(&pts[..1], 0.5, None), Err(AnalysisError::OutOfRange { .. })));
        assert!(matches!(Grid::over(&[[0.0, 89.0]], 100.0, None), Err(AnalysisError::OutOfRange { .. })));
    }
}
