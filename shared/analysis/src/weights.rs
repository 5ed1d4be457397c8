//! Spatial weights: who is whose neighbour, stored once, read by every statistic.
//!
//! Only binary and row-standardised weights are offered (PySAL's `transform="B"` and `"R"`),
//! so a weights object stores just the neighbour lists (compressed rows of `u32` indices, sorted
//! within each row) and the [`Transform`] gives each entry's value when a statistic reads it:
//! `1`, or `1 / cardinality`. That keeps a 500 m band over 100k points in a few hundred megabytes.
//!
//! Builders: distance band (geodesic metres, inclusive like libpysal's `DistanceBand`), k nearest
//! (geodesic, ties by lower index; not symmetric, like libpysal's `KNN`), queen contiguity of
//! polygons (a shared vertex, compared exactly, like libpysal's `Queen`), or neighbour lists given
//! by the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{AnalysisError, Result};
use crate::geodesic::{BandGrid, LonLat, Near, PointIndex, check_points};
use crate::limits::{MAX_DISTANCE_M, MAX_K, MAX_NEIGHBOUR_ENTRIES, MAX_PAIRS_VISITED, MAX_POINTS, MIN_DISTANCE_M};

/// How a neighbour's weight is valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transform {
    /// Every neighbour weighs 1 (PySAL `"B"`; the classic Getis-Ord and ArcGIS Gi*).
    #[default]
    Binary,
    /// Each row sums to 1: every neighbour of a unit with `k` neighbours weighs `1/k` (PySAL `"R"`).
    Row,
}

/// Which weights to build from points; the inputs of the `hotspot` process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightsSpec {
    /// Every point within this geodesic distance (metres, inclusive).
    DistanceBand { metres: f64 },
    /// The k geodesically nearest points.
    Knn { k: usize },
}

/// Neighbour lists of `n` units, in compressed rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    offsets: Vec<usize>,
    neighbours: Vec<u32>,
}

fn too_many_entries(got: usize) -> AnalysisError {
    AnalysisError::TooMany {
        what: "neighbour entries of the weights",
        got,
        limit: "MAX_NEIGHBOUR_ENTRIES",
        max: MAX_NEIGHBOUR_ENTRIES,
    }
}

fn check_band(points: &[LonLat], metres: f64) -> Result<()> {
    check_points(points)?;
    if !(metres.is_finite() && (MIN_DISTANCE_M..=MAX_DISTANCE_M).contains(&metres)) {
        return Err(AnalysisError::OutOfRange {
            what: "distance band (metres)",
            value: metres,
            range: "MIN_DISTANCE_M = 0.001 <= distance <= MAX_DISTANCE_M = 500000",
        });
    }
    Ok(())
}

/// For each point, the number of points within `metres` and the sum of their `values` (which
/// has one value per point): the distance-band weights' row sums, without storing the rows.
/// Nothing is stored, so the bound is `MAX_PAIRS_VISITED` rather than `MAX_NEIGHBOUR_ENTRIES`.
pub(crate) fn band_lags(points: &[LonLat], metres: f64, values: &[f64]) -> Result<Vec<(usize, f64)>> {
    check_band(points, metres)?;
    let grid = BandGrid::new(points, metres);
    let total = AtomicUsize::new(0);
    let in_order: Vec<(usize, f64)> = grid
        .spatial_order()
        .par_iter()
        .map_init(Near::default, |near, &i| {
            let (mut k, mut sum) = (0usize, 0.0);
            if total.load(Ordering::Relaxed) <= MAX_PAIRS_VISITED {
                grid.for_each_within_near(i as usize, near, |j| {
                    k += 1;
                    sum += values[j];
                    k < MAX_PAIRS_VISITED
                });
                total.fetch_add(k, Ordering::Relaxed);
            }
            (k, sum)
        })
        .collect();
    let mut lags = vec![(0, 0.0); points.len()];
    for (&i, lag) in grid.spatial_order().iter().zip(in_order) {
        lags[i as usize] = lag;
    }
    match total.load(Ordering::Relaxed) {
        t if t > MAX_PAIRS_VISITED => Err(AnalysisError::TooMany {
            what: "neighbour pairs within the band",
            got: t,
            limit: "MAX_PAIRS_VISITED",
            max: MAX_PAIRS_VISITED,
        }),
        _ => Ok(lags),
    }
}

