//! HDBSCAN's expensive half: core distances and the minimum spanning tree of the mutual
//! reachability graph, on geodesic distances, without the n² distance matrix.
//!
//! The mutual reachability distance of two points is `max(core_i, core_j, s_ij)` (`s` the
//! geodesic, `core` the distance to the `min_samples`-th other point). Prim's algorithm on the
//! full graph costs n² geodesics; instead, Borůvka's algorithm over a k-d tree of the points'
//! earth-centred coordinates: each round, every point looks for its cheapest edge to another
//! component, pruning tree nodes that are wholly in its own component or whose lower bound
//! `max(core_i, min core in the node, chord to the node's box)` exceeds the best edge its
//! component has found so far (shared between threads); the components then join along their
//! cheapest edges, about halving their number each round.
//!
//! The chord bounds of [`crate::geodesic`] keep geodesics rare: a chord is a lower bound, so a
//! pair whose chord already exceeds the bound is skipped; and when the chord's upper bound is
//! below `max(core_i, core_j)` the distance is that maximum exactly, which is the common case
//! inside dense areas. Edges are compared by weight, then by their end points' coordinates
//! (then indices): a total order, so Borůvka's choices never close a cycle and the tree is a
//! minimum one even when many weights tie (they do: every edge within a point's core distance
//! weighs its core distance); and it does not depend on the order of the input, so neither do
//! the clusters (a point joining two clusters at the same distance joins the same one).
//!
//! Most of the searching is avoided. The first round needs none for most points: a point's
//! cheapest edge weighs at least its core distance, and exactly that when a point within its core
//! distance has no larger core distance; the k-nearest search of the core distances has just
//! listed those neighbours, so they are kept (up to `MAX_SEED_NEIGHBOURS` a point) and the first
//! round only searches from the points denser than all their neighbours. Later rounds reuse what
//! earlier ones learnt: a point's cheapest edge to another component stays its cheapest while the
//! far end stays outside (components only grow), and a lower bound of it stays one; so a round
//! searches only from points whose edge was swallowed by their own component and whose bound is
//! not above the best edge their component already knows, lowest bounds first. Every shortcut
//! gives the same edges as the full search (the tree is unique under the total order), which
//! `tests::spanning_tree_equals_brute_force` checks against all n² pairs.
//!
//! The k-d tree also serves the radius searches of [`crate::kde`]. Memory is linear: about
//! 200 bytes a point for the tree, the core distances, the neighbour lists (4 bytes a neighbour)
//! and Borůvka's per-point state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::control::Control;
use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, SLACK_M, chord_surely_within, ecef, geodesic_m, geodesic_upper_bound};
use crate::limits::MAX_KNN_CANDIDATES;

/// Points per leaf: small enough to prune well, large enough to amortise a node visit.
const LEAF: usize = 16;

/// A node of [`KdTree`]: the box of its points' coordinates and their range in tree order.
#[derive(Debug, Clone, Copy)]
struct Node {
    lo: [f64; 3],
    hi: [f64; 3],
    start: u32,
    end: u32,
    /// Children (`0` for a leaf: the root is never a child).
    left: u32,
    right: u32,
}

/// A k-d tree over the points' earth-centred coordinates, nodes in preorder (a parent before its
/// children), points permuted so that each node's are contiguous.
#[derive(Debug)]
pub(crate) struct KdTree {
    /// Tree position -> point index.
    idx: Vec<u32>,
    /// Coordinates in tree order.
    xyz: Vec<[f64; 3]>,
    nodes: Vec<Node>,
}

fn box_dist2(p: &[f64; 3], n: &Node) -> f64 {
    let mut s = 0.0;
    for ((lo, hi), v) in n.lo.iter().zip(&n.hi).zip(p) {
        let d = (lo - v).max(v - hi).max(0.0);
        s += d * d;
    }
    s
}

fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

