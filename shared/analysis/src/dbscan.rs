//! DBSCAN on geodesic distances: clusters of points with at least `min_samples` points (itself
//! included) within `eps` metres, as scikit-learn's `DBSCAN(eps, min_samples)` defines them
//! (neighbourhoods inclusive of `eps`).
//!
//! Labels are exactly scikit-learn's, numbering included: clusters are grown from core points in
//! index order, so cluster 0 holds the lowest-indexed core point, cluster 1 the lowest core point
//! not in cluster 0, and so on; a border point within reach of two clusters joins the one grown
//! first (the lower-numbered). Noise is [`NOISE`] (-1).
//!
//! scikit-learn's growth is a breadth-first search over stored neighbourhoods; the same labels
//! come from much less work on a grid of earth-centred (ECEF) cubes whose diagonal is shorter
//! than the chord that surely means "within `eps`" (see [`crate::geodesic`]):
//!
//! - all points of a cube are neighbours of each other, so a cube holding `min_samples` points is
//!   all core without a distance computed, and all core points of a cube are in one cluster;
//! - a cube wholly within that chord of a point counts whole, and one wholly beyond the reach is
//!   skipped, so only cubes straddling the boundary are compared point by point;
//! - clusters are the connected components of cubes with core points (union-find, linked where
//!   one pair of core points is within `eps`, checked only for cubes not yet joined), numbered by
//!   their lowest core point;
//! - a border point takes the lowest cluster number among its core neighbours: scikit-learn grows
//!   cluster 0 to completion before cluster 1, so the first cluster to reach a point is the
//!   lowest-numbered of those that can. Only cubes whose number would lower it are looked at.
//!
//! Each pass runs in parallel, over cubes or points. No neighbourhood is kept, so memory stays
//! linear in the points (plus each occupied cube's list of occupied cubes around it) whatever
//! `eps` is.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, SLACK_M, check_points, chord_surely_within, ecef, geodesic_m};
use crate::limits::{MAX_DISTANCE_M, MAX_MIN_SAMPLES, MAX_PAIRS_VISITED, MIN_DISTANCE_M};

/// The label of points in no cluster.
pub const NOISE: i32 = -1;

/// Widening (metres) of each cube's box, so that rounding in the coordinates (about 1e-9 m at
/// 6.4e6 m) never leaves a point outside the box of its cube.
const BOX_MARGIN_M: f64 = 1e-7;

/// Cluster labels of `points` (see the module docs), `eps` in metres.
pub fn dbscan(points: &[LonLat], eps: f64, min_samples: usize) -> Result<Vec<i32>> {
    check_points(points)?;
    if !(eps.is_finite() && (MIN_DISTANCE_M..=MAX_DISTANCE_M).contains(&eps)) {
        return Err(AnalysisError::OutOfRange {
            what: "eps (metres)",
            value: eps,
            range: "MIN_DISTANCE_M = 0.001 <= eps <= MAX_DISTANCE_M = 500000",
        });
    }
    if min_samples == 0 {
        return Err(AnalysisError::OutOfRange { what: "min_samples", value: 0.0, range: "min_samples >= 1" });
    }
    if min_samples > MAX_MIN_SAMPLES {
        return Err(AnalysisError::TooMany {
            what: "min_samples",
            got: min_samples,
            limit: "MAX_MIN_SAMPLES",
            max: MAX_MIN_SAMPLES,
        });
    }
    let grid = Grid::new(points, eps);
    let budget = Budget(AtomicUsize::new(0));
    let cells = grid.cells.len();

    // 1. Core points, by position in the grid's order.
    let core: Vec<bool> = grid.core_flags(min_samples, &budget);
    budget.check()?;
    let has_core: Vec<bool> = grid.cells.par_iter().map(|c| core[c.range()].contains(&true)).collect();

    // 2. Cubes with core points joined into clusters.
    let sets = UnionFind::new(cells);
    (0..cells).into_par_iter().filter(|&c| has_core[c]).for_each(|c| {
        if budget.spent() {
            return;
        }
        let mut pairs = 0usize;
        for &o in grid.near(c) {
            let o = o as usize;
            if o < c || !has_core[o] || sets.find(c) == sets.find(o) {
                continue;
            }
            if grid.cores_linked(c, o, &core, &mut pairs) {
                sets.union(c, o);
            }
        }
        budget.add(pairs);
    });
    budget.check()?;

    // 3. Clusters numbered by their lowest core point: the first core position of a cube is its
    //    lowest core point (positions within a cube ascend by index).
    let lowest: Vec<AtomicU32> = (0..cells).map(|_| AtomicU32::new(u32::MAX)).collect();
    (0..cells).into_par_iter().filter(|&c| has_core[c]).for_each(|c| {
        let first = grid.cells[c].range().find(|&pos| core[pos]).map_or(u32::MAX, |pos| grid.order[pos]);
        lowest[sets.find(c)].fetch_min(first, Ordering::Relaxed);
    });
    let mut roots: Vec<(u32, usize)> = (0..cells)
        .into_par_iter()
        .filter(|&c| has_core[c] && sets.find(c) == c)
        .map(|c| (lowest[c].load(Ordering::Relaxed), c))
        .collect();
    roots.par_sort_unstable();
    let mut root_label = vec![NOISE; cells];
    for (label, &(_, root)) in roots.iter().enumerate() {
        root_label[root] = label as i32;
    }
    let cell_label: Vec<i32> =
        (0..cells).into_par_iter().map(|c| if has_core[c] { root_label[sets.find(c)] } else { NOISE }).collect();

    // 4. Core points take their cube's cluster, border points the lowest within reach; written
    //    by point index.
    let labels: Vec<AtomicI32> = (0..points.len()).map(|_| AtomicI32::new(NOISE)).collect();
    (0..cells).into_par_iter().for_each_init(
        || Tally { budget: &budget, pairs: 0 },
        |tally, c| {
            for pos in grid.cells[c].range() {
                let label = if core[pos] {
                    cell_label[c]
                } else if budget.spent() {
                    NOISE
                } else {
                    grid.border_label(c, pos, &core, &cell_label, &mut tally.pairs)
                };
                if label != NOISE {
                    labels[grid.order[pos] as usize].store(label, Ordering::Relaxed);
                }
            }
            tally.flush_now_and_then();
        },
    );
    budget.check()?;
    let labels = labels.into_par_iter().map(AtomicI32::into_inner).collect();
    Ok(labels)
}