/// Rows per parallel task: large enough to amortise the task, small enough to balance two to
/// many cores.
const CHUNK: usize = 2048;

impl Weights {
    /// Builds weights from `spec` over `points`.
    pub fn from_spec(points: &[LonLat], spec: WeightsSpec) -> Result<Self> {
        match spec {
            WeightsSpec::DistanceBand { metres } => Self::distance_band(points, metres),
            WeightsSpec::Knn { k } => Self::knn(points, k),
        }
    }

    /// Every pair of points at most `metres` apart (geodesic, inclusive) are neighbours. Points
    /// with none are islands (their statistics have no z-score, as in esda).
    pub fn distance_band(points: &[LonLat], metres: f64) -> Result<Self> {
        check_band(points, metres)?;
        let grid = BandGrid::new(points, metres);
        let total = AtomicUsize::new(0);
        Self::build_rows(points.len(), grid.spatial_order(), |near: &mut Near, i, row| {
            grid.for_each_within_near(i, near, |j| {
                row.push(j as u32);
                // Count as we go so a hostile input (a million coincident points) stops early.
                total.fetch_add(1, Ordering::Relaxed) < MAX_NEIGHBOUR_ENTRIES
            });
            match total.load(Ordering::Relaxed) {
                t if t > MAX_NEIGHBOUR_ENTRIES => Err(too_many_entries(t)),
                _ => Ok(()),
            }
        })
    }

    /// Each point's `k` geodesically nearest other points (ties at equal distance go to the lower
    /// index). `1 <= k < n` and `k <= MAX_K`.
    pub fn knn(points: &[LonLat], k: usize) -> Result<Self> {
        check_points(points)?;
        if k == 0 {
            return Err(AnalysisError::OutOfRange { what: "k", value: 0.0, range: "k >= 1" });
        }
        if k > MAX_K {
            return Err(AnalysisError::TooMany { what: "k nearest neighbours", got: k, limit: "MAX_K", max: MAX_K });
        }
        if k >= points.len() {
            return Err(AnalysisError::KNotBelowN { k, n: points.len() });
        }
        if points.len().saturating_mul(k) > MAX_NEIGHBOUR_ENTRIES {
            return Err(too_many_entries(points.len() * k));
        }
        let index = PointIndex::new(points);
        let order: Vec<u32> = (0..points.len() as u32).collect();
        Self::build_rows(points.len(), &order, |_: &mut (), i, row| {
            row.extend(index.k_nearest(i, k)?.into_iter().map(|(j, _)| j as u32));
            Ok(())
        })
    }

    /// Fills the rows with `fill(state, i, row)` in parallel chunks of `order` (a permutation
    /// of the units: an order whose neighbouring units share data runs from cache), sorts each
    /// row, and packs them by unit.
    fn build_rows<S: Default>(
        n: usize,
        order: &[u32],
        fill: impl Fn(&mut S, usize, &mut Vec<u32>) -> Result<()> + Sync,
    ) -> Result<Self> {
        let chunks: Vec<Result<(Vec<usize>, Vec<u32>)>> = order
            .par_chunks(CHUNK)
            .map(|units| {
                let mut state = S::default();
                let mut lens = Vec::with_capacity(units.len());
                let mut flat = Vec::new();
                let mut row = Vec::new();
                for &i in units {
                    row.clear();
                    fill(&mut state, i as usize, &mut row)?;
                    // stable sort: it merges the few ascending runs (one per cube) a row comes in
                    row.sort();
                    lens.push(row.len());
                    flat.extend_from_slice(&row);
                }
                Ok((lens, flat))
            })
            .collect();
        // Where each unit's row starts in its chunk, then the rows copied in unit order.
        let mut chunks_ok = Vec::with_capacity(chunks.len());
        let mut len_of = vec![0usize; n];
        let mut at = vec![(0u32, 0usize); n];
        for (c, chunk) in chunks.into_iter().enumerate() {
            let (lens, flat) = chunk?;
            let mut start = 0;
            for (&i, &len) in order[c * CHUNK..].iter().zip(&lens) {
                len_of[i as usize] = len;
                at[i as usize] = (c as u32, start);
                start += len;
            }
            chunks_ok.push(flat);
        }
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut neighbours = Vec::with_capacity(len_of.iter().sum());
        for i in 0..n {
            let (c, start) = at[i];
            neighbours.extend_from_slice(&chunks_ok[c as usize][start..start + len_of[i]]);
            offsets.push(neighbours.len());
        }
        Ok(Self { offsets, neighbours })
    }

