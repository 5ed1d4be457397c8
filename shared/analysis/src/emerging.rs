//! Emerging hot-spot analysis, as ArcGIS Pro's tool of that name ("How Emerging Hot Spot
//! Analysis works"): where are hot and cold spots new, growing, lasting, fading or coming and
//! going? The questions a 网格化管理 office asks of its incidents over months.
//!
//! 1. **Space-time cube.** Points with a time are binned on a square grid of `cell_m` metres
//!    ([`crate::grid`], equal-area, so bins compare) and into time steps of `step_s` seconds
//!    aligned to `origin_s` (step `s` is `[origin + s·step, origin + (s+1)·step)`); the steps run
//!    from the first point's to the last's. A bin holds the count of its points, or the sum of
//!    their values. Like ArcGIS, only *locations with data* (cells with a point at any time) are
//!    analysed; their empty bins count as 0.
//! 2. **Gi\* per bin.** A bin's neighbours are the bins of the locations whose cell centres are
//!    within `neighbourhood_m` on the grid (planar, like ArcGIS on its projected cube), itself
//!    included, in the same time step and the `neighbourhood_steps` steps before it (fewer at the
//!    start of the cube): binary weights, the classic Getis–Ord z-score over all bins of the cube
//!    (the esda-verified [`crate::getis`] code, fed these neighbourhoods). Significance is the
//!    two-sided `p < alpha`, after Benjamini–Hochberg over all bins when `fdr` is set (ArcGIS Pro
//!    applies FDR).
//! 3. **Trends.** The Mann–Kendall test ([`crate::trend`]) of each location's series of bin
//!    values and of its series of Gi\* z-scores (an undefined z counts as 0, no clustering).
//! 4. **Categories**, from the per-step states and the z-score trend; see [`classify`] for the
//!    rules and the order in which they are tried where ArcGIS's wording overlaps.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::control::Control;
use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, check_points};
use crate::getis::{GiOptions, GiResult, gi_core};
use crate::grid::Grid;
use crate::limits::{MAX_DISTANCE_M, MAX_NEIGHBOUR_ENTRIES, MAX_PAIRS_VISITED, MAX_POINTS};
use crate::stats::bh_adjust;
use crate::trend::{MannKendall, mann_kendall};

/// Bins (locations × time steps) of one cube: Gi\* runs over the bins as its units, so this is
/// [`MAX_POINTS`].
pub const MAX_CUBE_BINS: usize = MAX_POINTS;
/// Time steps of one cube.
pub const MAX_STEPS: usize = 1_000;
/// Pairs the Mann–Kendall tests compare over all locations (two series each, `T(T-1)/2` pairs).
pub const MAX_TREND_PAIRS: usize = 200_000_000;
/// Longest time step, seconds (a century).
pub const MAX_STEP_S: i64 = 100 * 366 * 86_400;

/// One point of the cube: where, when (seconds since the epoch) and, for a sum, its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StPoint {
    pub lon: f64,
    pub lat: f64,
    pub t: i64,
    pub value: Option<f64>,
}

/// What a bin holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variable {
    /// The number of its points.
    #[default]
    Count,
    /// The sum of its points' values (a point without a value is refused).
    Sum,
}

/// How to build the cube.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubeSpec {
    /// Side of a bin, metres.
    pub cell_m: f64,
    /// Length of a time step, seconds.
    pub step_s: i64,
    /// A time (seconds since the epoch) at which a step starts.
    pub origin_s: i64,
    pub variable: Variable,
    /// Central meridian of the grid; the middle of the data's longitudes when `None`.
    pub central_meridian: Option<f64>,
}

/// A space-time cube: locations with data × time steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Cube {
    pub grid: Grid,
    /// Cells of the locations, ascending.
    cells: Vec<[i64; 2]>,
    /// Index of the first step from the origin.
    first_step: i64,
    steps: usize,
    spec: CubeSpec,
    /// Location-major: bin `loc * steps + step`.
    values: Vec<f64>,
}

fn too_many(what: &'static str, got: usize, limit: &'static str, max: usize) -> AnalysisError {
    AnalysisError::TooMany { what, got, limit, max }
}

