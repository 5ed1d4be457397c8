//! Getis-Ord local G: Gi (without the focal unit) and Gi* (with it), the hot-spot statistic.
//!
//! The formulas are esda's `G_Local.calc` (esda 2.9), term for term, so z-scores agree with it to
//! rounding: with `r = 0` for Gi* and `1` for Gi, `N = n - r`,
//!
//! - `G_i = (Σ_j w_ij y_j) / (Σy - r·y_i)`, the diagonal `w_ii` being the self-weight for Gi*;
//! - `E[G_i] = W_i / N` with `W_i` the row sum of the transformed weights;
//! - `V[G_i] = W_i (N - W_i) / (N - 1) / N² · s_i² / ȳ_i²`, where `ȳ_i` and `s_i²` are the mean and
//!   (population) variance of the values, without `y_i` for Gi;
//! - `z = (G_i - E) / √V`.
//!
//! The self-weight of Gi* is 1 (binary), or, for row-standardised weights, the row's largest
//! weight before standardising, as esda does: so an island has self-weight 1 under `Binary` and
//! no weights at all under `Row`. Binary Gi* is the classic Getis–Ord (1995) / ArcGIS z-score.
//!
//! p-values: esda's `p_norm` is `sf(|z|)`, the one-sided tail; the two-sided `2·sf(|z|)` (what
//! ArcGIS reports) is given too. A unit without a z-score (no weights, or every other unit its
//! neighbour so that the variance is zero) has `None` where esda has NaN.

use rayon::prelude::*;

use crate::control::Control;
use crate::error::{AnalysisError, Result};
use crate::geodesic::LonLat;
use crate::limits::{MAX_PERMUTATIONS, MAX_POINTS};
use crate::permute::{Draws, simulate};
use crate::stats::normal_sf;
use crate::weights::{Transform, Weights, WeightsSpec, band_lags};

/// Options of [`getis_ord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiOptions {
    /// Gi* (the focal unit counts among its neighbours) when true, Gi when false.
    pub star: bool,
    pub transform: Transform,
    /// Conditional permutations for a pseudo p-value; 0 for none.
    pub permutations: usize,
    /// Seed of the permutations (results are the same for a seed on any number of threads).
    pub seed: u64,
}

impl Default for GiOptions {
    fn default() -> Self {
        Self { star: true, transform: Transform::Binary, permutations: 0, seed: 0 }
    }
}

/// The local G of one unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GiResult {
    /// The statistic `G_i` (esda `Gs`).
    pub g: f64,
    /// Its expectation under the null (esda `EGs`).
    pub expected: f64,
    /// Its variance under the null (esda `VGs`).
    pub variance: f64,
    /// `(G - E) / √V` (esda `Zs`); `None` when undefined.
    pub z: Option<f64>,
    /// `sf(|z|)`, esda's one-sided `p_norm`.
    pub p_norm: Option<f64>,
    /// `2·sf(|z|)`, the two-sided p-value.
    pub p_two_sided: Option<f64>,
    /// Permutation pseudo p-value (esda `p_sim`) when permutations were asked for.
    pub p_sim: Option<f64>,
    /// z-score against the permutations' mean and standard deviation (esda `z_sim`).
    pub z_sim: Option<f64>,
}

pub(crate) fn check_values(values: &[f64], n: usize) -> Result<()> {
    if values.is_empty() {
        return Err(AnalysisError::Empty { what: "values" });
    }
    if values.len() > MAX_POINTS {
        return Err(AnalysisError::TooMany { what: "values", got: values.len(), limit: "MAX_POINTS", max: MAX_POINTS });
    }
    if values.len() != n {
        return Err(AnalysisError::LengthMismatch { what: "values", got: values.len(), expected: n });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(AnalysisError::NotFinite { what: "value", index, value });
    }
    Ok(())
}

pub(crate) fn check_permutations(permutations: usize) -> Result<()> {
    if permutations > MAX_PERMUTATIONS {
        return Err(AnalysisError::TooMany {
            what: "permutations",
            got: permutations,
            limit: "MAX_PERMUTATIONS",
            max: MAX_PERMUTATIONS,
        });
    }
    Ok(())
}

/// Units per parallel task.
const CHUNK: usize = 1024;

/// Getis-Ord Gi or Gi* of `values` over `w`, one result per unit in order.
pub fn getis_ord(values: &[f64], w: &Weights, opts: &GiOptions) -> Result<Vec<GiResult>> {
    getis_ord_with(values, w, opts, &Control::NONE)
}

/// [`getis_ord`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so (checked during
/// the permutations and between blocks of units).
pub fn getis_ord_with(values: &[f64], w: &Weights, opts: &GiOptions, ctl: &Control<'_>) -> Result<Vec<GiResult>> {
    gi_core(values, w.n(), |i| (w.cardinality(i), w.neighbour_sum(i, values)), opts, ctl)
}