/// Point pairs compared, bounded by [`MAX_PAIRS_VISITED`] (many points piled at the edge of a
/// cube, just out of reach of another pile, would otherwise be compared pair by pair).
struct Budget(AtomicUsize);

impl Budget {
    fn add(&self, pairs: usize) {
        if pairs > 0 {
            self.0.fetch_add(pairs, Ordering::Relaxed);
        }
    }

    fn spent(&self) -> bool {
        self.0.load(Ordering::Relaxed) > MAX_PAIRS_VISITED
    }

    fn check(&self) -> Result<()> {
        let got = self.0.load(Ordering::Relaxed);
        if got > MAX_PAIRS_VISITED {
            return Err(AnalysisError::TooMany {
                what: "point pairs compared growing the clusters",
                got,
                limit: "MAX_PAIRS_VISITED",
                max: MAX_PAIRS_VISITED,
            });
        }
        Ok(())
    }
}

/// A worker's count of pairs compared, added to the shared [`Budget`] in batches (an atomic add
/// per point would have the workers contend for it) and when dropped.
struct Tally<'b> {
    budget: &'b Budget,
    pairs: usize,
}

impl Tally<'_> {
    fn flush_now_and_then(&mut self) {
        if self.pairs > 1 << 16 {
            self.budget.add(std::mem::take(&mut self.pairs));
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.budget.add(self.pairs);
    }
}

/// An occupied cube: its integer coordinates and its points' positions in [`Grid::order`].
struct Cell {
    key: [i64; 3],
    start: u32,
    end: u32,
}

impl Cell {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Points bucketed in ECEF cubes of side `side`, short enough that any two points of a cube are
/// surely within `d`.
struct Grid<'a> {
    points: &'a [LonLat],
    d: f64,
    side: f64,
    /// Squared chord below which the geodesic is surely within `d`, and beyond which surely not.
    inside2: f64,
    reach2: f64,
    /// Squared chord below which a whole cube box counts as within, leaving room for rounding.
    sure2: f64,
    /// Point indices grouped by cube (cubes in key order), ascending within a cube, and their
    /// ECEF coordinates (axes permuted, see [`Grid::new`]).
    order: Vec<u32>,
    xyz: Vec<[f64; 3]>,
    cells: Vec<Cell>,
    /// Per cube, the other occupied cubes whose boxes come within the reach of it:
    /// `near[near_start[c]..near_start[c + 1]]`.
    near_start: Vec<u32>,
    near: Vec<u32>,
}