impl KdTree {
    pub(crate) fn new(points: &[LonLat]) -> Self {
        let all: Vec<[f64; 3]> = points.iter().map(|p| ecef(*p)).collect();
        let mut idx: Vec<u32> = (0..points.len() as u32).collect();
        let mut nodes = Vec::with_capacity(2 * points.len() / LEAF + 2);
        Self::build(&all, &mut idx, 0, &mut nodes);
        let xyz = idx.iter().map(|&i| all[i as usize]).collect();
        Self { idx, xyz, nodes }
    }

    /// Builds the node over `idx[..]` (starting at tree position `start`), returns its number.
    fn build(all: &[[f64; 3]], idx: &mut [u32], start: usize, nodes: &mut Vec<Node>) -> u32 {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for &i in idx.iter() {
            for d in 0..3 {
                lo[d] = lo[d].min(all[i as usize][d]);
                hi[d] = hi[d].max(all[i as usize][d]);
            }
        }
        let me = nodes.len() as u32;
        let end = (start + idx.len()) as u32;
        nodes.push(Node { lo, hi, start: start as u32, end, left: 0, right: 0 });
        if idx.len() > LEAF {
            // split the widest side at the median
            let d = (0..3).max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b]))).unwrap_or(0);
            let mid = idx.len() / 2;
            idx.select_nth_unstable_by(mid, |&a, &b| all[a as usize][d].total_cmp(&all[b as usize][d]));
            let (l, r) = idx.split_at_mut(mid);
            let left = Self::build(all, l, start, nodes);
            let right = Self::build(all, r, start + mid, nodes);
            nodes[me as usize].left = left;
            nodes[me as usize].right = right;
        }
        me
    }

    /// Calls `f(point index, squared chord, its earth-centred coordinates)` for every point whose
    /// squared chord from `p` (earth-centred coordinates) is at most `r2`.
    pub(crate) fn within_points(&self, p: &[f64; 3], r2: f64, mut f: impl FnMut(usize, f64, &[f64; 3])) {
        self.within(p, r2, |pos, c2| f(self.idx[pos] as usize, c2, &self.xyz[pos]));
    }

    /// Calls `f(position, squared chord)` for every point whose squared chord from `p` is at most
    /// `r2`.
    fn within(&self, p: &[f64; 3], r2: f64, mut f: impl FnMut(usize, f64)) {
        let mut stack = vec![0u32];
        while let Some(n) = stack.pop() {
            let node = &self.nodes[n as usize];
            if box_dist2(p, node) > r2 {
                continue;
            }
            if node.left == 0 {
                for pos in node.start as usize..node.end as usize {
                    let c2 = dist2(p, &self.xyz[pos]);
                    if c2 <= r2 {
                        f(pos, c2);
                    }
                }
            } else {
                stack.push(node.left);
                stack.push(node.right);
            }
        }
    }

    /// The squared chords and tree positions of the `k` nearest other points of the point at
    /// tree position `at`, nearest first.
    fn nearest2(&self, at: usize, k: usize) -> Vec<(f64, u32)> {
        let p = self.xyz[at];
        // the best so far, sorted: insertion beats a heap for the usual k (5 to 50), and the
        // result comes out sorted
        let mut best: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
        let mut bound = f64::INFINITY;
        let mut stack = Vec::with_capacity(64);
        stack.push(0u32);
        while let Some(n) = stack.pop() {
            let node = &self.nodes[n as usize];
            // `>=`: a node at the k-th distance cannot improve it (and a stack of coincident
            // points is not searched through)
            if box_dist2(&p, node) >= bound {
                continue;
            }
            if node.left == 0 {
                for pos in node.start as usize..node.end as usize {
                    let c2 = dist2(&p, &self.xyz[pos]);
                    if c2 >= bound || pos == at {
                        continue;
                    }
                    let mut slot = best.len();
                    while slot > 0 && best[slot - 1].0 > c2 {
                        slot -= 1;
                    }
                    best.insert(slot, (c2, pos as u32));
                    if best.len() > k {
                        best.pop();
                    }
                    if best.len() == k {
                        bound = best[k - 1].0;
                    }
                }
            } else {
                let (l, r) = (&self.nodes[node.left as usize], &self.nodes[node.right as usize]);
                // nearer child last, so it is searched first
                if box_dist2(&p, l) < box_dist2(&p, r) {
                    stack.push(node.right);
                    stack.push(node.left);
                } else {
                    stack.push(node.left);
                    stack.push(node.right);
                }
            }
        }
        best
    }
}