/// Gi / Gi* from each unit's neighbour count and (untransformed) neighbour sum of the values,
/// however they were found.
pub(crate) fn gi_core(
    values: &[f64],
    n: usize,
    lag: impl Fn(usize) -> (usize, f64) + Sync,
    opts: &GiOptions,
    ctl: &Control<'_>,
) -> Result<Vec<GiResult>> {
    check_values(values, n)?;
    check_permutations(opts.permutations)?;
    if n < 3 {
        return Err(AnalysisError::Degenerate { what: "values", why: "local G needs at least 3 units" });
    }
    let sum: f64 = values.iter().sum();
    let sum_sq: f64 = values.iter().map(|y| y * y).sum();
    if sum == 0.0 {
        return Err(AnalysisError::Degenerate { what: "values", why: "they sum to zero, which G divides by" });
    }
    let remove_self = if opts.star { 0.0 } else { 1.0 };
    let big_n = n as f64 - remove_self;
    let unit = |i: usize, pool: &mut Vec<u32>| -> Result<GiResult> {
        let y_i = values[i];
        let (k, nb) = lag(i);
        // Weight of each neighbour and of the focal unit, after the transform.
        let (w_nb, w_self) = match (opts.transform, opts.star) {
            (Transform::Binary, false) => (1.0, 0.0),
            (Transform::Binary, true) => (1.0, 1.0),
            (Transform::Row, false) => (if k > 0 { 1.0 / k as f64 } else { 0.0 }, 0.0),
            (Transform::Row, true) if k > 0 => (1.0 / (k + 1) as f64, 1.0 / (k + 1) as f64),
            (Transform::Row, true) => (0.0, 0.0),
        };
        let denominator = sum - y_i * remove_self;
        let g = (nb * w_nb + y_i * w_self) / denominator;
        let cardinality = k as f64 * w_nb + w_self;
        let mean = denominator / big_n;
        let mean_sq = (sum_sq - y_i * y_i * remove_self) / big_n;
        let var = mean_sq - mean * mean;
        let expected = cardinality / big_n;
        let mut variance = cardinality * (big_n - cardinality);
        variance /= big_n - 1.0;
        variance *= 1.0 / (big_n * big_n);
        variance *= var / (mean * mean);
        let z = (g - expected) / variance.sqrt();
        let z = z.is_finite().then_some(z);
        let (mut p_sim, mut z_sim) = (None, None);
        if opts.permutations > 0 && cardinality > 0.0 {
            if pool.is_empty() {
                pool.extend(0..n as u32);
            }
            let own = y_i * w_self;
            let draws = Draws { count: opts.permutations, seed: opts.seed };
            let sim = simulate(i, k, values, pool, draws, g, |s| (s * w_nb + own) / denominator, ctl)?;
            p_sim = Some(sim.p_sim);
            z_sim = Some((g - sim.mean) / sim.std).filter(|v| v.is_finite());
        }
        Ok(GiResult {
            g,
            expected,
            variance,
            z,
            p_norm: z.map(|z| normal_sf(z.abs())),
            p_two_sided: z.map(|z| 2.0 * normal_sf(z.abs())),
            p_sim,
            z_sim,
        })
    };
    let chunks: Vec<Vec<GiResult>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map_init(Vec::new, |pool, c| {
            ctl.check()?;
            (c * CHUNK..((c + 1) * CHUNK).min(n)).map(|i| unit(i, pool)).collect()
        })
        .collect::<Result<_>>()?;
    Ok(chunks.concat())
}

/// The hot-spot process in one call: builds the weights from `points` with `spec` and returns
/// binary-weighted Gi* (`star`) or Gi, analytic inference only — the classic Getis–Ord z-scores
/// (esda `G_Local(y, w, transform="B", star=star)`).
///
/// A distance band is not stored as weights: each point's neighbour count and sum are taken
/// during the search, which saves the memory and the sorting of the rows, so bands denser than
/// `MAX_NEIGHBOUR_ENTRIES` are fine here up to `MAX_PAIRS_VISITED` pairs.
pub fn hotspot(points: &[LonLat], values: &[f64], spec: WeightsSpec, star: bool) -> Result<Vec<GiResult>> {
    check_values(values, points.len())?;
    let opts = GiOptions { star, ..GiOptions::default() };
    match spec {
        WeightsSpec::DistanceBand { metres } => {
            let lags = band_lags(points, metres, values)?;
            gi_core(values, points.len(), |i| lags[i], &opts, &Control::NONE)
        }
        WeightsSpec::Knn { .. } => getis_ord(values, &Weights::from_spec(points, spec)?, &opts),
    }
}