impl Cube {
    /// Bins `points` by `spec`.
    pub fn build(points: &[StPoint], spec: &CubeSpec) -> Result<Self> {
        let lonlat: Vec<LonLat> = points.iter().map(|p| [p.lon, p.lat]).collect();
        check_points(&lonlat)?;
        if !(1..=MAX_STEP_S).contains(&spec.step_s) {
            return Err(AnalysisError::OutOfRange {
                what: "time step (seconds)",
                value: spec.step_s as f64,
                range: "1 <= step <= MAX_STEP_S (a century)",
            });
        }
        let grid = Grid::over(&lonlat, spec.cell_m, spec.central_meridian)?;
        let mut step_of = Vec::with_capacity(points.len());
        for (index, p) in points.iter().enumerate() {
            let since = p.t.checked_sub(spec.origin_s).ok_or(AnalysisError::OutOfRange {
                what: "point time from the origin (seconds)",
                value: p.t as f64,
                range: "within ±2^63 seconds of the origin",
            })?;
            step_of.push(since.div_euclid(spec.step_s));
            if spec.variable == Variable::Sum {
                match p.value {
                    Some(v) if v.is_finite() => {}
                    Some(value) => return Err(AnalysisError::NotFinite { what: "value of point", index, value }),
                    None => {
                        return Err(AnalysisError::Invalid {
                            what: "point",
                            index,
                            problem: "has no value, which a sum needs",
                        });
                    }
                }
            }
        }
        let first_step = step_of.iter().copied().min().unwrap_or(0);
        let last_step = step_of.iter().copied().max().unwrap_or(0);
        let span = last_step.abs_diff(first_step).saturating_add(1);
        if span > MAX_STEPS as u64 {
            return Err(too_many("time steps", span.min(usize::MAX as u64) as usize, "MAX_STEPS", MAX_STEPS));
        }
        let steps = span as usize;
        let mut cells: Vec<[i64; 2]> = lonlat.iter().map(|&p| grid.cell_of(p)).collect();
        let cell_of_point = cells.clone();
        cells.sort_unstable();
        cells.dedup();
        let bins = cells.len().saturating_mul(steps);
        if bins > MAX_CUBE_BINS {
            return Err(too_many("bins (locations × time steps)", bins, "MAX_CUBE_BINS", MAX_CUBE_BINS));
        }
        let index: HashMap<[i64; 2], usize> = cells.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let mut values = vec![0.0; bins];
        for (i, p) in points.iter().enumerate() {
            let loc = index[&cell_of_point[i]];
            let step = (step_of[i] - first_step) as usize;
            values[loc * steps + step] += match spec.variable {
                Variable::Count => 1.0,
                Variable::Sum => p.value.unwrap_or(0.0),
            };
        }
        Ok(Self { grid, cells, first_step, steps, spec: *spec, values })
    }

    /// The locations' cells, ascending (the location index is the position here).
    pub fn cells(&self) -> &[[i64; 2]] {
        &self.cells
    }

    /// Number of time steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Start of time step `step` (seconds since the epoch).
    pub fn step_start(&self, step: usize) -> i64 {
        self.spec.origin_s + (self.first_step + step as i64) * self.spec.step_s
    }

    /// Bin values, location-major ([`Cube::bin`] gives the index).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Index of a bin in [`Cube::values`].
    pub fn bin(&self, location: usize, step: usize) -> usize {
        location * self.steps + step
    }