/// Neighbours kept per point for the first Borůvka round ([`seed_edges`]): above this
/// (`min_samples + 2`) the lists would cost more memory than the searches they save.
const MAX_SEED_NEIGHBOURS: usize = 24;

/// What [`core_distances`] finds: the core distances, and the nearest neighbours that the first
/// Borůvka round reuses instead of searching again.
#[derive(Debug)]
pub(crate) struct Cores {
    /// By point index.
    pub(crate) core: Vec<f64>,
    /// Per tree position, the tree positions of its `width` nearest other points by chord,
    /// nearest first (empty when `width` is 0).
    near: Vec<u32>,
    /// `min(k + 2, n - 1)`, or 0 over [`MAX_SEED_NEIGHBOURS`].
    width: usize,
}

/// The geodesic distance from each point to its `k`-th nearest other point (`1 <= k < n`), as
/// the `hdbscan` package's core distance with `min_samples = k`. Exact: only the candidates
/// whose chord bounds straddle the k-th distance get a geodesic.
pub(crate) fn core_distances(points: &[LonLat], tree: &KdTree, k: usize, ctl: &Control<'_>) -> Result<Cores> {
    let too_many = |got: usize| AnalysisError::TooMany {
        what: "points tied near the min_samples-th distance (core distance)",
        got,
        limit: "MAX_KNN_CANDIDATES",
        max: MAX_KNN_CANDIDATES,
    };
    // set by the first point over the bound, so the others stop
    let failed = AtomicBool::new(false);
    let n = points.len();
    // Two spare neighbours: almost always the first beyond the k-th is past the k-th's chord
    // bounds, and then no second search is needed.
    let m = (k + 2).min(n - 1);
    let width = if m <= MAX_SEED_NEIGHBOURS { m } else { 0 };
    let core_at = |at: usize, near: &[(f64, u32)]| -> Result<f64> {
        let i = tree.idx[at] as usize;
        let ck = near[k - 1].0.sqrt();
        if ck == 0.0 {
            return Ok(0.0); // k points at the same place
        }
        // The k nearest by chord have geodesics at most upper(ck): so has the k-th geodesic.
        let hi = geodesic_upper_bound(ck) + 2.0 * SLACK_M;
        // squared chords below which `upper(c) + 2·SLACK_M < ck`
        let below = chord_surely_within(ck - SLACK_M).powi(2);
        let mut sure_below = 0usize;
        let mut straddle: Vec<usize> = Vec::new();
        let mut overflow = false;
        let mut visit = |pos: usize, c2: f64| {
            if pos == at {
                return;
            }
            // Geodesic surely below the k-th chord, so below the k-th geodesic.
            if c2 < below {
                sure_below += 1;
            } else if straddle.len() < MAX_KNN_CANDIDATES {
                straddle.push(tree.idx[pos] as usize);
            } else {
                overflow = true;
            }
        };
        let complete = near.len() == n - 1 || near.last().is_some_and(|l| l.0 > hi * hi);
        if complete {
            near.iter().filter(|c| c.0 <= hi * hi).for_each(|c| visit(c.1 as usize, c.0));
        } else {
            tree.within(&tree.xyz[at], hi * hi, visit);
        }
        if overflow {
            failed.store(true, Ordering::Relaxed);
            return Err(too_many(straddle.len() + 1));
        }
        // one geodesic per distinct location (many points may share one)
        straddle.sort_unstable_by(|&a, &b| point_cmp(points, a as u32, b as u32));
        let mut s: Vec<f64> = Vec::with_capacity(straddle.len());
        for (x, &j) in straddle.iter().enumerate() {
            let same = x > 0 && points[straddle[x - 1]] == points[j];
            s.push(if same { s[x - 1] } else { geodesic_m(points[i], points[j]) });
        }
        s.sort_by(f64::total_cmp);
        // `sure_below < k` always: those chords are below ck, and only k - 1 others are.
        Ok(s.get(k - 1 - sure_below.min(k - 1)).copied().unwrap_or(ck))
    };
    let mut core_t = vec![0.0; n];
    // one slot a point even without lists, so that the zip below covers every point
    let mut near_t = vec![u32::MAX; n * width.max(1)];
    core_t.par_iter_mut().zip(near_t.par_chunks_mut(width.max(1))).enumerate().with_min_len(256).try_for_each(
        |(at, (c, list))| {
            if failed.load(Ordering::Relaxed) {
                return Err(too_many(MAX_KNN_CANDIDATES + 1));
            }
            ctl.every(at)?;
            let near = tree.nearest2(at, m);
            *c = core_at(at, &near)?;
            if width > 0 {
                for (slot, &(_, pos)) in list.iter_mut().zip(&near) {
                    *slot = pos;
                }
            }
            Ok(())
        },
    )?;
    if width == 0 {
        near_t = Vec::new();
    }
    let mut core = vec![0.0; n];
    for (at, c) in core_t.into_iter().enumerate() {
        core[tree.idx[at] as usize] = c;
    }
    Ok(Cores { core, near: near_t, width })
}

