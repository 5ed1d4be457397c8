//! Statistics by division (行政区划, 网格) or by a regular grid: how many features of each class
//! in each period fall in each unit, the sum and mean of a numeric field, and the rates per km²
//! and per 10,000 people that make units of different sizes comparable.
//!
//! - A feature is a point (the caller passes a representative point for lines and polygons), an
//!   optional class, an optional period — a key the caller computed, or a time with a
//!   [`PeriodSpec`], made into a key in Beijing time (UTC+08:00, no daylight saving since 1991:
//!   `2026-12-07`, ISO week `2026-W50`, `2026-12`, `2026`) — and an optional number (`None` is a
//!   null: counted, left out of the sum and mean, and reported as `nulls`).
//! - Divisions are polygons or multipolygons with holes, in lon/lat; a point is in a polygon
//!   when it is inside the exterior ring and outside every hole, by the crossing rule on lon/lat
//!   coordinates (as PostGIS's `ST_Contains` on a geometry in EPSG:4490; boundaries of districts
//!   carry vertices every few metres, so straight edges in degrees are the data). The half-open
//!   rule puts a point on an edge shared by two divisions in exactly one of them. A point in
//!   several (overlapping) divisions counts in each, and `in_several` says how many did; a point
//!   in none counts in the `Outside` unit. An R-tree over the parts' envelopes finds candidates.
//! - A division's area is ellipsoidal (Karney's `PolygonArea` on CGCS2000, geodesic edges, holes
//!   subtracted, parts added), unless the caller gives one. Rates are `None` where the area or
//!   the population is missing or zero.
//! - The grid variant bins points into square cells of [`crate::grid`] (equal-area, so every
//!   cell covers exactly `cell_m²`); hexagons are not offered: squares nest with the emerging
//!   hot-spot cube's bins and need no second projection.

use std::collections::BTreeMap;

use geographiclib_rs::{PolygonArea, Winding};
use rayon::prelude::*;
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use shikong_geodesy::measure::cgcs2000;

use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, check_points};
use crate::grid::Grid;
use crate::limits::MAX_POINTS;

/// Divisions in one aggregation.
pub const MAX_DIVISIONS: usize = 100_000;
/// Vertices of all divisions together.
pub const MAX_VERTICES: usize = 20_000_000;
/// Groups (unit × class × period) in one result.
pub const MAX_GROUPS: usize = 1_000_000;
/// Characters of a class, a period key or a division id.
pub const MAX_KEY_CHARS: usize = 200;

/// A polygon: its exterior ring, then its holes; rings closed or not.
pub type Polygon = Vec<Vec<LonLat>>;

/// A division: an id, one or more polygons, and optionally its area and population.
#[derive(Debug, Clone, PartialEq)]
pub struct Division {
    pub id: String,
    pub polygons: Vec<Polygon>,
    /// Population, for rates per 10,000 people.
    pub population: Option<f64>,
    /// Area in m² when known; computed on the ellipsoid when `None`.
    pub area_m2: Option<f64>,
}

/// The calendar period a time falls in, in Beijing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    Day,
    /// ISO 8601 week (Monday first; week 1 holds the year's first Thursday).
    Week,
    Month,
    Year,
}

/// When a feature happened, for grouping by period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum When {
    /// No period: the feature is grouped under none.
    #[default]
    None,
    /// A period key the caller computed.
    Key(String),
    /// Seconds since the epoch, made into a key by the [`PeriodSpec`].
    Time(i64),
}

/// One feature to count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AggFeature {
    pub point: LonLat,
    pub class: Option<String>,
    pub when: When,
    /// The numeric field; `None` is a null.
    pub value: Option<f64>,
}

/// The unit a group is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// A division, by its position in the input.
    Division(usize),
    /// A grid cell.
    Cell([i64; 2]),
    /// In no division.
    Outside,
}

/// The statistics of one unit × class × period.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub unit: Unit,
    pub class: Option<String>,
    pub period: Option<String>,
    pub count: u64,
    /// Features whose value is null.
    pub nulls: u64,
    /// Sum of the non-null values.
    pub sum: f64,
    /// Mean of the non-null values; `None` when all are null.
    pub mean: Option<f64>,
    pub area_m2: Option<f64>,
    pub population: Option<f64>,
    pub count_per_km2: Option<f64>,
    pub count_per_10k_people: Option<f64>,
    pub sum_per_km2: Option<f64>,
    pub sum_per_10k_people: Option<f64>,
}