    /// For each location, the other locations whose cell centres are within `metres` on the grid.
    pub fn spatial_neighbours(&self, metres: f64) -> Result<Vec<Vec<u32>>> {
        if !(metres.is_finite() && metres > 0.0 && metres <= MAX_DISTANCE_M) {
            return Err(AnalysisError::OutOfRange {
                what: "neighbourhood distance (metres)",
                value: metres,
                range: "0 < distance <= MAX_DISTANCE_M = 500000",
            });
        }
        // Within, in cells squared; the relative slack keeps 3 × 0.1 km from missing 0.3 km.
        let r2 = (metres / self.grid.cell_m).powi(2) * (1.0 + 1e-9);
        let within = |a: [i64; 2], b: [i64; 2]| {
            let (dx, dy) = ((a[0] - b[0]) as f64, (a[1] - b[1]) as f64);
            dx * dx + dy * dy <= r2
        };
        let n = self.cells.len();
        let r = r2.sqrt().floor() as i64;
        let stencil_len = (2 * r as u128 + 1).pow(2);
        let mut lists: Vec<Vec<u32>> = Vec::with_capacity(n);
        let mut entries = 0usize;
        if stencil_len <= n as u128 {
            let visits = n.saturating_mul(stencil_len as usize);
            if visits > MAX_PAIRS_VISITED {
                return Err(too_many("neighbour cells visited", visits, "MAX_PAIRS_VISITED", MAX_PAIRS_VISITED));
            }
            let index: HashMap<[i64; 2], u32> = self.cells.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
            let mut offsets = Vec::new();
            for dx in -r..=r {
                for dy in -r..=r {
                    if (dx, dy) != (0, 0) && within([dx, dy], [0, 0]) {
                        offsets.push([dx, dy]);
                    }
                }
            }
            for &c in &self.cells {
                let mut row: Vec<u32> =
                    offsets.iter().filter_map(|o| index.get(&[c[0] + o[0], c[1] + o[1]]).copied()).collect();
                row.sort_unstable();
                entries += row.len();
                if entries > MAX_NEIGHBOUR_ENTRIES {
                    return Err(too_many("neighbour entries", entries, "MAX_NEIGHBOUR_ENTRIES", MAX_NEIGHBOUR_ENTRIES));
                }
                lists.push(row);
            }
        } else {
            let visits = n.saturating_mul(n);
            if visits > MAX_PAIRS_VISITED {
                return Err(too_many("location pairs compared", visits, "MAX_PAIRS_VISITED", MAX_PAIRS_VISITED));
            }
            for (i, &c) in self.cells.iter().enumerate() {
                let row: Vec<u32> = (0..n).filter(|&j| j != i && within(c, self.cells[j])).map(|j| j as u32).collect();
                entries += row.len();
                if entries > MAX_NEIGHBOUR_ENTRIES {
                    return Err(too_many("neighbour entries", entries, "MAX_NEIGHBOUR_ENTRIES", MAX_NEIGHBOUR_ENTRIES));
                }
                lists.push(row);
            }
        }
        Ok(lists)
    }

    /// Gi\* of every bin (in [`Cube::values`] order) over the space-time neighbourhood of
    /// `neighbourhood_m` and the `neighbourhood_steps` previous steps (binary weights).
    pub fn gi_star(&self, neighbourhood_m: f64, neighbourhood_steps: usize) -> Result<Vec<GiResult>> {
        self.gi_star_with(neighbourhood_m, neighbourhood_steps, &Control::NONE)
    }

    /// [`Cube::gi_star`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so.
    pub fn gi_star_with(
        &self,
        neighbourhood_m: f64,
        neighbourhood_steps: usize,
        ctl: &Control<'_>,
    ) -> Result<Vec<GiResult>> {
        let lists = self.spatial_neighbours(neighbourhood_m)?;
        let steps = self.steps;
        if neighbourhood_steps > MAX_STEPS {
            return Err(too_many("neighbourhood time steps", neighbourhood_steps, "MAX_STEPS", MAX_STEPS));
        }
        let window = neighbourhood_steps.min(steps.saturating_sub(1)) + 1;
        let entries: usize = lists.iter().map(Vec::len).sum();
        let work = (entries + self.cells.len()).saturating_mul(steps).saturating_mul(window);
        if work > MAX_PAIRS_VISITED {
            return Err(too_many("space-time neighbour pairs", work, "MAX_PAIRS_VISITED", MAX_PAIRS_VISITED));
        }
        ctl.check()?;
        // Each location's spatial sum (itself and its neighbours) per step.
        let values = &self.values;
        let spatial: Vec<f64> = (0..self.cells.len())
            .into_par_iter()
            .flat_map_iter(|loc| {
                let row = &lists[loc];
                (0..steps).map(move |s| {
                    values[loc * steps + s] + row.iter().map(|&l| values[l as usize * steps + s]).sum::<f64>()
                })
            })
            .collect();
        let lag = |b: usize| {
            let (loc, t) = (b / steps, b % steps);
            let from = (t + 1).saturating_sub(window);
            let w = t + 1 - from;
            let k = (lists[loc].len() + 1) * w - 1;
            let sum: f64 = spatial[loc * steps + from..=loc * steps + t].iter().sum::<f64>() - values[b];
            (k, sum)
        };
        ctl.check()?;
        gi_core(values, values.len(), lag, &GiOptions::default(), ctl)
    }
}

