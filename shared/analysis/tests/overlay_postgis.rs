//! Overlays against PostGIS on a private cluster (shikong-pgtest): the same polygons go through
//! `shikong_analysis::overlay` and through `ST_Intersection` / `ST_Union` / `ST_Difference` on
//! `geometry(…, 4490)`, and the areas of both answers on the ellipsoid
//! (`ST_Area(…::geography, true)`, GeographicLib's algorithm) must agree to 1e-6 relative.
//!
//! The polygons look like survey data around Wuhan: irregular district outlines of a few hundred
//! vertices, parcels with courtyards (holes), multipolygons with islands, shapes sharing edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use postgres::{Client, NoTls};
use shikong_analysis::overlay::{self, Areal};
use shikong_model::geometry::Line;
use shikong_model::wkt::{parse, to_wkt};
use shikong_model::{Coord, Geometry};
use shikong_pgtest::{Cluster, postgres};

const REL: f64 = 1e-6;

fn client() -> &'static Mutex<Client> {
    static C: std::sync::OnceLock<Mutex<Client>> = std::sync::OnceLock::new();
    C.get_or_init(|| Mutex::new(Client::connect(&Cluster::shared().fresh_db(), NoTls).unwrap()))
}

/// A deterministic generator (xorshift), so the shapes are fixed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ring(points: impl IntoIterator<Item = (f64, f64)>) -> Line {
    let mut r: Line = points.into_iter().map(|(x, y)| Coord::xy(x, y)).collect();
    r.push(r[0]);
    r
}

/// An irregular district outline: `n` vertices around (cx, cy) at radius r·(0.75..1.25),
/// smoothed so that it wiggles like a boundary following roads and rivers.
fn district(cx: f64, cy: f64, r: f64, n: usize, seed: u64) -> Vec<Line> {
    let mut rng = Rng(seed);
    let raw: Vec<f64> = (0..n).map(|_| 0.75 + 0.5 * rng.next()).collect();
    let smooth: Vec<f64> = (0..n).map(|i| (raw[(i + n - 1) % n] + 2.0 * raw[i] + raw[(i + 1) % n]) / 4.0).collect();
    vec![ring((0..n).map(|i| {
        let t = std::f64::consts::TAU * i as f64 / n as f64;
        (cx + r * smooth[i] * t.cos() / cy.to_radians().cos(), cy + r * smooth[i] * t.sin())
    }))]
}

/// A rectangular parcel of w×h degrees at (x, y), with a courtyard hole when `hole`.
fn parcel(x: f64, y: f64, w: f64, h: f64, hole: bool) -> Vec<Line> {
    let mut rings = vec![ring([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])];
    if hole {
        let (hx, hy) = (x + 0.3 * w, y + 0.35 * h);
        // Clockwise, as OGC wants holes; the code under test must not depend on it anyway.
        rings.push(ring([(hx, hy), (hx, hy + 0.3 * h), (hx + 0.4 * w, hy + 0.3 * h), (hx + 0.4 * w, hy)]));
    }
    rings
}

fn shapes() -> Vec<(&'static str, Geometry)> {
    let d1 = district(114.30, 30.55, 0.06, 240, 7);
    let d2 = district(114.38, 30.58, 0.05, 180, 11);
    let d3 = district(114.27, 30.62, 0.04, 300, 13);
    let islands =
        Geometry::MultiPolygon(vec![district(114.33, 30.57, 0.01, 60, 17), district(114.36, 30.52, 0.012, 72, 19)]);
    // Two parcels sharing an edge, one with a courtyard, across the d1/d2 boundary.
    let block = Geometry::MultiPolygon(vec![
        parcel(114.34, 30.555, 0.02, 0.015, true),
        parcel(114.36, 30.555, 0.015, 0.015, false),
    ]);
    let lake = Geometry::Polygon({
        let mut outer = district(114.32, 30.60, 0.03, 120, 23);
        outer.extend(district(114.32, 30.60, 0.008, 40, 29).into_iter().map(|mut r| {
            r.reverse();
            r
        }));
        outer
    });
    vec![
        ("district 1", Geometry::Polygon(d1)),
        ("district 2", Geometry::Polygon(d2)),
        ("district 3", Geometry::Polygon(d3)),
        ("islands", islands),
        ("block", block),
        ("lake with island hole", lake),
    ]
}

