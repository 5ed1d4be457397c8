//! Measurement of geometries: geodesic on the CGCS2000 ellipsoid, or planar on projected
//! coordinates.
//!
//! Lengths and areas in lon/lat must be computed on the ellipsoid: a 1°×1° cell at 30°N is about
//! 10,640 km², and treating degrees as planar gets it wrong by any factor you like. We use
//! `geographiclib-rs`, a port of Karney's algorithms (the ones PROJ, PostGIS and GeographicLib use),
//! with the CGCS2000 ellipsoid (`a = 6378137 m`, `1/f = 298.257222101`). Polygon edges are
//! geodesics, so a "1°×1° cell" here has geodesic edges, not parallels, exactly like GeographicLib's
//! `Planimeter`.
//!
//! Planar measurement (of coordinates already projected, e.g. in a Gauss-Krüger zone) is what
//! surveyors and 国土 workflows report for parcels: it includes the projection's scale error
//! (Gauss-Krüger: zero on the central meridian, about +0.12 % in length at the edge of a 3° zone
//! at 30°N), which is why both are offered and the caller chooses.
//!
//! Both follow the same rules (one traversal, two metrics):
//! - `length_m` is the length of linear parts (LineString, MultiLineString); points and polygons
//!   have none.
//! - `area_m2` is the area of polygons: exterior rings minus holes, summed over MultiPolygon parts;
//!   ring orientation does not matter.
//! - `perimeter_m` is the length of every ring of every polygon, holes included (as PostGIS's
//!   `ST_Perimeter` counts it).
//! - `length_3d_m` / `perimeter_3d_m` are present when the geometry has Z: each segment is the
//!   hypotenuse of its horizontal length and its height difference. Heights are used as given:
//!   no geoid is applied (see the crate documentation on height datums).

use std::sync::LazyLock;

use geographiclib_rs::{Geodesic, InverseGeodesic, PolygonArea, Winding};
use shikong_model::{Coord, Geometry, GeometryError};

use crate::error::{GeodesyError, Result};

/// CGCS2000 semi-major axis, metres.
pub const CGCS2000_A: f64 = 6_378_137.0;
/// CGCS2000 inverse flattening (GRS 80's value to the digits given; 1/f = 298.257222101).
pub const CGCS2000_INV_F: f64 = 298.257_222_101;

static CGCS2000: LazyLock<Geodesic> = LazyLock::new(|| Geodesic::new(CGCS2000_A, 1.0 / CGCS2000_INV_F));

/// The CGCS2000 ellipsoid, for callers who need GeographicLib's other solutions (direct problem,
/// waypoints).
pub fn cgcs2000() -> &'static Geodesic {
    &CGCS2000
}

/// What [`measure_geodesic`] and [`measure_planar`] report; see the module docs for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measurement {
    pub length_m: f64,
    pub area_m2: f64,
    pub perimeter_m: f64,
    /// `Some` when the geometry has Z.
    pub length_3d_m: Option<f64>,
    /// `Some` when the geometry has Z.
    pub perimeter_3d_m: Option<f64>,
}

/// How to measure: one implementation per space.
trait Metric {
    /// Horizontal length of the segment `a`–`b`.
    fn segment(&self, a: &Coord, b: &Coord) -> f64;
    /// Unsigned area of a closed ring (first point == last point, at least 4 points).
    fn ring_area(&self, ring: &[Coord]) -> f64;
}

struct Ellipsoidal;

impl Metric for Ellipsoidal {
    fn segment(&self, a: &Coord, b: &Coord) -> f64 {
        CGCS2000.inverse(a.y, a.x, b.y, b.x)
    }

    fn ring_area(&self, ring: &[Coord]) -> f64 {
        let mut pa = PolygonArea::new(&CGCS2000, Winding::CounterClockwise);
        // PolygonArea closes the ring itself: leave out the repeated last point.
        for c in &ring[..ring.len() - 1] {
            pa.add_point(c.y, c.x);
        }
        // Signed, then absolute: clockwise rings (holes, shapefiles) must not be taken for the
        // rest of the globe, which is what the unsigned mode would do.
        let (_, area, _) = pa.compute(true);
        area.abs()
    }
}

struct Planar;

impl Metric for Planar {
    fn segment(&self, a: &Coord, b: &Coord) -> f64 {
        (b.x - a.x).hypot(b.y - a.y)
    }

    fn ring_area(&self, ring: &[Coord]) -> f64 {
        // Shoelace, relative to the first point: projected coordinates are millions of metres,
        // and their raw products would lose the centimetres a parcel's area is made of.
        let o = ring[0];
        let twice: f64 =
            ring.windows(2).map(|w| (w[0].x - o.x) * (w[1].y - o.y) - (w[1].x - o.x) * (w[0].y - o.y)).sum();
        twice.abs() / 2.0
    }
}