/// A bin's significance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinState {
    Hot,
    Cold,
    NotSignificant,
}

impl BinState {
    /// `1`, `-1` or `0`, as a compact wire form.
    pub fn code(self) -> i8 {
        match self {
            BinState::Hot => 1,
            BinState::Cold => -1,
            BinState::NotSignificant => 0,
        }
    }
}

/// The patterns of ArcGIS's Emerging Hot Spot Analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    NoPattern,
    NewHotSpot,
    ConsecutiveHotSpot,
    IntensifyingHotSpot,
    PersistentHotSpot,
    DiminishingHotSpot,
    SporadicHotSpot,
    OscillatingHotSpot,
    HistoricalHotSpot,
    NewColdSpot,
    ConsecutiveColdSpot,
    IntensifyingColdSpot,
    PersistentColdSpot,
    DiminishingColdSpot,
    SporadicColdSpot,
    OscillatingColdSpot,
    HistoricalColdSpot,
}

impl Category {
    pub const ALL: [Category; 17] = [
        Category::NoPattern,
        Category::NewHotSpot,
        Category::ConsecutiveHotSpot,
        Category::IntensifyingHotSpot,
        Category::PersistentHotSpot,
        Category::DiminishingHotSpot,
        Category::SporadicHotSpot,
        Category::OscillatingHotSpot,
        Category::HistoricalHotSpot,
        Category::NewColdSpot,
        Category::ConsecutiveColdSpot,
        Category::IntensifyingColdSpot,
        Category::PersistentColdSpot,
        Category::DiminishingColdSpot,
        Category::SporadicColdSpot,
        Category::OscillatingColdSpot,
        Category::HistoricalColdSpot,
    ];

    /// Stable snake_case name (the wire form).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::NoPattern => "no_pattern",
            Category::NewHotSpot => "new_hot_spot",
            Category::ConsecutiveHotSpot => "consecutive_hot_spot",
            Category::IntensifyingHotSpot => "intensifying_hot_spot",
            Category::PersistentHotSpot => "persistent_hot_spot",
            Category::DiminishingHotSpot => "diminishing_hot_spot",
            Category::SporadicHotSpot => "sporadic_hot_spot",
            Category::OscillatingHotSpot => "oscillating_hot_spot",
            Category::HistoricalHotSpot => "historical_hot_spot",
            Category::NewColdSpot => "new_cold_spot",
            Category::ConsecutiveColdSpot => "consecutive_cold_spot",
            Category::IntensifyingColdSpot => "intensifying_cold_spot",
            Category::PersistentColdSpot => "persistent_cold_spot",
            Category::DiminishingColdSpot => "diminishing_cold_spot",
            Category::SporadicColdSpot => "sporadic_cold_spot",
            Category::OscillatingColdSpot => "oscillating_cold_spot",
            Category::HistoricalColdSpot => "historical_cold_spot",
        }
    }

    /// The category named by [`Category::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The Chinese label for legends.
    pub fn label_zh(self) -> &'static str {
        match self {
            Category::NoPattern => "无显著模式",
            Category::NewHotSpot => "新热点",
            Category::ConsecutiveHotSpot => "连续热点",
            Category::IntensifyingHotSpot => "增强热点",
            Category::PersistentHotSpot => "持续热点",
            Category::DiminishingHotSpot => "减弱热点",
            Category::SporadicHotSpot => "零星热点",
            Category::OscillatingHotSpot => "振荡热点",
            Category::HistoricalHotSpot => "历史热点",
            Category::NewColdSpot => "新冷点",
            Category::ConsecutiveColdSpot => "连续冷点",
            Category::IntensifyingColdSpot => "增强冷点",
            Category::PersistentColdSpot => "持续冷点",
            Category::DiminishingColdSpot => "减弱冷点",
            Category::SporadicColdSpot => "零星冷点",
            Category::OscillatingColdSpot => "振荡冷点",
            Category::HistoricalColdSpot => "历史冷点",
        }
    }
}

