//! Buffers checked by what a buffer is, measured on the ellipsoid (PostGIS' `ST_Buffer` on
//! geography is no reference: it buffers in a planar projection of its choosing):
//! - every vertex of a buffer lies at geodesic distance d ± 1 mm from the input (the nearest
//!   point of a line or of a polygon's boundary, found by a golden-section search along each
//!   segment with Karney's geodesics), for points, lines with turns, polygons with holes, near a
//!   3° zone's edge, and for negative distances — but for the few vertices where a chord of a
//!   round part crosses the outline, which lie on that chord;
//! - a point's buffer has the area of the inscribed 4·q-gon, `2q·d²·sin(π/2q)`, to 1e-6;
//! - a polygon's buffer lies between Steiner's `A + P·d + (inscribed arcs)` and `A + P·d + πd²`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shikong_analysis::geodesic_m;
use shikong_analysis::overlay::{self, BufferOptions};
use shikong_model::geometry::Line;
use shikong_model::{Coord, Geometry};

/// Geodesic distance from `p` to the nearest point of segment a–b (straight in lon/lat, which for
/// segments of a few hundred metres is the geodesic to well under a micrometre).
fn to_segment(p: [f64; 2], a: &Coord, b: &Coord) -> f64 {
    let at = |t: f64| geodesic_m(p, [a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)]);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..80 {
        let (m1, m2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if at(m1) <= at(m2) { hi = m2 } else { lo = m1 }
    }
    at((lo + hi) / 2.0).min(at(0.0)).min(at(1.0))
}

fn to_lines(p: [f64; 2], lines: &[Line]) -> f64 {
    lines.iter().flat_map(|l| l.windows(2)).map(|w| to_segment(p, &w[0], &w[1])).fold(f64::INFINITY, f64::min)
}

fn rings(g: &Geometry) -> Vec<Line> {
    match g {
        Geometry::Point(c) => vec![vec![*c, *c]],
        Geometry::MultiPoint(cs) => cs.iter().map(|c| vec![*c, *c]).collect(),
        Geometry::LineString(l) => vec![l.clone()],
        Geometry::MultiLineString(ls) | Geometry::Polygon(ls) => ls.clone(),
        Geometry::MultiPolygon(ps) => ps.iter().flatten().cloned().collect(),
    }
}

/// Asserts every vertex of `g`'s buffer is at |d| ± 1 mm from `g` (its boundary for polygons),
/// except at most `crossings` vertices where a chord of one round part crosses another part of
/// the outline: those lie on a chord, between |d|·cos(θ/2) and |d| (θ = 90° / segments), as in
/// any polygonal buffer. Returns the buffer's area and vertex count.
fn check_vertices(name: &str, g: &Geometry, o: &BufferOptions, crossings: usize) -> (f64, usize) {
    let r = overlay::buffer(g, o).unwrap().unwrap_or_else(|| panic!("{name}: empty buffer"));
    let target = rings(g);
    let d = o.distance_m.abs();
    let chord = d * (std::f64::consts::FRAC_PI_4 / f64::from(o.quadrant_segments)).cos();
    let (mut n, mut on_chords, mut worst) = (0usize, 0usize, 0.0f64);
    for ring in rings(&r.geometry) {
        for c in &ring[..ring.len() - 1] {
            let dist = to_lines([c.x, c.y], &target);
            if (dist - d).abs() <= 1e-3 {
                worst = worst.max((dist - d).abs());
            } else {
                assert!(
                    (chord - 1e-3..=d).contains(&dist),
                    "{name}: vertex ({}, {}) is {dist} m away, not {d} m",
                    c.x,
                    c.y
                );
                on_chords += 1;
            }
            n += 1;
        }
    }
    println!(
        "{name}: {n} vertices, {on_chords} on chord crossings, largest distance error of the others {worst:.1e} m, area {:.3} m²",
        r.area_m2
    );
    assert!(on_chords <= crossings, "{name}: {on_chords} vertices off the distance, at most {crossings} expected");
    (r.area_m2, n)
}

fn poly(points: &[(f64, f64)]) -> Line {
    let mut r: Line = points.iter().map(|&(x, y)| Coord::xy(x, y)).collect();
    r.push(r[0]);
    r
}