/// Union-find over point indices, with path halving and union by size.
struct Components {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Components {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) -> bool {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
        true
    }
}

/// An edge `(weight, a, b)`, its end `a` before `b` in the order of [`point_cmp`].
pub(crate) type Edge = (f64, u32, u32);

/// Points by longitude, latitude, then index.
fn point_cmp(points: &[LonLat], i: u32, j: u32) -> std::cmp::Ordering {
    let (p, q) = (points[i as usize], points[j as usize]);
    p[0].total_cmp(&q[0]).then(p[1].total_cmp(&q[1])).then(i.cmp(&j))
}

/// The edge between `i` and `j`, its ends ordered.
fn edge(points: &[LonLat], w: f64, i: u32, j: u32) -> Edge {
    if point_cmp(points, i, j).is_lt() { (w, i, j) } else { (w, j, i) }
}

/// The total order of edges: weight, then the first ends, then the second.
pub(crate) fn edge_cmp(points: &[LonLat], a: &Edge, b: &Edge) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then_with(|| point_cmp(points, a.1, b.1)).then_with(|| point_cmp(points, a.2, b.2))
}

fn less(points: &[LonLat], a: &Edge, b: &Edge) -> bool {
    edge_cmp(points, a, b).is_lt()
}

/// What one round's queries share.
struct Round<'a> {
    points: &'a [LonLat],
    tree: &'a KdTree,
    /// Core distances in tree order, and per node their minimum.
    core: &'a [f64],
    /// Per tree position, the squared chord up to which a geodesic is surely at most the core
    /// distance (`upper(c) + 2·SLACK_M <= core`).
    inside2: &'a [f64],
    node_core: &'a [f64],
    /// Component of each tree position, and per node the component of all its points (or MAX).
    comp: &'a [u32],
    node_comp: &'a [u32],
    /// Per component, the weight of the best edge found so far (f64 bits).
    best: &'a [AtomicU64],
}

/// What a query learnt about a point's cheapest edge to another component.
enum Found {
    /// That edge, exactly.
    Edge(Edge),
    /// Only that it weighs more than this.
    Above(f64),
}