/// The categories of one side (hot or cold), in [`Category::ALL`]'s order from `New`.
const HOT: [Category; 8] = [
    Category::NewHotSpot,
    Category::ConsecutiveHotSpot,
    Category::IntensifyingHotSpot,
    Category::PersistentHotSpot,
    Category::DiminishingHotSpot,
    Category::SporadicHotSpot,
    Category::OscillatingHotSpot,
    Category::HistoricalHotSpot,
];
const COLD: [Category; 8] = [
    Category::NewColdSpot,
    Category::ConsecutiveColdSpot,
    Category::IntensifyingColdSpot,
    Category::PersistentColdSpot,
    Category::DiminishingColdSpot,
    Category::SporadicColdSpot,
    Category::OscillatingColdSpot,
    Category::HistoricalColdSpot,
];

/// The category of a location from its bins' states (oldest first) and the Mann–Kendall test of
/// its Gi\* z-scores. With `n` steps, "90 %" means at least `0.9·n` of them. Rules for a hot spot
/// (a cold spot mirrors them, "intensifying" then meaning z falling significantly):
///
/// - the final step hot and ≥ 90 % of steps hot: **intensifying** if the z trend rises with
///   `p < alpha`, **diminishing** if it falls so, else **persistent**;
/// - the final step hot, < 90 % hot, a cold step before: **oscillating**;
/// - else (never cold) the only hot step is the final one: **new**;
/// - else the hot steps are one uninterrupted final run of at least two: **consecutive**;
/// - else (on and off, never cold): **sporadic**;
/// - the final step not significant and ≥ 90 % of steps hot: **historical**;
/// - anything else: **no pattern**.
///
/// ArcGIS's wording leaves the order open where definitions overlap ("persistent" does not say
/// whether the final step is hot; "new" only excludes earlier *hot* steps): a location with a
/// cold past that turns hot is oscillating here, and one that was hot ≥ 90 % but not at the end
/// is historical.
pub fn classify(states: &[BinState], z_trend: &MannKendall, alpha: f64) -> Category {
    let Some(&last) = states.last() else { return Category::NoPattern };
    let n = states.len();
    let count = |s: BinState| states.iter().filter(|&&x| x == s).count();
    let (hot, cold) = (count(BinState::Hot), count(BinState::Cold));
    let ninety = |c: usize| 10 * c >= 9 * n;
    let trend = if z_trend.p < alpha { z_trend.z.signum() } else { 0.0 };
    let side = |this: BinState, this_count: usize, other_count: usize, names: &[Category; 8], rising: f64| {
        if ninety(this_count) {
            return if trend == rising {
                names[2]
            } else if trend == -rising {
                names[4]
            } else {
                names[3]
            };
        }
        if other_count > 0 {
            return names[6];
        }
        if this_count == 1 {
            return names[0];
        }
        let run = states.iter().rev().take_while(|&&s| s == this).count();
        if run == this_count && run >= 2 { names[1] } else { names[5] }
    };
    match last {
        BinState::Hot => side(BinState::Hot, hot, cold, &HOT, 1.0),
        BinState::Cold => side(BinState::Cold, cold, hot, &COLD, -1.0),
        BinState::NotSignificant if ninety(hot) => Category::HistoricalHotSpot,
        BinState::NotSignificant if ninety(cold) => Category::HistoricalColdSpot,
        BinState::NotSignificant => Category::NoPattern,
    }
}

/// Parameters of [`emerging_hot_spots`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmergingOptions {
    pub cube: CubeSpec,
    /// Neighbourhood distance, metres (between cell centres, on the grid).
    pub neighbourhood_m: f64,
    /// Previous time steps in the neighbourhood (ArcGIS's "Neighborhood Time Step").
    pub neighbourhood_steps: usize,
    /// Significance level of bins and trends (0.05 by ArcGIS's convention).
    pub alpha: f64,
    /// Benjamini–Hochberg over all bins before the bin significance test.
    pub fdr: bool,
}