#[derive(Default)]
struct Lengths {
    horizontal: f64,
    with_z: f64,
}

fn path(metric: &impl Metric, line: &[Coord]) -> Lengths {
    let mut acc = Lengths::default();
    for w in line.windows(2) {
        let s = metric.segment(&w[0], &w[1]);
        acc.horizontal += s;
        acc.with_z += match (w[0].z, w[1].z) {
            (Some(z0), Some(z1)) => s.hypot(z1 - z0),
            _ => s,
        };
    }
    acc
}

fn measure_with(metric: &impl Metric, g: &Geometry) -> Measurement {
    let mut m = Measurement::default();
    let (mut length_3d, mut perimeter_3d) = (0.0, 0.0);
    let mut add_line = |m: &mut Measurement, l: &[Coord]| {
        let p = path(metric, l);
        m.length_m += p.horizontal;
        length_3d += p.with_z;
    };
    let mut add_polygon = |m: &mut Measurement, rings: &[Vec<Coord>]| {
        for (i, ring) in rings.iter().enumerate() {
            let a = metric.ring_area(ring);
            m.area_m2 += if i == 0 { a } else { -a };
            let p = path(metric, ring);
            m.perimeter_m += p.horizontal;
            perimeter_3d += p.with_z;
        }
    };
    match g {
        Geometry::Point(_) | Geometry::MultiPoint(_) => {}
        Geometry::LineString(l) => add_line(&mut m, l),
        Geometry::MultiLineString(ls) => ls.iter().for_each(|l| add_line(&mut m, l)),
        Geometry::Polygon(rings) => add_polygon(&mut m, rings),
        Geometry::MultiPolygon(polys) => polys.iter().for_each(|p| add_polygon(&mut m, p)),
    }
    if g.has_z() {
        m.length_3d_m = Some(length_3d);
        m.perimeter_3d_m = Some(perimeter_3d);
    }
    m
}

/// Geodesic length, area and perimeter of a geometry in CGCS2000 (or WGS 84) longitude/latitude
/// degrees, x = longitude. Refuses NaN, latitudes beyond ±90°, unclosed rings and the other
/// structural faults [`Geometry::validate`] names.
pub fn measure_geodesic(g: &Geometry) -> Result<Measurement> {
    g.validate()?;
    g.validate_geographic()?;
    Ok(measure_with(&Ellipsoidal, g))
}

/// Planar (Euclidean) length, area and perimeter of a geometry in projected metres, e.g. a
/// Gauss-Krüger zone. Same rules and validation as [`measure_geodesic`], without the latitude check.
pub fn measure_planar(g: &Geometry) -> Result<Measurement> {
    g.validate()?;
    Ok(measure_with(&Planar, g))
}

/// Checks that `c` (the `index`-th argument) is a finite longitude/latitude.
fn check_lonlat(c: &Coord, index: usize) -> Result<()> {
    for v in [Some(c.x), Some(c.y), c.z].into_iter().flatten() {
        if !v.is_finite() {
            return Err(GeometryError::NotFinite { index, value: v.to_string() }.into());
        }
    }
    if !(-90.0..=90.0).contains(&c.y) {
        return Err(GeometryError::LatitudeOutOfRange { index, lat: c.y }.into());
    }
    Ok(())
}

/// Geodesic (horizontal) distance in metres between two lon/lat points on CGCS2000.
pub fn distance(a: &Coord, b: &Coord) -> Result<f64> {
    check_lonlat(a, 0)?;
    check_lonlat(b, 1)?;
    Ok(Ellipsoidal.segment(a, b))
}

/// Slope distance in metres: the geodesic distance combined with the height difference. Both
/// points need Z, or neither (then this is [`distance`]).
pub fn distance_3d(a: &Coord, b: &Coord) -> Result<f64> {
    let s = distance(a, b)?;
    match (a.z, b.z) {
        (Some(z0), Some(z1)) => Ok(s.hypot(z1 - z0)),
        (None, None) => Ok(s),
        (Some(_), None) => Err(GeodesyError::MissingZ { index: 1 }),
        (None, Some(_)) => Err(GeodesyError::MissingZ { index: 0 }),
    }
}