impl Round<'_> {
    /// The cheapest edge from the point at tree position `at` to another component, if it is no
    /// heavier than its component's best so far; `lower` is a lower bound of its weight.
    fn query(&self, at: usize, lower: f64) -> Found {
        let (ci, core_i, p) = (self.comp[at], self.core[at], self.tree.xyz[at]);
        let best_shared = &self.best[ci as usize];
        let shared = || f64::from_bits(best_shared.load(Ordering::Relaxed));
        let mut bound = shared();
        if lower > bound {
            return Found::Above(bound);
        }
        let i = self.tree.idx[at];
        let mut found: Option<Edge> = None;
        let mut stack = Vec::with_capacity(64);
        stack.push(0u32);
        while let Some(n) = stack.pop() {
            if self.node_comp[n as usize] == ci {
                continue;
            }
            let node = &self.tree.nodes[n as usize];
            let lb = lower.max(self.node_core[n as usize]).max(box_dist2(&p, node).sqrt() - SLACK_M);
            bound = bound.min(shared());
            if lb > bound {
                continue;
            }
            if node.left != 0 {
                let (l, r) = (&self.tree.nodes[node.left as usize], &self.tree.nodes[node.right as usize]);
                if box_dist2(&p, l) < box_dist2(&p, r) {
                    stack.push(node.right);
                    stack.push(node.left);
                } else {
                    stack.push(node.left);
                    stack.push(node.right);
                }
                continue;
            }
            for pos in node.start as usize..node.end as usize {
                if self.comp[pos] == ci {
                    continue;
                }
                let m = core_i.max(self.core[pos]);
                if m > bound {
                    continue;
                }
                let c2 = dist2(&p, &self.tree.xyz[pos]);
                if c2 > (bound + SLACK_M).powi(2) {
                    continue;
                }
                // The chord's upper bound below the larger core: the distance is that core.
                let w = if c2 <= self.inside2[at].max(self.inside2[pos]) {
                    m
                } else {
                    let j = self.tree.idx[pos] as usize;
                    m.max(geodesic_m(self.points[i as usize], self.points[j]))
                };
                let j = self.tree.idx[pos];
                let e = edge(self.points, w, i, j);
                if found.as_ref().is_none_or(|f| less(self.points, &e, f)) {
                    found = Some(e);
                    bound = bound.min(w);
                    best_shared.fetch_min(w.to_bits(), Ordering::Relaxed);
                }
            }
        }
        // Every node or point passed over could only hold edges heavier than the bound at the
        // time, never below `bound` now: so an edge found at `bound` is the cheapest; one above
        // it (the bound fell while searching: another point of the component did better) is not
        // known to be.
        match found {
            Some(e) if e.0 <= bound => Found::Edge(e),
            _ => Found::Above(bound),
        }
    }
}

/// The `n - 1` edges of a minimum spanning tree of the mutual reachability graph (weights are
/// exact geodesic mutual reachability distances), in no particular order. `tree` is the one
/// the core distances were found with.
///
/// Points at exactly the same coordinates ("twins": one address, many incidents) are at distance
/// 0 and have the same core distance, the least weight of any edge touching them: so a tree joins
/// each to the first of its twins at that weight, and Borůvka runs on one point per location.
/// Without this, n twins would make every search visit all of them (their ties never prune).
pub(crate) fn spanning_tree(points: &[LonLat], tree: &KdTree, cores: &Cores, ctl: &Control<'_>) -> Result<Vec<Edge>> {
    let core = &cores.core;
    let mut order: Vec<u32> = (0..points.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| point_cmp(points, a, b));
    let mut reps: Vec<u32> = Vec::with_capacity(points.len());
    // point index -> its location (index in `reps`)
    let mut location = vec![0u32; points.len()];
    let mut edges: Vec<Edge> = Vec::with_capacity(points.len().saturating_sub(1));
    for &i in &order {
        match reps.last() {
            Some(&r) if points[r as usize] == points[i as usize] => {
                edges.push(edge(points, core[r as usize].max(core[i as usize]), r, i));
            }
            _ => reps.push(i),
        }
        location[i as usize] = reps.len() as u32 - 1;
    }
    drop(order);
    let located: Vec<LonLat> = reps.iter().map(|&r| points[r as usize]).collect();
    let located_core: Vec<f64> = reps.iter().map(|&r| core[r as usize]).collect();
    let seeds = seed_edges(points, tree, cores, &reps, &location, ctl)?;
    drop(location);
    let located_tree = KdTree::new(&located);
    // Locations have distinct coordinates, so their edges order the same by either numbering.
    edges.extend(
        boruvka(&located, &located_tree, &located_core, seeds, ctl)?
            .into_iter()
            .map(|(w, a, b)| (w, reps[a as usize], reps[b as usize])),
    );
    Ok(edges)
}