#[test]
fn point_buffers_are_geodesic_circles() {
    for (lon, lat, d, q) in [(114.3055, 30.5928, 500.0, 8), (87.6, 43.8, 2_000.0, 16), (126.6, 45.75, 25.0, 3)] {
        let g = Geometry::Point(Coord::xy(lon, lat));
        let o = BufferOptions { distance_m: d, quadrant_segments: q };
        let (area, n) = check_vertices(&format!("point {lon} {lat}"), &g, &o, 0);
        assert_eq!(n, 4 * q as usize);
        let ngon = 2.0 * f64::from(q) * d * d * (std::f64::consts::PI / (2.0 * f64::from(q))).sin();
        let rel = (area - ngon) / ngon;
        assert!(rel.abs() <= 1e-6, "point {lon} {lat}: area {area} vs inscribed polygon {ngon} ({rel:.1e})");
    }
    // More segments approach the circle from below.
    let g = Geometry::Point(Coord::xy(114.3, 30.5));
    let fine = overlay::buffer(&g, &BufferOptions { distance_m: 100.0, quadrant_segments: 90 }).unwrap().unwrap();
    let circle = std::f64::consts::PI * 1e4;
    assert!((circle * (1.0 - 1e-4)..circle).contains(&fine.area_m2), "{}", fine.area_m2);
}

#[test]
fn line_buffers_keep_their_distance_also_at_a_zone_edge() {
    // A road with a sharp turn (the inner offsets cross) and a gentle one, at 114.3°E and at
    // 115.45°E, 5 km from the edge of the 3° zone on 114°E.
    for lon in [114.3, 115.45] {
        let road = Geometry::LineString(vec![
            Coord::xy(lon, 30.50),
            Coord::xy(lon + 0.004, 30.503),
            Coord::xy(lon + 0.0015, 30.5035),
            Coord::xy(lon + 0.006, 30.507),
        ]);
        check_vertices(&format!("road at {lon}"), &road, &BufferOptions::new(40.0), 4);
        check_vertices(
            &format!("road at {lon}, 1 km"),
            &road,
            &BufferOptions { distance_m: 1_000.0, quadrant_segments: 4 },
            4,
        );
    }
}

#[test]
fn polygon_buffers_keep_their_distance_inside_and_out() {
    let parcel = Geometry::Polygon(vec![
        poly(&[(114.30, 30.50), (114.303, 30.5002), (114.3031, 30.5021), (114.3012, 30.5030), (114.2998, 30.5018)]),
        // A courtyard, clockwise.
        poly(&[(114.3010, 30.5008), (114.3010, 30.5014), (114.3018, 30.5014), (114.3018, 30.5008)]),
    ]);
    check_vertices("parcel +12 m", &parcel, &BufferOptions::new(12.0), 0);
    check_vertices("parcel −6 m", &parcel, &BufferOptions::new(-6.0), 0);
    // Shrinking by more than its half-width leaves nothing.
    assert_eq!(overlay::buffer(&parcel, &BufferOptions::new(-200.0)).unwrap(), None);
}

#[test]
fn polygon_buffer_area_follows_steiner() {
    // A convex parcel: buffer area = A + P·d + (round corners, a full turn in total).
    let parcel = Geometry::Polygon(vec![poly(&[
        (114.30, 30.50),
        (114.3025, 30.5003),
        (114.3027, 30.5020),
        (114.3004, 30.5024),
    ])]);
    let m = shikong_geodesy::measure_geodesic(&parcel).unwrap();
    for (d, q) in [(10.0, 8u32), (300.0, 8), (50.0, 30)] {
        let area =
            overlay::buffer(&parcel, &BufferOptions { distance_m: d, quadrant_segments: q }).unwrap().unwrap().area_m2;
        let theta = std::f64::consts::FRAC_PI_2 / f64::from(q);
        let base = m.area_m2 + m.perimeter_m * d;
        let (lo, hi) = (
            base + std::f64::consts::PI * d * d * (2.0 * theta).sin() / (2.0 * theta),
            base + std::f64::consts::PI * d * d,
        );
        println!("d = {d}: {area:.3} m² in [{lo:.3}, {hi:.3}]");
        assert!((lo * (1.0 - 1e-6)..=hi * (1.0 + 1e-6)).contains(&area), "d = {d}: {area} not in [{lo}, {hi}]");
    }
}

#[test]
fn multipoint_buffers_merge() {
    let one = overlay::buffer(&Geometry::Point(Coord::xy(114.3, 30.5)), &BufferOptions::new(100.0)).unwrap().unwrap();
    let two = Geometry::MultiPoint(vec![Coord::xy(114.3, 30.5), Coord::xy(114.3015, 30.5)]);
    let both = overlay::buffer(&two, &BufferOptions::new(100.0)).unwrap().unwrap();
    assert_eq!(both.part_areas_m2.len(), 1, "the circles overlap (144 m apart) and merge");
    assert!((one.area_m2 * 1.5..one.area_m2 * 2.0).contains(&both.area_m2), "{}", both.area_m2);
    let layer =
        overlay::buffer_layer(&[two.clone(), Geometry::Point(Coord::xy(114.4, 30.6))], &BufferOptions::new(10.0))
            .unwrap();
    assert_eq!(layer.len(), 2);
    assert_eq!(layer[0].as_ref().unwrap().part_areas_m2.len(), 2, "10 m circles 144 m apart stay apart");
}