/// Forward geodesic azimuth from `a` to `b` at `a`, degrees clockwise from north in `[0, 360)`.
pub fn azimuth(a: &Coord, b: &Coord) -> Result<f64> {
    check_lonlat(a, 0)?;
    check_lonlat(b, 1)?;
    if a.x == b.x && a.y == b.y {
        return Err(GeodesyError::ZeroLength { index: 0 });
    }
    let (azi1, _azi2, _a12): (f64, f64, f64) = CGCS2000.inverse(a.y, a.x, b.y, b.x);
    Ok(azi1.rem_euclid(360.0))
}

/// The horizontal angle at `vertex`, turned clockwise from the direction towards `from` to the
/// direction towards `to`, in `[0, 360)` degrees (a surveyor's angle from backsight to foresight).
pub fn angle_clockwise(from: &Coord, vertex: &Coord, to: &Coord) -> Result<f64> {
    let back = azimuth(vertex, from).map_err(|e| reindex(e, 0))?;
    let fore = azimuth(vertex, to).map_err(|e| reindex(e, 1))?;
    Ok((fore - back).rem_euclid(360.0))
}

/// The angle between the segments `vertex–from` and `vertex–to`, in `[0, 180]` degrees.
pub fn angle_between(from: &Coord, vertex: &Coord, to: &Coord) -> Result<f64> {
    let a = angle_clockwise(from, vertex, to)?;
    Ok(if a > 180.0 { 360.0 - a } else { a })
}