    /// Queen contiguity: polygons sharing at least one vertex (coordinates equal exactly) are
    /// neighbours. Each polygon is a list of rings of `[x, y]`; the coordinates may be in any CRS.
    pub fn queen(polygons: &[Vec<Vec<LonLat>>]) -> Result<Self> {
        if polygons.is_empty() {
            return Err(AnalysisError::Empty { what: "polygons" });
        }
        if polygons.len() > MAX_POINTS {
            return Err(AnalysisError::TooMany {
                what: "polygons",
                got: polygons.len(),
                limit: "MAX_POINTS",
                max: MAX_POINTS,
            });
        }
        // vertex -> polygons having it; -0.0 and 0.0 are one coordinate.
        let key = |v: f64| if v == 0.0 { 0u64 } else { v.to_bits() };
        let mut at: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
        let mut vertices = 0usize;
        for (i, polygon) in polygons.iter().enumerate() {
            for ring in polygon {
                for p in ring {
                    vertices += 1;
                    if vertices > MAX_NEIGHBOUR_ENTRIES {
                        return Err(AnalysisError::TooMany {
                            what: "polygon vertices",
                            got: vertices,
                            limit: "MAX_NEIGHBOUR_ENTRIES",
                            max: MAX_NEIGHBOUR_ENTRIES,
                        });
                    }
                    for v in p {
                        if !v.is_finite() {
                            return Err(AnalysisError::NotFinite {
                                what: "vertex coordinate of polygon",
                                index: i,
                                value: *v,
                            });
                        }
                    }
                    let owners = at.entry((key(p[0]), key(p[1]))).or_default();
                    if owners.last() != Some(&(i as u32)) {
                        owners.push(i as u32);
                    }
                }
            }
        }
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); polygons.len()];
        let mut entries = 0usize;
        for owners in at.values() {
            for &a in owners {
                for &b in owners {
                    if a != b {
                        lists[a as usize].push(b);
                        entries += 1;
                    }
                }
            }
            if entries > 2 * MAX_NEIGHBOUR_ENTRIES {
                return Err(too_many_entries(entries));
            }
        }
        for l in &mut lists {
            l.sort_unstable();
            l.dedup();
        }
        Self::pack(lists)
    }

    /// Weights from neighbour lists given by the caller (e.g. contiguity computed elsewhere):
    /// `lists[i]` holds the indices of unit `i`'s neighbours, none equal to `i`, none repeated.
    pub fn from_neighbours(lists: &[Vec<usize>]) -> Result<Self> {
        if lists.is_empty() {
            return Err(AnalysisError::Empty { what: "neighbour lists" });
        }
        let n = lists.len();
        if n > MAX_POINTS {
            return Err(AnalysisError::TooMany { what: "units", got: n, limit: "MAX_POINTS", max: MAX_POINTS });
        }
        let total: usize = lists.iter().map(Vec::len).sum();
        if total > MAX_NEIGHBOUR_ENTRIES {
            return Err(too_many_entries(total));
        }
        let mut rows = Vec::with_capacity(n);
        for (unit, list) in lists.iter().enumerate() {
            let mut row = Vec::with_capacity(list.len());
            for &neighbour in list {
                if neighbour >= n {
                    return Err(AnalysisError::BadNeighbour { unit, neighbour, problem: "no such unit" });
                }
                if neighbour == unit {
                    return Err(AnalysisError::BadNeighbour {
                        unit,
                        neighbour,
                        problem: "a unit is not its own neighbour",
                    });
                }
                row.push(neighbour as u32);
            }
            row.sort_unstable();
            if let Some(w) = row.windows(2).find(|w| w[0] == w[1]) {
                return Err(AnalysisError::BadNeighbour { unit, neighbour: w[0] as usize, problem: "listed twice" });
            }
            rows.push(row);
        }
        Self::pack(rows)
    }

    fn pack(rows: Vec<Vec<u32>>) -> Result<Self> {
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut neighbours = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        for row in rows {
            neighbours.extend_from_slice(&row);
            offsets.push(neighbours.len());
        }
        Ok(Self { offsets, neighbours })
    }

    /// Number of units.
    pub fn n(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Unit `i`'s neighbours, ascending.
    pub fn neighbours(&self, i: usize) -> &[u32] {
        &self.neighbours[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Number of neighbours of unit `i`.
    pub fn cardinality(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// All neighbour entries (pairs counted in both directions when symmetric).
    pub fn entries(&self) -> usize {
        self.neighbours.len()
    }

    /// Units without neighbours.
    pub fn islands(&self) -> usize {
        (0..self.n()).filter(|&i| self.cardinality(i) == 0).count()
    }

    /// `Σ_j w_ij · values[j]` over unit `i`'s neighbours, before the transform.
    pub(crate) fn neighbour_sum(&self, i: usize, values: &[f64]) -> f64 {
        self.neighbours(i).iter().map(|&j| values[j as usize]).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64) -> Vec<Vec<LonLat>> {
        vec![vec![[x, y], [x + 1.0, y], [x + 1.0, y + 1.0], [x, y + 1.0], [x, y]]]
    }

    #[test]
    fn queen_on_a_three_by_three_grid() {
        let polygons: Vec<_> = (0..9).map(|i| square((i % 3) as f64, (i / 3) as f64)).collect();
        let w = Weights::queen(&polygons).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.neighbours(4), &[0, 1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(w.neighbours(0), &[1, 3, 4]);
        assert_eq!(w.neighbours(1), &[0, 2, 3, 4, 5]);
        assert_eq!(w.entries(), 40);
    }

    #[test]
    fn caller_lists_are_checked() {
        assert!(matches!(
            Weights::from_neighbours(&[vec![1], vec![0, 2]]),
            Err(AnalysisError::BadNeighbour { unit: 1, neighbour: 2, .. })
        ));
        assert!(matches!(
            Weights::from_neighbours(&[vec![0]]),
            Err(AnalysisError::BadNeighbour { unit: 0, neighbour: 0, .. })
        ));
        assert!(matches!(
            Weights::from_neighbours(&[vec![1, 1], vec![0]]),
            Err(AnalysisError::BadNeighbour { unit: 0, neighbour: 1, .. })
        ));
    }

    #[test]
    fn bounds_are_named() {
        let pts = [[114.4, 30.5], [114.41, 30.5]];
        assert!(matches!(Weights::knn(&pts, 2), Err(AnalysisError::KNotBelowN { k: 2, n: 2 })));
        assert!(matches!(Weights::knn(&pts, 5000), Err(AnalysisError::TooMany { limit: "MAX_K", .. })));
        assert!(matches!(Weights::distance_band(&pts, f64::NAN), Err(AnalysisError::OutOfRange { .. })));
        assert!(matches!(
            Weights::distance_band(&[[114.4, f64::NAN]], 10.0),
            Err(AnalysisError::NotFinite { index: 0, .. })
        ));
        assert!(matches!(
            Weights::distance_band(&[[114.4, 91.0]], 10.0),
            Err(AnalysisError::LatitudeOutOfRange { .. })
        ));
        assert!(matches!(Weights::distance_band(&[], 10.0), Err(AnalysisError::Empty { .. })));
    }
}