/// Bits of each cube coordinate in the sort key: the earth spans under 1.3e7 m, and a cube is at
/// least 5.7e-4 m (eps of a millimetre), so under 2.3e10 < 2^36 cubes a side.
const KEY_BITS: u32 = 36;
/// Bits of the point index in the sort key: `MAX_POINTS` (1e6) fits 20.
const INDEX_BITS: u32 = 20;

impl<'a> Grid<'a> {
    fn new(points: &'a [LonLat], d: f64) -> Self {
        const _: () = assert!(crate::limits::MAX_POINTS <= 1 << INDEX_BITS);
        let reach = d + SLACK_M;
        let inside = chord_surely_within(d);
        // The diagonal of a cube (widened by the margins) is 1% short of `inside`.
        let side = 0.99 * inside / 3f64.sqrt();
        // Axes ordered from the one most across the surface to the one most along its normal
        // (by the mean position of a sample): cubes are swept in slabs of the first axis and
        // rows of the second, and such slabs and rows cut the surface in short pieces. (Only
        // the speed depends on this order.)
        let stride = (points.len() / 4_096).max(1);
        let sum = points.iter().step_by(stride).fold([0.0; 3], |a, p| {
            let e = ecef(*p);
            [a[0] + e[0], a[1] + e[1], a[2] + e[2]]
        });
        let mut axes = [0usize, 1, 2];
        axes.sort_by(|&a, &b| sum[a].abs().total_cmp(&sum[b].abs()));
        let all: Vec<[f64; 3]> = points.par_iter().map(|p| axes.map(|k| ecef(*p)[k])).collect();
        // `as` saturates, and the side is at least half a millimetre, so keys stay in range.
        // (`floor` without SSE4.1 is a library call; truncation and a step down is not)
        let key_of = |p: &[f64; 3]| {
            p.map(|v| {
                let x = v / side;
                let t = x as i64;
                t - i64::from((t as f64) > x)
            })
        };
        let low = all
            .par_iter()
            .map(key_of)
            .reduce(|| [i64::MAX; 3], |a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].min(b[2])]);
        // Cube coordinates (from the lowest) and point index packed in one integer: sorting it
        // groups points by cube, cubes in key order, indices ascending within a cube.
        let mut packed: Vec<u128> = all
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let k = key_of(p);
                (0..3).fold(0u128, |acc, a| (acc << KEY_BITS) | (k[a] - low[a]) as u128) << INDEX_BITS | i as u128
            })
            .collect();
        packed.par_sort_unstable();
        let mask = (1u128 << KEY_BITS) - 1;
        let n = packed.len();
        let cube = |pos: usize| packed[pos] >> INDEX_BITS;
        let starts: Vec<u32> = (0..n)
            .into_par_iter()
            .filter(|&pos| pos == 0 || cube(pos) != cube(pos - 1))
            .map(|pos| pos as u32)
            .collect();
        let cells: Vec<Cell> = (0..starts.len())
            .into_par_iter()
            .map(|i| {
                let k = cube(starts[i] as usize);
                let key = [
                    (k >> (2 * KEY_BITS)) as i64 + low[0],
                    ((k >> KEY_BITS) & mask) as i64 + low[1],
                    (k & mask) as i64 + low[2],
                ];
                Cell { key, start: starts[i], end: starts.get(i + 1).copied().unwrap_or(n as u32) }
            })
            .collect();
        drop(starts);
        let order: Vec<u32> = packed.par_iter().map(|&v| (v & ((1 << INDEX_BITS) - 1)) as u32).collect();
        drop(packed);
        let xyz = order.par_iter().map(|&i| all[i as usize]).collect();
        let sure = inside - BOX_MARGIN_M;
        let mut grid = Self {
            points,
            d,
            side,
            inside2: inside * inside,
            reach2: reach * reach,
            sure2: sure * sure,
            order,
            xyz,
            cells,
            near_start: Vec::new(),
            near: Vec::new(),
        };
        grid.link_cubes(reach);
        grid
    }

    /// Fills `near`: slab by slab (cubes of one first coordinate, a run of `cells`), in
    /// parallel; within a slab, cubes come in order of the second coordinate, so a cursor per
    /// neighbouring slab only moves forward to the rows within reach.
    fn link_cubes(&mut self, reach: f64) {
        let span = ((reach + 2.0 * BOX_MARGIN_M) / self.side).ceil() as i64;
        let mut slabs: Vec<(i64, usize, usize)> = Vec::new();
        for (c, cell) in self.cells.iter().enumerate() {
            match slabs.last_mut() {
                Some(s) if s.0 == cell.key[0] => s.2 = c + 1,
                _ => slabs.push((cell.key[0], c, c + 1)),
            }
        }
        let cells = &self.cells;
        let gap = |d: i64| ((d.abs() - 1).max(0) as f64 * self.side - 2.0 * BOX_MARGIN_M).max(0.0);
        let reach2 = self.reach2;
        let per_slab: Vec<(Vec<u32>, Vec<u32>)> = (0..slabs.len())
            .into_par_iter()
            .map(|si| {
                let (x, a, b) = slabs[si];
                let span_slabs = span as usize;
                // Per neighbouring slab: its cursor, its end, and which row and column offsets
                // (dy, dz) come within reach at its distance (a table, not arithmetic per cube).
                let mut cursors: Vec<(Vec<bool>, usize, usize)> = slabs
                    [si.saturating_sub(span_slabs)..(si + span_slabs + 1).min(slabs.len())]
                    .iter()
                    .filter(|s| (s.0 - x).abs() <= span)
                    .map(|s| {
                        let gx2 = gap(s.0 - x).powi(2);
                        let ok = (-span..=span)
                            .flat_map(|dy| (-span..=span).map(move |dz| (dy, dz)))
                            .map(|(dy, dz)| gx2 + gap(dy).powi(2) + gap(dz).powi(2) <= reach2)
                            .collect();
                        (ok, s.1, s.2)
                    })
                    .collect();
                let width = (2 * span + 1) as usize;
                let mut flat = Vec::new();
                let mut ends = Vec::with_capacity(b - a);
                for c in a..b {
                    let [_, y, z] = cells[c].key;
                    for (ok, cursor, end) in cursors.iter_mut() {
                        while *cursor < *end && cells[*cursor].key[1] < y - span {
                            *cursor += 1;
                        }
                        for (o, other) in cells[*cursor..*end].iter().enumerate() {
                            let dy = other.key[1] - y;
                            if dy > span {
                                break;
                            }
                            let dz = other.key[2] - z;
                            let o = *cursor + o;
                            if dz.abs() <= span && o != c && ok[(dy + span) as usize * width + (dz + span) as usize] {
                                flat.push(o as u32);
                            }
                        }
                    }
                    ends.push(flat.len() as u32);
                }
                (flat, ends)
            })
            .collect();
        let total: usize = per_slab.iter().map(|s| s.0.len()).sum();
        let mut near = Vec::with_capacity(total);
        let mut near_start = Vec::with_capacity(self.cells.len() + 1);
        near_start.push(0u32);
        for (flat, ends) in per_slab {
            let base = near.len() as u32;
            near.extend_from_slice(&flat);
            near_start.extend(ends.into_iter().map(|e| base + e));
        }
        self.near = near;
        self.near_start = near_start;
    }

    /// The occupied cubes other than `c` whose boxes come within the reach of `c`'s.
    fn near(&self, c: usize) -> &[u32] {
        &self.near[self.near_start[c] as usize..self.near_start[c + 1] as usize]
    }

    /// Whether the points at positions `a` and `b` are within `d`: the chord decides, the
    /// geodesic only between the bounds.
    fn within(&self, a: usize, b: usize, pairs: &mut usize) -> bool {
        *pairs += 1;
        let (p, q) = (self.xyz[a], self.xyz[b]);
        let c2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
        c2 <= self.reach2
            && (c2 < self.inside2
                || geodesic_m(self.points[self.order[a] as usize], self.points[self.order[b] as usize]) <= self.d)
    }

    /// Squared least and greatest chords from `p` to the (widened) box of cube `c`.
    fn box_dist2(&self, p: &[f64; 3], c: usize) -> (f64, f64) {
        // From the box's middle: the gap is the distance past its half-width, the far side the
        // distance plus it (the same as from its faces, in fewer operations).
        let key = self.cells[c].key;
        let half = 0.5 * self.side + BOX_MARGIN_M;
        let (mut least, mut most) = (0.0, 0.0);
        for k in 0..3 {
            let off = (p[k] - (key[k] as f64 + 0.5) * self.side).abs();
            let gap = off - half;
            if gap > 0.0 {
                least += gap * gap;
            }
            most += (off + half) * (off + half);
        }
        (least, most)
    }

    /// Per position, whether its point has `min_samples` points within `d` (itself included),
    /// counting stopped there. Cube by cube: a cube holding `min_samples` points is all core
    /// without a look around, and one with too few points in reach has none.
    fn core_flags(&self, min_samples: usize, budget: &Budget) -> Vec<bool> {
        let flags: Vec<AtomicBool> = (0..self.order.len()).map(|_| AtomicBool::new(false)).collect();
        (0..self.cells.len()).into_par_iter().for_each_init(
            || Tally { budget, pairs: 0 },
            |tally, c| {
                let range = self.cells[c].range();
                let own = range.len();
                if own >= min_samples {
                    range.for_each(|pos| flags[pos].store(true, Ordering::Relaxed));
                    return;
                }
                // (with the budget spent, the flags do not matter: the pass fails)
                if budget.spent() {
                    return;
                }
                let around = own + self.near(c).iter().map(|&o| self.cells[o as usize].range().len()).sum::<usize>();
                if around < min_samples {
                    return;
                }
                for pos in range {
                    if self.count_reaches(c, pos, min_samples, around, &mut tally.pairs) {
                        flags[pos].store(true, Ordering::Relaxed);
                    }
                }
                tally.flush_now_and_then();
            },
        );
        flags.into_par_iter().map(AtomicBool::into_inner).collect()
    }

    /// Whether the point at `pos` in cube `c` has `min_samples` points within `d`, given that
    /// at most `around` are in reach of its cube.
    fn count_reaches(&self, c: usize, pos: usize, min_samples: usize, around: usize, pairs: &mut usize) -> bool {
        let (mut count, mut possible) = (self.cells[c].range().len(), around);
        let p = self.xyz[pos];
        for &o in self.near(c) {
            let o = o as usize;
            let len = self.cells[o].range().len();
            // A cube of one or two points: comparing them costs no more than the box test.
            let (least, most) = if len <= 2 { (0.0, f64::INFINITY) } else { self.box_dist2(&p, o) };
            if least > self.reach2 {
                possible -= len;
            } else if most < self.sure2 {
                count += len;
            } else {
                for q in self.cells[o].range() {
                    if self.within(pos, q, pairs) {
                        count += 1;
                        if count >= min_samples {
                            return true;
                        }
                    } else {
                        possible -= 1;
                        if possible < min_samples {
                            return false;
                        }
                    }
                }
            }
            if count >= min_samples || possible < min_samples {
                break;
            }
        }
        count >= min_samples
    }

    /// Whether some core point of cube `a` is within `d` of some core point of cube `b`.
    fn cores_linked(&self, a: usize, b: usize, core: &[bool], pairs: &mut usize) -> bool {
        for pos in self.cells[a].range().filter(|&pos| core[pos]) {
            let (least, most) = self.box_dist2(&self.xyz[pos], b);
            if least > self.reach2 {
                continue;
            }
            // `b` has a core point, and all of its box is within reach.
            if most < self.sure2 {
                return true;
            }
            if self.cells[b].range().any(|q| core[q] && self.within(pos, q, pairs)) {
                return true;
            }
        }
        false
    }

    /// The label of the non-core point at `pos` in cube `c`: the lowest cluster among its core
    /// neighbours, or noise. All core points of a cube share one cluster, and those of its own
    /// cube are all neighbours.
    fn border_label(&self, c: usize, pos: usize, core: &[bool], cell_label: &[i32], pairs: &mut usize) -> i32 {
        let mut best = if cell_label[c] == NOISE { i32::MAX } else { cell_label[c] };
        let p = self.xyz[pos];
        for &o in self.near(c) {
            let o = o as usize;
            let label = cell_label[o];
            if label == NOISE || label >= best {
                continue;
            }
            let (least, most) =
                if self.cells[o].range().len() <= 2 { (0.0, f64::INFINITY) } else { self.box_dist2(&p, o) };
            if least > self.reach2 {
                continue;
            }
            if most < self.sure2 || self.cells[o].range().any(|q| core[q] && self.within(pos, q, pairs)) {
                best = label;
            }
        }
        if best == i32::MAX { NOISE } else { best }
    }
}