/// PostGIS' geodesic area of a SQL geometry expression over $1 and $2 (WKT, SRID 4490).
fn pg_area(sql_geom: &str, a: &Geometry, b: &Geometry) -> f64 {
    let q = format!(
        "WITH g AS (SELECT ST_GeomFromText($1, 4490) AS a, ST_GeomFromText($2, 4490) AS b) \
         SELECT COALESCE(ST_Area(({sql_geom})::geography, true), 0) FROM g"
    );
    let row = client().lock().unwrap_or_else(|p| p.into_inner()).query_one(&q, &[&to_wkt(a), &to_wkt(b)]).unwrap();
    row.get(0)
}

fn ours_area(r: &Option<Areal>) -> f64 {
    r.as_ref().map_or(0.0, |a| a.area_m2)
}

#[track_caller]
fn assert_rel(what: &str, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(1.0);
    println!("{what}: {got:.6} m² vs PostGIS {want:.6} m² (relative {rel:.1e})");
    assert!(rel <= REL, "{what}: ours {got} m², PostGIS {want} m², relative difference {rel:.2e}");
}

#[test]
fn pairwise_overlays_match_postgis_areas() {
    let shapes = shapes();
    let mut compared = 0;
    for (i, (na, a)) in shapes.iter().enumerate() {
        for (nb, b) in shapes.iter().skip(i + 1) {
            let inter = overlay::intersection(a, b).unwrap();
            let uni = overlay::union(a, b).unwrap();
            let diff = overlay::difference(a, b).unwrap();
            assert_rel(&format!("{na} ∩ {nb}"), ours_area(&inter), pg_area("ST_Intersection(a, b)", a, b));
            assert_rel(&format!("{na} ∪ {nb}"), ours_area(&uni), pg_area("ST_Union(a, b)", a, b));
            assert_rel(&format!("{na} − {nb}"), ours_area(&diff), pg_area("ST_Difference(a, b)", a, b));
            // The area of our own output, measured by PostGIS: the ellipsoidal areas agree to
            // rounding, so any difference above is the boolean operation's.
            for r in [&inter, &uni, &diff].into_iter().flatten() {
                let own = pg_area("a", &r.geometry, &r.geometry);
                assert!((own - r.area_m2).abs() <= 1e-9 * own.max(1.0), "{na}/{nb}: {own} vs {}", r.area_m2);
                let parts: f64 = r.part_areas_m2.iter().sum();
                assert!((parts - r.area_m2).abs() <= 1e-9 * parts.max(1.0));
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 15);
}

#[test]
fn overlapping_pairs_exist_so_the_comparison_means_something() {
    let s = shapes();
    let area = |a: usize, b: usize| ours_area(&overlay::intersection(&s[a].1, &s[b].1).unwrap());
    assert!(area(0, 1) > 1e6, "districts 1 and 2 overlap by square kilometres");
    assert!(area(0, 4) > 1e5 && area(1, 4) > 1e5, "the block straddles districts 1 and 2");
    assert!(area(0, 5) > 1e6);
}

#[test]
fn clip_and_erase_match_postgis_per_feature() {
    let s = shapes();
    let layer: Vec<Geometry> = s.iter().map(|(_, g)| g.clone()).collect();
    let mask = vec![s[0].1.clone(), s[2].1.clone()];
    let mask_wkt = to_wkt(&overlay::union(&mask[0], &mask[1]).unwrap().unwrap().geometry);
    let clipped = overlay::clip(&layer, &mask).unwrap();
    let erased = overlay::erase(&layer, &mask).unwrap();
    let all_of = |v: &[overlay::Clipped], i: usize| v.iter().find(|c| c.index == i).map_or(0.0, |c| c.area_m2);
    let mut c = client().lock().unwrap_or_else(|p| p.into_inner());
    for (i, (name, g)) in s.iter().enumerate() {
        let row = c
            .query_one(
                "WITH g AS (SELECT ST_GeomFromText($1, 4490) AS a, \
                 ST_Union(ST_GeomFromText($2, 4490), ST_GeomFromText($3, 4490)) AS m) \
                 SELECT COALESCE(ST_Area(ST_Intersection(a, m)::geography, true), 0), \
                        COALESCE(ST_Area(ST_Difference(a, m)::geography, true), 0) FROM g",
                &[&to_wkt(g), &to_wkt(&mask[0]), &to_wkt(&mask[1])],
            )
            .unwrap();
        let (inside, outside): (f64, f64) = (row.get(0), row.get(1));
        assert_rel(&format!("clip {name}"), all_of(&clipped, i), inside);
        assert_rel(&format!("erase {name}"), all_of(&erased, i), outside);
    }
    // A road through the mask: its clipped length is PostGIS' geodesic length of the intersection.
    let road = Geometry::LineString(vec![Coord::xy(114.18, 30.50), Coord::xy(114.31, 30.58), Coord::xy(114.45, 30.66)]);
    let cl = overlay::clip(std::slice::from_ref(&road), &mask).unwrap();
    let row = c
        .query_one(
            "SELECT ST_Length(ST_Intersection(ST_GeomFromText($1, 4490), ST_GeomFromText($2, 4490))::geography, true)",
            &[&to_wkt(&road), &mask_wkt],
        )
        .unwrap();
    let want: f64 = row.get(0);
    assert_eq!(cl.len(), 1);
    assert_rel("clipped road length", cl[0].length_m, want);
}

#[test]
fn dissolve_and_intersect_layers_match_postgis() {
    let s = shapes();
    let layer: Vec<Geometry> = s.iter().map(|(_, g)| g.clone()).collect();
    let keys = ["武昌区", "洪山区", "武昌区", "洪山区", "江汉区", "武昌区"];
    let groups = overlay::dissolve(&layer, &keys).unwrap();
    assert_eq!(groups.iter().map(|g| g.key).collect::<Vec<_>>(), ["武昌区", "洪山区", "江汉区"]);
    assert_eq!(groups[0].members, [0, 2, 5]);
    let mut c = client().lock().unwrap_or_else(|p| p.into_inner());
    for g in &groups {
        let wkts: Vec<String> = g.members.iter().map(|&i| to_wkt(&layer[i])).collect();
        let row = c
            .query_one(
                "SELECT ST_Area(ST_Union(ST_GeomFromText(w, 4490))::geography, true) FROM unnest($1::text[]) AS w",
                &[&wkts],
            )
            .unwrap();
        assert_rel(&format!("dissolve {}", g.key), g.result.area_m2, row.get(0));
    }
    drop(c);
    // Districts × parcels-and-islands, as a spatial join.
    let (a, b) = (&layer[..3], &layer[3..]);
    let pairs = overlay::intersect_layers(a, b).unwrap();
    let mut c = client().lock().unwrap_or_else(|p| p.into_inner());
    let mut want = Vec::new();
    for (i, ga) in a.iter().enumerate() {
        for (j, gb) in b.iter().enumerate() {
            let row = c
                .query_one(
                    "WITH g AS (SELECT ST_GeomFromText($1, 4490) AS a, ST_GeomFromText($2, 4490) AS b) \
                     SELECT ST_Area(ST_Intersection(a, b)::geography, true) FROM g WHERE ST_Intersects(a, b)",
                    &[&to_wkt(ga), &to_wkt(gb)],
                )
                .ok();
            if let Some(area) = row.map(|r| r.get::<_, f64>(0)).filter(|&x| x > 0.0) {
                want.push((i, j, area));
            }
        }
    }
    assert_eq!(
        pairs.iter().map(|p| (p.a, p.b)).collect::<Vec<_>>(),
        want.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>()
    );
    for (p, w) in pairs.iter().zip(&want) {
        assert_rel(&format!("district {} × feature {}", p.a, p.b), p.result.area_m2, w.2);
    }
}

#[test]
fn a_parsed_survey_parcel_round_trips_through_wkt() {
    // The WKT path the server uses to hand PostGIS our output keeps every digit.
    let g = parse("POLYGON((114.3 30.5,114.31 30.5,114.31 30.51,114.3 30.51,114.3 30.5))").unwrap();
    let r = overlay::intersection(&g, &g).unwrap().unwrap();
    assert_rel("self-intersection", r.area_m2, pg_area("a", &g, &g));
}
