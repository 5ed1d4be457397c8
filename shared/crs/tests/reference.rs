//! shikong-crs against the committed reference table `testdata/reference.csv`, produced by
//! implementations no one here wrote (pyproj, coord-convert, geographiclib; see
//! `testdata/README.md` for the command that regenerates it).

use shikong_crs::{Crs, measure, parse_crs, with_transform};
use shikong_geodesy::{azimuth, distance};
use shikong_model::{Coord, Geometry};

const TABLE: &str = include_str!("../testdata/reference.csv");

/// One row of the table; columns as in `generate_reference.py`.
#[derive(Debug)]
struct Row<'a> {
    line: usize,
    kind: &'a str,
    from: &'a str,
    to: &'a str,
    fields: Vec<&'a str>,
    wkt: &'a str,
}

impl Row<'_> {
    fn num(&self, column: usize) -> f64 {
        self.fields[column].parse().unwrap_or_else(|e| panic!("line {}: column {column}: {e}", self.line))
    }

    fn opt(&self, column: usize) -> Option<f64> {
        (!self.fields[column].is_empty()).then(|| self.num(column))
    }
}

// Column indexes within `fields` (which starts at in_x).
const IN_X: usize = 0;
const IN_Y: usize = 1;
const OUT_X: usize = 2;
const OUT_Y: usize = 3;
const LENGTH: usize = 4;
const AREA: usize = 5;
const PERIMETER: usize = 6;
const AZIMUTH: usize = 7;

fn rows() -> Vec<Row<'static>> {
    let mut lines = TABLE.lines().enumerate();
    let header = lines.next().map(|(_, l)| l);
    assert_eq!(
        header,
        Some("kind,from,to,in_x,in_y,out_x,out_y,length_m,area_m2,perimeter_m,azimuth_deg,wkt"),
        "the table's columns changed"
    );
    lines
        .map(|(i, l)| {
            // Only the last column (WKT) may contain commas, and then it is quoted.
            let cols: Vec<&str> = l.splitn(12, ',').collect();
            assert_eq!(cols.len(), 12, "line {}: {l}", i + 1);
            Row {
                line: i + 1,
                kind: cols[0],
                from: cols[1],
                to: cols[2],
                fields: cols[3..11].to_vec(),
                wkt: cols[11].trim_matches('"'),
            }
        })
        .collect()
}

fn is_offset(code: &str) -> bool {
    code == "GCJ02" || code == "BD09"
}

/// Largest error seen per category, printed so that a run shows the margins (`--nocapture`).
#[derive(Debug, Default)]
struct Worst {
    count: usize,
    error: f64,
    line: usize,
}

impl Worst {
    fn see(&mut self, error: f64, line: usize) {
        self.count += 1;
        if error > self.error || error.is_nan() {
            self.error = error;
            self.line = line;
        }
    }

    #[track_caller]
    fn assert_within(&self, what: &str, tolerance: f64, min_count: usize) {
        match self.error {
            0.0 => println!("{what}: {} rows, all exact", self.count),
            e => println!("{what}: {} rows, worst {e:e} (line {})", self.count, self.line),
        }
        assert!(self.count >= min_count, "{what}: only {} rows in the table", self.count);
        assert!(self.error <= tolerance, "{what}: error {:e} at line {} exceeds {tolerance:e}", self.error, self.line);
    }
}

#[test]
fn the_table_has_at_least_1000_rows() {
    assert!(rows().len() >= 1000, "{} rows", rows().len());
}

#[test]
fn epsg_transforms_match_pyproj() {
    let mut projected = Worst::default();
    let mut geographic = Worst::default();
    let mut round_trip_m = Worst::default();
    let mut round_trip_deg = Worst::default();
    let mut gk_codes = std::collections::BTreeSet::new();
    for r in rows().iter().filter(|r| r.kind == "transform" && !is_offset(r.from) && !is_offset(r.to)) {
        let (from, to) = (parse_crs(r.from).unwrap(), parse_crs(r.to).unwrap());
        if let Crs::Epsg(c @ 4491..=4554) = to {
            gk_codes.insert(c);
        }
        let input = Coord::xy(r.num(IN_X), r.num(IN_Y));
        let got = with_transform(from, to, |t| t.convert(input)).unwrap().unwrap();
        let error = (got.x - r.num(OUT_X)).abs().max((got.y - r.num(OUT_Y)).abs());
        if to.is_geographic() { &mut geographic } else { &mut projected }.see(error, r.line);
        let back = with_transform(to, from, |t| t.convert(got)).unwrap().unwrap();
        let error = (back.x - input.x).abs().max((back.y - input.y).abs());
        if from.is_geographic() { &mut round_trip_deg } else { &mut round_trip_m }.see(error, r.line);
    }
    projected.assert_within("EPSG → projected (m)", 1e-3, 500);
    geographic.assert_within("EPSG → geographic (°)", 1e-8, 100);
    round_trip_m.assert_within("EPSG round trip, projected input (m)", 1e-3, 100);
    round_trip_deg.assert_within("EPSG round trip, geographic input (°)", 1e-8, 500);
    assert_eq!(gk_codes.len(), 64, "every Gauss-Krüger zone 4491–4554 is in the table");
}