/// One analysed location.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationTrend {
    pub cell: [i64; 2],
    pub centre: LonLat,
    pub category: Category,
    /// Bin values (count or sum), oldest step first.
    pub values: Vec<f64>,
    /// Gi\* z-score per step (`None` where undefined).
    pub z: Vec<Option<f64>>,
    /// Two-sided p per step (Benjamini–Hochberg adjusted when `fdr`).
    pub p: Vec<Option<f64>>,
    pub states: Vec<BinState>,
    /// Mann–Kendall test of `values`.
    pub value_trend: MannKendall,
    /// Mann–Kendall test of `z` (undefined z taken as 0); the trend the categories use.
    pub z_trend: MannKendall,
}

/// The analysis: the cube (its grid and steps) and every location with data.
#[derive(Debug, Clone, PartialEq)]
pub struct EmergingResult {
    pub cube: Cube,
    pub locations: Vec<LocationTrend>,
}

impl EmergingResult {
    /// Number of locations per category, in [`Category::ALL`]'s order.
    pub fn tally(&self) -> Vec<(Category, usize)> {
        Category::ALL.iter().map(|&c| (c, self.locations.iter().filter(|l| l.category == c).count())).collect()
    }
}

/// Emerging hot-spot analysis of `points` (see the module docs).
pub fn emerging_hot_spots(points: &[StPoint], opts: &EmergingOptions) -> Result<EmergingResult> {
    emerging_hot_spots_with(points, opts, &Control::NONE)
}

/// [`emerging_hot_spots`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so
/// (checked between its stages and every few thousand bins or locations).
pub fn emerging_hot_spots_with(
    points: &[StPoint],
    opts: &EmergingOptions,
    ctl: &Control<'_>,
) -> Result<EmergingResult> {
    if !(opts.alpha > 0.0 && opts.alpha < 1.0) {
        return Err(AnalysisError::OutOfRange { what: "alpha", value: opts.alpha, range: "0 < alpha < 1" });
    }
    let cube = Cube::build(points, &opts.cube)?;
    let steps = cube.steps();
    if steps < 2 {
        return Err(AnalysisError::Degenerate { what: "time steps", why: "a trend needs at least 2 time steps" });
    }
    let pairs = cube.cells().len().saturating_mul(steps * (steps - 1));
    if pairs > MAX_TREND_PAIRS {
        return Err(too_many("trend test pairs", pairs, "MAX_TREND_PAIRS", MAX_TREND_PAIRS));
    }
    ctl.check()?;
    let gi = cube.gi_star_with(opts.neighbourhood_m, opts.neighbourhood_steps, ctl)?;
    let raw: Vec<f64> = gi.iter().map(|r| r.p_two_sided.unwrap_or(1.0)).collect();
    let p: Vec<f64> = if opts.fdr { bh_adjust(&raw)? } else { raw };
    let locations = (0..cube.cells().len())
        .into_par_iter()
        .map(|loc| {
            ctl.every(loc)?;
            let range = cube.bin(loc, 0)..cube.bin(loc, 0) + steps;
            let z: Vec<Option<f64>> = gi[range.clone()].iter().map(|r| r.z).collect();
            let states: Vec<BinState> = range
                .clone()
                .map(|b| match gi[b].z {
                    Some(z) if p[b] < opts.alpha && z > 0.0 => BinState::Hot,
                    Some(z) if p[b] < opts.alpha && z < 0.0 => BinState::Cold,
                    _ => BinState::NotSignificant,
                })
                .collect();
            let values = cube.values()[range.clone()].to_vec();
            let value_trend = mann_kendall(&values)?;
            let z_trend = mann_kendall(&z.iter().map(|z| z.unwrap_or(0.0)).collect::<Vec<_>>())?;
            let cell = cube.cells()[loc];
            Ok(LocationTrend {
                cell,
                centre: cube.grid.cell_centre(cell),
                category: classify(&states, &z_trend, opts.alpha),
                values,
                p: range.clone().map(|b| gi[b].z.map(|_| p[b])).collect(),
                z,
                states,
                value_trend,
                z_trend,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EmergingResult { cube, locations })
}