/// The result: groups ordered by unit, class, period (absent first).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub groups: Vec<Group>,
    /// Area used for each division (given or computed), m²; empty for a grid.
    pub division_areas_m2: Vec<f64>,
    /// The grid of the grid variant.
    pub grid: Option<Grid>,
    /// Features in no division.
    pub outside: u64,
    /// Features in more than one division.
    pub in_several: u64,
}

fn check_key(what: &'static str, index: usize, key: &str) -> Result<()> {
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(AnalysisError::Invalid { what, index, problem: "is longer than MAX_KEY_CHARS = 200 characters" });
    }
    Ok(())
}

/// A ring without its closing repeat of the first point.
fn open_ring(ring: &[LonLat]) -> &[LonLat] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

/// Ellipsoidal area (m²) of polygons: exterior rings minus holes, whatever the orientation.
pub fn geodesic_area_m2(polygons: &[Polygon]) -> f64 {
    let ring_area = |ring: &[LonLat]| {
        let mut pa = PolygonArea::new(cgcs2000(), Winding::CounterClockwise);
        for p in open_ring(ring) {
            pa.add_point(p[1], p[0]);
        }
        // Signed then absolute, so a clockwise ring is not taken for the rest of the globe.
        pa.compute(true).1.abs()
    };
    polygons
        .iter()
        .map(|rings| {
            rings.iter().enumerate().map(|(i, r)| if i == 0 { ring_area(r) } else { -ring_area(r) }).sum::<f64>()
        })
        .sum()
}

/// Crossing-number test of `p` against a ring (closed or not), half-open in y.
fn in_ring(p: LonLat, ring: &[LonLat]) -> bool {
    let ring = open_ring(ring);
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[j], ring[i]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

fn in_polygon(p: LonLat, rings: &Polygon) -> bool {
    in_ring(p, &rings[0]) && !rings[1..].iter().any(|h| in_ring(p, h))
}

type PartBox = GeomWithData<Rectangle<[f64; 2]>, (u32, u32)>;

/// Divisions, checked, with an R-tree over their parts' envelopes and their areas.
#[derive(Debug)]
pub struct DivisionIndex<'a> {
    divisions: &'a [Division],
    tree: RTree<PartBox>,
    areas: Vec<f64>,
}

impl<'a> DivisionIndex<'a> {
    /// Checks the divisions (sizes, coordinates, rings of at least three points, unique ids)
    /// and computes the areas not given.
    pub fn new(divisions: &'a [Division]) -> Result<Self> {
        if divisions.len() > MAX_DIVISIONS {
            return Err(AnalysisError::TooMany {
                what: "divisions",
                got: divisions.len(),
                limit: "MAX_DIVISIONS",
                max: MAX_DIVISIONS,
            });
        }
        let mut vertices = 0usize;
        let mut ids = std::collections::HashSet::new();
        let mut boxes = Vec::new();
        for (index, d) in divisions.iter().enumerate() {
            check_key("division id", index, &d.id)?;
            if !ids.insert(d.id.as_str()) {
                return Err(AnalysisError::Duplicate { what: "division id", id: d.id.clone() });
            }
            let bad = |why: &str| AnalysisError::BadGeometry { what: "division", index, why: why.to_owned() };
            if d.polygons.is_empty() {
                return Err(bad("has no polygon"));
            }
            for (what, v) in [("population", d.population), ("area", d.area_m2)] {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(bad(&format!("{what} {v} is not a finite number >= 0")));
                }
            }
            for (part, rings) in d.polygons.iter().enumerate() {
                if rings.is_empty() {
                    return Err(bad("has a polygon without rings"));
                }
                for ring in rings {
                    vertices += ring.len();
                    if vertices > MAX_VERTICES {
                        return Err(AnalysisError::TooMany {
                            what: "division vertices",
                            got: vertices,
                            limit: "MAX_VERTICES",
                            max: MAX_VERTICES,
                        });
                    }
                    if open_ring(ring).len() < 3 {
                        return Err(bad("has a ring of fewer than 3 points"));
                    }
                    if let Some(p) = ring
                        .iter()
                        .find(|p| !(p[0].is_finite() && p[1].is_finite() && p[0].abs() <= 180.0 && p[1].abs() <= 90.0))
                    {
                        return Err(bad(&format!("vertex {p:?} is not a longitude/latitude")));
                    }
                }
                let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
                for p in &rings[0] {
                    lo = [lo[0].min(p[0]), lo[1].min(p[1])];
                    hi = [hi[0].max(p[0]), hi[1].max(p[1])];
                }
                boxes.push(GeomWithData::new(Rectangle::from_corners(lo, hi), (index as u32, part as u32)));
            }
        }
        let areas = divisions.par_iter().map(|d| d.area_m2.unwrap_or_else(|| geodesic_area_m2(&d.polygons))).collect();
        Ok(Self { divisions, tree: RTree::bulk_load(boxes), areas })
    }

    /// The divisions containing `p`, ascending.
    pub fn locate(&self, p: LonLat) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(AABB::from_point(p))
            .filter(|b| in_polygon(p, &self.divisions[b.data.0 as usize].polygons[b.data.1 as usize]))
            .map(|b| b.data.0 as usize)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Area of division `i`, m² (given or ellipsoidal).
    pub fn area_m2(&self, i: usize) -> f64 {
        self.areas[i]
    }
}