#[test]
fn offsets_match_coord_convert_and_round_trip() {
    let mut forward = Worst::default();
    let mut identity = Worst::default();
    let mut round_trip = Worst::default();
    for r in rows().iter().filter(|r| r.kind == "transform" && (is_offset(r.from) || is_offset(r.to))) {
        let (from, to) = (parse_crs(r.from).unwrap(), parse_crs(r.to).unwrap());
        let input = Coord::xy(r.num(IN_X), r.num(IN_Y));
        let expected = (r.num(OUT_X), r.num(OUT_Y));
        let got = with_transform(from, to, |t| t.convert(input)).unwrap().unwrap();
        let error = (got.x - expected.0).abs().max((got.y - expected.1).abs());
        if expected == (input.x, input.y) { &mut identity } else { &mut forward }.see(error, r.line);
        let back = with_transform(to, from, |t| t.convert(Coord::xy(expected.0, expected.1))).unwrap().unwrap();
        round_trip.see((back.x - input.x).abs().max((back.y - input.y).abs()), r.line);
    }
    forward.assert_within("GCJ-02/BD-09 forward (°)", 1e-6, 500);
    identity.assert_within("GCJ-02 outside China, identity (°)", 0.0, 8);
    round_trip.assert_within("GCJ-02/BD-09 inverse of the reference's forward (°)", 1e-7, 500);
}

#[test]
fn measurements_match_geographiclib() {
    let mut areas = Worst::default();
    let mut lengths = Worst::default();
    let mut azimuths = Worst::default();
    let rel = |got: f64, expected: f64| if expected == 0.0 { got.abs() } else { ((got - expected) / expected).abs() };
    let mut labels = Vec::new();
    for r in rows().iter().filter(|r| r.kind == "measure") {
        labels.push(r.to);
        let crs = parse_crs(r.from).unwrap();
        let g = shikong_model::wkt::parse(r.wkt).unwrap_or_else(|e| panic!("line {}: {e}", r.line));
        let m = measure(&g, crs).unwrap().measurement;
        areas.see(rel(m.area_m2, r.num(AREA)), r.line);
        lengths.see(rel(m.perimeter_m, r.num(PERIMETER)), r.line);
        lengths.see(rel(m.length_m, r.num(LENGTH)), r.line);
        if let (Some(expected), Geometry::LineString(l)) = (r.opt(AZIMUTH), &g) {
            azimuths.see((azimuth(&l[0], &l[1]).unwrap() - expected).abs(), r.line);
            lengths.see(rel(distance(&l[0], &l[1]).unwrap(), r.num(LENGTH)), r.line);
        }
    }
    for required in
        ["cell-1deg-30N", "district-hongshan", "district-hongshan-with-hole", "multipolygon-district-and-cell"]
    {
        assert!(labels.contains(&required), "{required} missing from the table");
    }
    // The issue asks for 0.01 %; we are in fact within float noise of GeographicLib.
    areas.assert_within("area (relative)", 1e-4, 8);
    lengths.assert_within("length/perimeter (relative)", 1e-4, 30);
    azimuths.assert_within("azimuth (°)", 1e-9, 15);
}

/// PROJ must find its database with no help: no `PROJ_DATA`, no data directory, any working
/// directory. The test runs itself again in a child process whose `PROJ_DATA` and `HOME` point at
/// an empty directory (so neither the build tree's `proj.db` nor a user's is reachable) and whose
/// working directory is that empty directory too.
#[test]
fn proj_db_is_embedded() {
    const CHILD: &str = "SHIKONG_CRS_EMBEDDED_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let out = shikong_crs::cli::transform_command("EPSG:4490", "EPSG:4547", 114.3055, 30.5928, None).unwrap();
        assert_eq!(out, "529299.8603 3385869.4534");
        let out = shikong_crs::cli::transform_command("EPSG:4526", "EPSG:3857", 38529299.8603, 3385869.4534, None);
        assert_eq!(out.unwrap(), "12724430.0549 3579978.6214");
        return;
    }
    let empty = std::env::temp_dir().join(format!("shikong-crs-no-proj-data-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args(["--exact", "proj_db_is_embedded", "--nocapture"])
        .current_dir(&empty)
        .env(CHILD, "1")
        .env("PROJ_DATA", &empty)
        .env("PROJ_LIB", &empty)
        .env("HOME", &empty)
        .env("XDG_DATA_HOME", &empty)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