fn reindex(e: GeodesyError, segment: usize) -> GeodesyError {
    match e {
        GeodesyError::ZeroLength { .. } => GeodesyError::ZeroLength { index: segment },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Coord {
        Coord::xy(x, y)
    }

    fn wkt(s: &str) -> Geometry {
        shikong_model::wkt::parse(s).unwrap()
    }

    #[track_caller]
    fn close(got: f64, expected: f64, tol: f64) {
        assert!((got - expected).abs() <= tol, "got {got}, expected {expected} ± {tol}");
    }

    #[test]
    fn distances_match_geographiclib() {
        // Values from GeographicLib 2.1 (Python) on a = 6378137, 1/f = 298.257222101.
        close(distance(&p(114.3055, 30.5928), &p(116.4074, 39.9042)).unwrap(), 1_050_528.005_821, 1e-5);
        close(distance(&p(0.0, 0.0), &p(1.0, 0.0)).unwrap(), 111_319.490_793, 1e-5);
        close(distance(&p(114.0, 30.0), &p(114.0, 30.0)).unwrap(), 0.0, 0.0);
        close(azimuth(&p(114.0, 30.0), &p(114.0, 31.0)).unwrap(), 0.0, 1e-12);
        close(azimuth(&p(114.0, 30.0), &p(114.0, 29.0)).unwrap(), 180.0, 1e-12);
        close(azimuth(&p(0.0, 0.0), &p(-1.0, 0.0)).unwrap(), 270.0, 1e-12);
    }

    #[test]
    fn three_d_distance_adds_the_height_difference() {
        let a = Coord::xyz(114.0, 30.0, 10.0);
        let b = Coord::xyz(114.0, 30.0, 40.0);
        close(distance_3d(&a, &b).unwrap(), 30.0, 1e-9);
        let c = Coord::xyz(0.0, 0.0, 0.0);
        let d = Coord::xyz(1.0, 0.0, 1000.0);
        close(distance_3d(&c, &d).unwrap(), 111_319.490_793_f64.hypot(1000.0), 1e-5);
        assert_eq!(distance_3d(&a, &p(114.0, 30.0)), Err(GeodesyError::MissingZ { index: 1 }));
    }

    #[test]
    fn angles() {
        let v = p(114.0, 30.0);
        let north = p(114.0, 30.01);
        let south = p(114.0, 29.99);
        close(angle_clockwise(&north, &v, &south).unwrap(), 180.0, 1e-9);
        close(angle_between(&north, &v, &south).unwrap(), 180.0, 1e-9);
        let east = p(114.01, 30.0);
        let a = angle_clockwise(&north, &v, &east).unwrap();
        // Not exactly 90°: the geodesic to a point due east starts slightly north of east.
        close(a, 90.0, 0.01);
        close(angle_clockwise(&east, &v, &north).unwrap(), 360.0 - a, 1e-9);
        close(angle_between(&east, &v, &north).unwrap(), a, 1e-9);
        assert!(matches!(angle_between(&north, &v, &v), Err(GeodesyError::ZeroLength { index: 1, .. })));
    }

    #[test]
    fn one_degree_cell_at_30n() {
        // GeographicLib 2.1 Polygon on CGCS2000 (geodesic edges).
        let m = measure_geodesic(&wkt("POLYGON ((114 30,115 30,115 31,114 31,114 30))")).unwrap();
        close(m.area_m2, 10_642_455_822.155_64, 1.0);
        close(m.perimeter_m, 413_711.766_030_07, 1e-5);
        assert_eq!(m.length_m, 0.0);
        // Orientation does not matter.
        let cw = measure_geodesic(&wkt("POLYGON ((114 30,114 31,115 31,115 30,114 30))")).unwrap();
        close(cw.area_m2, m.area_m2, 1e-3);
        close(cw.perimeter_m, m.perimeter_m, 1e-6);
    }

    #[test]
    fn holes_are_subtracted_and_counted_in_the_perimeter() {
        let outer = measure_geodesic(&wkt("POLYGON ((114 30,114.1 30,114.1 30.1,114 30.1,114 30))")).unwrap();
        let hole = measure_geodesic(&wkt("POLYGON ((114.02 30.02,114.04 30.02,114.04 30.04,114.02 30.02))")).unwrap();
        let both = measure_geodesic(&wkt(
            "POLYGON ((114 30,114.1 30,114.1 30.1,114 30.1,114 30),(114.02 30.02,114.04 30.02,114.04 30.04,114.02 30.02))",
        ))
        .unwrap();
        close(both.area_m2, outer.area_m2 - hole.area_m2, 1e-3);
        close(both.perimeter_m, outer.perimeter_m + hole.perimeter_m, 1e-6);
        let multi = measure_geodesic(&wkt(
            "MULTIPOLYGON (((114 30,114.1 30,114.1 30.1,114 30.1,114 30)),((114.02 30.02,114.04 30.02,114.04 30.04,114.02 30.02)))",
        ))
        .unwrap();
        close(multi.area_m2, outer.area_m2 + hole.area_m2, 1e-3);
    }

    #[test]
    fn lines_and_points() {
        let m = measure_geodesic(&wkt("LINESTRING (0 0,1 0,2 0)")).unwrap();
        close(m.length_m, 2.0 * 111_319.490_793, 1e-4);
        assert_eq!((m.area_m2, m.perimeter_m, m.length_3d_m), (0.0, 0.0, None));
        let m = measure_geodesic(&wkt("MULTILINESTRING ((0 0,1 0),(0 1,0 2))")).unwrap();
        assert!(m.length_m > 2.0 * 110_000.0);
        let m = measure_geodesic(&wkt("MULTIPOINT ((0 0),(1 1))")).unwrap();
        assert_eq!(m, Measurement::default());
        let m = measure_geodesic(&wkt("LINESTRING Z (114 30 0,114 30 30,114 30 70)")).unwrap();
        assert_eq!((m.length_m, m.length_3d_m), (0.0, Some(70.0)));
    }

    #[test]
    fn planar_measurement() {
        let m = measure_planar(&wkt(
            "POLYGON ((38500000 3380000,38500100 3380000,38500100 3380100,38500000 3380100,38500000 3380000),(38500010 3380010,38500010 3380020,38500020 3380020,38500020 3380010,38500010 3380010))",
        ))
        .unwrap();
        assert_eq!((m.area_m2, m.perimeter_m), (10_000.0 - 100.0, 440.0));
        let m = measure_planar(&wkt("LINESTRING Z (0 0 0,3 4 12)")).unwrap();
        assert_eq!((m.length_m, m.length_3d_m), (5.0, Some(13.0)));
        // No latitude check for metres.
        assert!(measure_planar(&wkt("POINT (500000 3385869)")).is_ok());
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let e = |s: &str| measure_geodesic(&wkt(s)).unwrap_err().to_string();
        assert_eq!(
            e("POLYGON ((114 30,115 30,115 31,114 31))"),
            "invalid geometry: polygon ring 0 is not closed (first point (114 30) differs from last point (114 31))"
        );
        assert_eq!(e("LINESTRING (114 30,114 95)"), "invalid geometry: latitude 95 at coordinate 1 is beyond ±90°");
        let nan = Geometry::LineString(vec![p(114.0, 30.0), p(f64::NAN, 30.0)]);
        assert_eq!(
            measure_geodesic(&nan).unwrap_err().to_string(),
            "invalid geometry: coordinate 1 is not a finite number (NaN)"
        );
        assert_eq!(
            distance(&p(0.0, 0.0), &p(0.0, -91.0)).unwrap_err().to_string(),
            "invalid geometry: latitude -91 at coordinate 1 is beyond ±90°"
        );
        assert_eq!(
            azimuth(&p(1.0, 1.0), &p(1.0, 1.0)).unwrap_err().to_string(),
            "segment 0 has zero length, so it has no direction"
        );
    }
}