/// Days since 1970-01-01 to (year, month, day) (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of the 1st of January of `year`.
fn days_of_new_year(year: i64) -> i64 {
    let y = year - 1;
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    // days from 0000-03-01 to (year)-01-01, then shift to the epoch
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + 306;
    era * 146_097 + doe - 719_468
}

/// Earliest and latest time (seconds) a period key is made for: years 1–9999.
const TIME_RANGE: (i64, i64) = (-62_135_596_800, 253_402_300_799);

/// The key of the period holding `t` (seconds since the epoch) in Beijing time.
pub fn period_key(t: i64, spec: PeriodSpec) -> Result<String> {
    if !(TIME_RANGE.0..=TIME_RANGE.1).contains(&t) {
        return Err(AnalysisError::OutOfRange {
            what: "time (seconds since the epoch)",
            value: t as f64,
            range: "years 1 to 9999",
        });
    }
    let days = (t + 8 * 3600).div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    Ok(match spec {
        PeriodSpec::Day => format!("{y:04}-{m:02}-{d:02}"),
        PeriodSpec::Month => format!("{y:04}-{m:02}"),
        PeriodSpec::Year => format!("{y:04}"),
        PeriodSpec::Week => {
            // Monday = 0; 1970-01-01 was a Thursday. The ISO year is the year of the week's Thursday.
            let weekday = (days + 3).rem_euclid(7);
            let thursday = days - weekday + 3;
            let (iso_year, _, _) = civil_from_days(thursday);
            let week = (thursday - days_of_new_year(iso_year)) / 7 + 1;
            format!("{iso_year:04}-W{week:02}")
        }
    })
}

#[derive(Default)]
struct Acc {
    count: u64,
    nulls: u64,
    sum: f64,
}

type Key<'f> = (Unit, Option<&'f str>, Option<String>);

fn check_features(features: &[AggFeature], period: Option<PeriodSpec>) -> Result<Vec<Option<String>>> {
    if features.len() > MAX_POINTS {
        return Err(AnalysisError::TooMany {
            what: "features",
            got: features.len(),
            limit: "MAX_POINTS",
            max: MAX_POINTS,
        });
    }
    let points: Vec<LonLat> = features.iter().map(|f| f.point).collect();
    if !points.is_empty() {
        check_points(&points)?;
    }
    features
        .iter()
        .enumerate()
        .map(|(index, f)| {
            if let Some(c) = &f.class {
                check_key("class of feature", index, c)?;
            }
            if let Some(v) = f.value
                && !v.is_finite()
            {
                return Err(AnalysisError::NotFinite { what: "value of feature", index, value: v });
            }
            match (&f.when, period) {
                (When::None, _) => Ok(None),
                (When::Key(k), _) => check_key("period key of feature", index, k).map(|_| Some(k.clone())),
                (When::Time(t), Some(spec)) => period_key(*t, spec).map(Some),
                (When::Time(_), None) => Err(AnalysisError::Invalid {
                    what: "feature",
                    index,
                    problem: "has a time but no period (day, week, month or year) was given",
                }),
            }
        })
        .collect()
}

fn add<'f>(groups: &mut BTreeMap<Key<'f>, Acc>, key: Key<'f>, value: Option<f64>) -> Result<()> {
    let len = groups.len();
    let acc = groups.entry(key).or_default();
    if acc.count == 0 && len >= MAX_GROUPS {
        return Err(AnalysisError::TooMany { what: "groups", got: len + 1, limit: "MAX_GROUPS", max: MAX_GROUPS });
    }
    acc.count += 1;
    match value {
        Some(v) => acc.sum += v,
        None => acc.nulls += 1,
    }
    Ok(())
}