/// Disjoint sets of cubes, safe to join from several threads: a root is only ever linked
/// (compare-and-swap) under a lower-numbered root, so each set's root is its lowest cube.
struct UnionFind(Vec<AtomicU32>);

impl UnionFind {
    fn new(n: usize) -> Self {
        Self((0..n as u32).map(AtomicU32::new).collect())
    }

    fn find(&self, mut x: usize) -> usize {
        loop {
            let p = self.0[x].load(Ordering::Acquire) as usize;
            if p == x {
                return x;
            }
            let g = self.0[p].load(Ordering::Acquire);
            if g as usize != p {
                // Path halving; losing the race to another thread is harmless.
                let _ = self.0[x].compare_exchange(p as u32, g, Ordering::AcqRel, Ordering::Relaxed);
            }
            x = p;
        }
    }

    fn union(&self, a: usize, b: usize) {
        loop {
            let (ra, rb) = (self.find(a), self.find(b));
            if ra == rb {
                return;
            }
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            if self.0[hi].compare_exchange(hi as u32, lo as u32, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn's `dbscan_inner`, step for step, on neighbourhoods of exact geodesics.
    fn reference(points: &[LonLat], eps: f64, min_samples: usize) -> Vec<i32> {
        let n = points.len();
        let hood: Vec<Vec<usize>> =
            (0..n).map(|i| (0..n).filter(|&j| geodesic_m(points[i], points[j]) <= eps).collect()).collect();
        let core: Vec<bool> = hood.iter().map(|h| h.len() >= min_samples).collect();
        let mut labels = vec![NOISE; n];
        let mut label = 0;
        for seed in 0..n {
            if labels[seed] != NOISE || !core[seed] {
                continue;
            }
            let mut stack = Vec::new();
            let mut i = seed;
            loop {
                if labels[i] == NOISE {
                    labels[i] = label;
                    if core[i] {
                        stack.extend(hood[i].iter().copied().filter(|&v| labels[v] == NOISE));
                    }
                }
                match stack.pop() {
                    Some(v) => i = v,
                    None => break,
                }
            }
            label += 1;
        }
        labels
    }

    /// Clumps of points (some repeated exactly) around a centre, `spread` metres across.
    fn clumps(rng: &mut fastrand::Rng, centre: LonLat, spread: f64, n: usize) -> Vec<LonLat> {
        let deg = spread / 111_000.0;
        let seeds: Vec<LonLat> = (0..4)
            .map(|_| [centre[0] + (rng.f64() - 0.5) * deg, (centre[1] + (rng.f64() - 0.5) * deg).clamp(-90.0, 90.0)])
            .collect();
        let mut pts: Vec<LonLat> = Vec::with_capacity(n);
        while pts.len() < n {
            let p = if rng.f64() < 0.1 && !pts.is_empty() {
                pts[rng.usize(..pts.len())]
            } else {
                let s = seeds[rng.usize(..seeds.len())];
                let r = deg * 0.15 * rng.f64();
                [s[0] + r * (rng.f64() - 0.5), (s[1] + r * (rng.f64() - 0.5)).clamp(-90.0, 90.0)]
            };
            // longitudes wrap across the antimeridian
            let lon = if p[0] > 180.0 {
                p[0] - 360.0
            } else if p[0] < -180.0 {
                p[0] + 360.0
            } else {
                p[0]
            };
            pts.push([lon, p[1]]);
        }
        pts
    }

    #[test]
    fn dbscan_matches_scikit_learns_growth_step_for_step() {
        let mut rng = fastrand::Rng::with_seed(20_261_207);
        let places: [(LonLat, f64); 4] =
            [([114.4, 30.5], 2_000.0), ([179.9995, -16.0], 300.0), ([10.0, 89.9995], 200.0), ([0.0, 0.0], 50.0)];
        let (mut clusters, mut noise) = (0, 0);
        for case in 0..24 {
            let (centre, spread) = places[case % places.len()];
            let pts = clumps(&mut rng, centre, spread, 160);
            let eps = spread * [0.002, 0.01, 0.03, 0.1][case / 4 % 4] * (0.5 + rng.f64());
            let eps = eps.max(MIN_DISTANCE_M);
            let min_samples = 1 + rng.usize(..8);
            let got = dbscan(&pts, eps, min_samples).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(got, reference(&pts, eps, min_samples), "case {case}: eps {eps} min_samples {min_samples}");
            clusters += got.iter().max().map_or(0, |&m| m + 1);
            noise += got.iter().filter(|&&l| l == NOISE).count();
        }
        // the cases are not degenerate: many clusters, and noise
        assert!(clusters > 48 && noise > 100, "{clusters} clusters, {noise} noise points");
    }

    #[test]
    fn coincident_points_are_one_cluster_and_a_lone_point_noise() {
        let mut pts = vec![[114.4, 30.5]; 50];
        pts.push([114.41, 30.5]);
        let labels = dbscan(&pts, 1.0, 5).unwrap_or_else(|e| panic!("{e}"));
        assert!(labels[..50].iter().all(|&l| l == 0));
        assert_eq!(labels[50], NOISE);
    }
}