/// The first Borůvka round without searching, per location (numbered as in `reps`, which is the
/// order of [`point_cmp`]): the cheapest edge of a location weighs at least its core distance,
/// and exactly that when a point within its core distance has a core distance no larger. Those
/// points are among its nearest by chord, which the core distances kept; of several, the edge to
/// the first location is the least in edge order (the weights tie). `None` where no such point
/// is known: the first round searches for those (about one location in `min_samples`, the
/// densest of their neighbourhoods).
fn seed_edges(
    points: &[LonLat],
    tree: &KdTree,
    cores: &Cores,
    reps: &[u32],
    location: &[u32],
    ctl: &Control<'_>,
) -> Result<Vec<Option<Edge>>> {
    let (n, width) = (points.len(), cores.width);
    if width == 0 {
        return Ok(vec![None; reps.len()]);
    }
    let mut position = vec![0u32; n];
    for (at, &i) in tree.idx.iter().enumerate() {
        position[i as usize] = at as u32;
    }
    reps.par_iter()
        .enumerate()
        .with_min_len(256)
        .map(|(l, &r)| {
            ctl.every(l)?;
            let at = position[r as usize] as usize;
            let near = &cores.near[at * width..(at + 1) * width];
            let (c, p) = (cores.core[r as usize], &tree.xyz[at]);
            // Chords carry ~1e-9 m of rounding: a point surely farther than `c` has a chord
            // above `c + SLACK_M`. Every point within `c` must be in the list.
            let reach2 = (c + SLACK_M).powi(2);
            if width < n - 1 && dist2(p, &tree.xyz[near[width - 1] as usize]) <= reach2 {
                return Ok(None);
            }
            let inside2 = chord_surely_within(c - SLACK_M).powi(2);
            let mut first: Option<u32> = None;
            for &pos in near {
                let j = tree.idx[pos as usize];
                let lj = location[j as usize];
                if lj == l as u32 || cores.core[j as usize] > c || first.is_some_and(|f| f <= lj) {
                    continue;
                }
                let c2 = dist2(p, &tree.xyz[pos as usize]);
                if c2 <= inside2 || (c2 <= reach2 && geodesic_m(points[r as usize], points[j as usize]) <= c) {
                    first = Some(lj);
                }
            }
            let l = l as u32;
            Ok(first.map(|f| if l < f { (c, l, f) } else { (c, f, l) }))
        })
        .collect()
}