fn finish(groups: BTreeMap<Key<'_>, Acc>, measure: impl Fn(Unit) -> (Option<f64>, Option<f64>)) -> Vec<Group> {
    let rate = |x: f64, base: Option<f64>, scale: f64| base.filter(|b| *b > 0.0).map(|b| x * scale / b);
    groups
        .into_iter()
        .map(|((unit, class, period), acc)| {
            let (area_m2, population) = measure(unit);
            let (count, values) = (acc.count as f64, acc.count - acc.nulls);
            Group {
                unit,
                class: class.map(str::to_owned),
                period,
                count: acc.count,
                nulls: acc.nulls,
                sum: acc.sum,
                mean: (values > 0).then(|| acc.sum / values as f64),
                area_m2,
                population,
                count_per_km2: rate(count, area_m2, 1e6),
                count_per_10k_people: rate(count, population, 1e4),
                sum_per_km2: rate(acc.sum, area_m2, 1e6),
                sum_per_10k_people: rate(acc.sum, population, 1e4),
            }
        })
        .collect()
}

/// Counts, sums, means and rates of `features` per division × class × period.
pub fn aggregate_by_division(
    features: &[AggFeature],
    divisions: &[Division],
    period: Option<PeriodSpec>,
) -> Result<Aggregation> {
    let keys = check_features(features, period)?;
    let index = DivisionIndex::new(divisions)?;
    let located: Vec<Vec<usize>> = features.par_iter().map(|f| index.locate(f.point)).collect();
    let mut groups = BTreeMap::new();
    let (mut outside, mut in_several) = (0, 0);
    for ((f, key), found) in features.iter().zip(keys).zip(located) {
        let class = f.class.as_deref();
        if found.is_empty() {
            outside += 1;
            add(&mut groups, (Unit::Outside, class, key), f.value)?;
            continue;
        }
        in_several += u64::from(found.len() > 1);
        for d in found {
            add(&mut groups, (Unit::Division(d), class, key.clone()), f.value)?;
        }
    }
    let groups = finish(groups, |unit| match unit {
        Unit::Division(d) => (Some(index.area_m2(d)), divisions[d].population),
        _ => (None, None),
    });
    Ok(Aggregation {
        groups,
        division_areas_m2: (0..divisions.len()).map(|d| index.area_m2(d)).collect(),
        grid: None,
        outside,
        in_several,
    })
}

/// Counts, sums, means and rates of `features` per square cell of `cell_m` metres × class ×
/// period (the grid centred on `central_meridian`, or on the features' middle longitude).
pub fn aggregate_by_grid(
    features: &[AggFeature],
    cell_m: f64,
    central_meridian: Option<f64>,
    period: Option<PeriodSpec>,
) -> Result<Aggregation> {
    let keys = check_features(features, period)?;
    if features.is_empty() && central_meridian.is_none() {
        // nothing to centre a grid on, and nothing to count
        return Ok(Aggregation {
            groups: Vec::new(),
            division_areas_m2: Vec::new(),
            grid: None,
            outside: 0,
            in_several: 0,
        });
    }
    let points: Vec<LonLat> = features.iter().map(|f| f.point).collect();
    let grid = Grid::over(&points, cell_m, central_meridian)?;
    let mut groups = BTreeMap::new();
    for ((f, key), p) in features.iter().zip(keys).zip(&points) {
        add(&mut groups, (Unit::Cell(grid.cell_of(*p)), f.class.as_deref(), key), f.value)?;
    }
    let groups = finish(groups, |_| (Some(grid.cell_area_m2()), None));
    Ok(Aggregation { groups, division_areas_m2: Vec::new(), grid: Some(grid), outside: 0, in_several: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 59, 365, 10_957, 20_454, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            let ny = days_of_new_year(y);
            assert!(ny <= days && days - ny < 366, "{days}: {y}-{m}-{d}");
            assert_eq!(civil_from_days(ny), (y, 1, 1));
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_429), (2025, 12, 7));
    }

    #[test]
    fn ring_tests_are_half_open_and_holes_cut() {
        let square = vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]];
        let hole = vec![[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5]];
        let poly = vec![square.clone(), hole];
        assert!(in_polygon([0.25, 0.25], &poly));
        assert!(!in_polygon([1.0, 1.0], &poly));
        assert!(!in_polygon([3.0, 1.0], &poly));
        // a point on the edge shared by two squares lies in exactly one
        let right = vec![vec![[2.0, 0.0], [4.0, 0.0], [4.0, 2.0], [2.0, 2.0]]];
        let on_edge = [2.0, 1.0];
        assert_ne!(in_polygon(on_edge, &vec![square]), in_polygon(on_edge, &right));
    }
}