/// Borůvka's algorithm over points with distinct coordinates; `seeds` are the cheapest edges of
/// some points, by index (see [`seed_edges`]).
///
/// Each point remembers what it learnt in earlier rounds: its cheapest edge to another
/// component stays its cheapest for as long as the far end stays in another component (the
/// components only grow, so the choice only narrows), and a lower bound of that weight stays one.
/// A round then searches only from the points whose edge was swallowed by their own component
/// and whose bound does not already exceed the best edge their component knows.
fn boruvka(
    points: &[LonLat],
    tree: &KdTree,
    core: &[f64],
    seeds: Vec<Option<Edge>>,
    ctl: &Control<'_>,
) -> Result<Vec<Edge>> {
    let n = points.len();
    let core_t: Vec<f64> = tree.idx.iter().map(|&i| core[i as usize]).collect();
    let inside2: Vec<f64> = core_t.iter().map(|&c| chord_surely_within(c - SLACK_M).powi(2)).collect();
    let mut node_core = vec![f64::INFINITY; tree.nodes.len()];
    for (k, node) in tree.nodes.iter().enumerate().rev() {
        node_core[k] = if node.left == 0 {
            core_t[node.start as usize..node.end as usize].iter().copied().fold(f64::INFINITY, f64::min)
        } else {
            node_core[node.left as usize].min(node_core[node.right as usize])
        };
    }
    // Per tree position: the point's cheapest edge to another component when known, else a
    // lower bound of its weight (at least the core distance).
    let mut known: Vec<Option<Edge>> = tree.idx.iter().map(|&i| seeds[i as usize]).collect();
    drop(seeds);
    let mut lower: Vec<f64> = core_t.clone();
    let mut uf = Components { parent: (0..n as u32).collect(), size: vec![1; n] };
    let mut edges: Vec<Edge> = Vec::with_capacity(n.saturating_sub(1));
    let mut comp_of = vec![0u32; n];
    let mut comp = vec![0u32; n];
    let mut node_comp = vec![u32::MAX; tree.nodes.len()];
    let best: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(f64::INFINITY.to_bits())).collect();
    let mut chosen: Vec<Option<Edge>> = vec![None; n];
    let mut todo: Vec<u32> = Vec::with_capacity(n);
    while edges.len() + 1 < n {
        ctl.check()?;
        for (i, c) in comp_of.iter_mut().enumerate() {
            *c = uf.find(i as u32);
        }
        for (at, c) in comp.iter_mut().enumerate() {
            *c = comp_of[tree.idx[at] as usize];
        }
        for (k, node) in tree.nodes.iter().enumerate().rev() {
            node_comp[k] = if node.left == 0 {
                let first = comp[node.start as usize];
                if comp[node.start as usize..node.end as usize].iter().all(|&c| c == first) { first } else { u32::MAX }
            } else if node_comp[node.left as usize] == node_comp[node.right as usize] {
                node_comp[node.left as usize]
            } else {
                u32::MAX
            };
        }
        for b in &best {
            b.store(f64::INFINITY.to_bits(), Ordering::Relaxed);
        }
        // Known edges whose far end joined the point's component are forgotten (their weight
        // stays a lower bound); the others bound their component's best.
        for at in 0..n {
            if let Some(e) = known[at] {
                let far = if e.1 == tree.idx[at] { e.2 } else { e.1 };
                if comp_of[far as usize] == comp[at] {
                    lower[at] = lower[at].max(e.0);
                    known[at] = None;
                } else {
                    best[comp[at] as usize].fetch_min(e.0.to_bits(), Ordering::Relaxed);
                }
            }
        }
        todo.clear();
        todo.extend((0..n as u32).filter(|&at| {
            let at = at as usize;
            known[at].is_none() && lower[at] <= f64::from_bits(best[comp[at] as usize].load(Ordering::Relaxed))
        }));
        // Lowest bounds first: they are the likeliest to hold their component's cheapest edge,
        // and once it is found the points above it stop at once.
        todo.sort_unstable_by(|&a, &b| lower[a as usize].total_cmp(&lower[b as usize]).then(a.cmp(&b)));
        let round = Round {
            points,
            tree,
            core: &core_t,
            inside2: &inside2,
            node_core: &node_core,
            comp: &comp,
            node_comp: &node_comp,
            best: &best,
        };
        let found: Vec<Found> = todo
            .par_iter()
            .enumerate()
            .with_min_len(64)
            .map(|(x, &at)| ctl.every(x).map(|()| round.query(at as usize, lower[at as usize])))
            .collect::<Result<_>>()?;
        for (&at, f) in todo.iter().zip(found) {
            let at = at as usize;
            match f {
                Found::Edge(e) => {
                    lower[at] = lower[at].max(e.0);
                    known[at] = Some(e);
                }
                Found::Above(w) => lower[at] = lower[at].max(w),
            }
        }
        // Each component's cheapest edge, by the total order: its point with that edge knows it.
        chosen.fill(None);
        for (at, e) in known.iter().enumerate() {
            if let Some(e) = e {
                let slot = &mut chosen[comp[at] as usize];
                if slot.as_ref().is_none_or(|s| less(points, e, s)) {
                    *slot = Some(*e);
                }
            }
        }
        let before = edges.len();
        for e in chosen.iter().flatten() {
            // two components choosing the same edge add it once
            if uf.union(e.1, e.2) {
                edges.push(*e);
            }
        }
        if edges.len() == before {
            break; // unreachable with finite distances; never loop forever
        }
    }
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Core distances and the minimum spanning tree in the plainest way: all n² geodesics,
    /// Kruskal over every pair in the total order of [`edge_cmp`] (the tree it defines is unique).
    fn brute_force(points: &[LonLat], k: usize) -> (Vec<f64>, Vec<Edge>) {
        let n = points.len();
        let core: Vec<f64> = (0..n)
            .map(|i| {
                let mut d: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| geodesic_m(points[i], points[j])).collect();
                d.sort_by(f64::total_cmp);
                d[k - 1]
            })
            .collect();
        let mut all: Vec<Edge> = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let w = core[i].max(core[j]).max(geodesic_m(points[i], points[j]));
                all.push(edge(points, w, i as u32, j as u32));
            }
        }
        all.sort_by(|a, b| edge_cmp(points, a, b));
        let mut uf = Components { parent: (0..n as u32).collect(), size: vec![1; n] };
        let tree = all.into_iter().filter(|e| uf.union(e.1, e.2)).collect();
        (core, tree)
    }

    fn fast(points: &[LonLat], k: usize) -> (Vec<f64>, Vec<Edge>) {
        let tree = KdTree::new(points);
        let cores = core_distances(points, &tree, k, &Control::NONE).unwrap_or_else(|e| panic!("{e}"));
        let mut mst = spanning_tree(points, &tree, &cores, &Control::NONE).unwrap_or_else(|e| panic!("{e}"));
        mst.sort_by(|a, b| edge_cmp(points, a, b));
        (cores.core, mst)
    }

    /// Points in a few hundred metres, some repeated exactly (twins), some on a coarse grid
    /// (equal coordinates in one axis, many equal distances).
    fn cloud() -> impl Strategy<Value = Vec<LonLat>> {
        prop::collection::vec((0.0f64..1.0, 0.0f64..1.0, 0u8..10), 2..90).prop_map(|raw| {
            let mut out: Vec<LonLat> = Vec::with_capacity(raw.len());
            for (x, y, kind) in raw {
                let p = match kind {
                    0 | 1 if !out.is_empty() => out[(x * out.len() as f64) as usize % out.len()],
                    2 => [114.4 + (x * 8.0).floor() * 1e-4, 30.5 + (y * 8.0).floor() * 1e-4],
                    _ => [114.4 + x * 4e-3, 30.5 + y * 4e-3],
                };
                out.push(p);
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// The first round answered from the neighbour lists, the remembered edges and bounds of
        /// later rounds, and the searches give exactly the brute-force tree: same ends, same
        /// weights, with and without the neighbour lists (k + 2 above MAX_SEED_NEIGHBOURS).
        #[test]
        fn spanning_tree_equals_brute_force(points in cloud(), k in 1usize..30) {
            let k = k.min(points.len() - 1);
            let (core, mst) = fast(&points, k);
            let (want_core, want_mst) = brute_force(&points, k);
            prop_assert_eq!(core, want_core);
            prop_assert_eq!(mst.len(), want_mst.len());
            // Twins join their first twin, a tree as light as any but not always Kruskal's
            // choice among ties: then only the weights must agree.
            let mut sorted = points.clone();
            sorted.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                let (mut a, mut b): (Vec<f64>, Vec<f64>) =
                    (mst.iter().map(|e| e.0).collect(), want_mst.iter().map(|e| e.0).collect());
                a.sort_by(f64::total_cmp);
                b.sort_by(f64::total_cmp);
                for (x, y) in a.iter().zip(&b) {
                    prop_assert!((x - y).abs() <= 1e-9, "{:?} vs {:?}", a, b);
                }
                return Ok(());
            }
            for (got, want) in mst.iter().zip(&want_mst) {
                prop_assert_eq!((got.1, got.2), (want.1, want.2), "{:?} vs {:?}", got, want);
                prop_assert!((got.0 - want.0).abs() <= 1e-9, "{:?} vs {:?}", got, want);
            }
        }
    }
}
