//! Local Moran's I (Anselin's LISA): whether a unit's deviation is echoed by its neighbours'.
//!
//! Formulas of esda's `Moran_Local` (esda 2.9): `z = (y - ȳ) / s` (population `s`),
//! `I_i = (n - 1) · z_i · Σ_j w_ij z_j / Σ z²`, and two analytic nulls:
//!
//! - total randomisation (esda `EI`, `VI`, Sokal et al. 1998 A3/A4*):
//!   `E = -W_i / (n-1)`, `V = W2_i (n - b2)/(n-1) + (W_i² - W2_i)(2 b2 - n)/((n-1)(n-2)) - E²`;
//! - conditional randomisation, holding `z_i` (esda `EIc`, `VIc`, Sokal A7/A8):
//!   `E = -z_i² W_i / ((n-1) m2)`,
//!   `V = (z_i/m2)² · n/(n-2) · (W2_i - W_i²/(n-1)) · (m2 - z_i²/(n-1))`,
//!
//! with `W_i = Σ_j w_ij`, `W2_i = Σ_j w_ij²`, `m2 = Σz²/n`, `m4 = Σz⁴/n`, `b2 = m4/m2²`.
//! esda leaves the z-scores to the user; here `z = (I - E)/√V` under each null, with `sf(|z|)` as
//! the (one-sided, esda-style) p-value.

use rayon::prelude::*;

use crate::control::Control;
use crate::error::{AnalysisError, Result};
use crate::getis::{check_permutations, check_values};
use crate::permute::{Draws, simulate};
use crate::stats::normal_sf;
use crate::weights::{Transform, Weights};

/// Moran scatterplot quadrant of a unit (esda `q`: 1 HH, 2 LH, 3 LL, 4 HL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quadrant {
    /// High value among high neighbours (a hot spot).
    HighHigh = 1,
    /// Low among high (an outlier).
    LowHigh = 2,
    /// Low among low (a cold spot).
    LowLow = 3,
    /// High among low (an outlier).
    HighLow = 4,
}

/// Options of [`local_moran`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoranOptions {
    /// esda's default is `Row`.
    pub transform: Transform,
    pub permutations: usize,
    pub seed: u64,
}

impl Default for MoranOptions {
    fn default() -> Self {
        Self { transform: Transform::Row, permutations: 0, seed: 0 }
    }
}

/// Local Moran's I of one unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalMoranResult {
    pub i: f64,
    pub quadrant: Quadrant,
    /// Expectation and variance under total randomisation (esda `EI`, `VI`).
    pub expected: f64,
    pub variance: f64,
    /// Under conditional randomisation (esda `EIc`, `VIc`).
    pub expected_cond: f64,
    pub variance_cond: f64,
    /// `(I - EI)/√VI` and its `sf(|z|)`; `None` when the variance is zero (islands).
    pub z: Option<f64>,
    pub p_norm: Option<f64>,
    /// `(I - EIc)/√VIc` and its `sf(|z|)`.
    pub z_cond: Option<f64>,
    pub p_norm_cond: Option<f64>,
    /// Permutation pseudo p-value and z-score (esda `p_sim`, `z_sim`) when asked for.
    pub p_sim: Option<f64>,
    pub z_sim: Option<f64>,
}

const CHUNK: usize = 1024;

/// Local Moran's I of `values` over `w`, one result per unit in order.
pub fn local_moran(values: &[f64], w: &Weights, opts: &MoranOptions) -> Result<Vec<LocalMoranResult>> {
    local_moran_with(values, w, opts, &Control::NONE)
}

/// [`local_moran`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so (checked during
/// the permutations and between blocks of units).
pub fn local_moran_with(
    values: &[f64],
    w: &Weights,
    opts: &MoranOptions,
    ctl: &Control<'_>,
) -> Result<Vec<LocalMoranResult>> {
    let n = w.n();
    check_values(values, n)?;
    check_permutations(opts.permutations)?;
    if n < 3 {
        return Err(AnalysisError::Degenerate { what: "values", why: "local Moran's I needs at least 3 units" });
    }
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    let sd = (values.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / nf).sqrt();
    if sd == 0.0 {
        return Err(AnalysisError::Degenerate { what: "values", why: "they are all equal, so nothing deviates" });
    }
    let z: Vec<f64> = values.iter().map(|y| (y - mean) / sd).collect();
    let den: f64 = z.iter().map(|v| v * v).sum();
    let m2 = den / nf;
    let m4 = z.iter().map(|v| v.powi(4)).sum::<f64>() / nf;
    let b2 = m4 / (m2 * m2);
    let n1 = nf - 1.0;
    let unit = |i: usize, pool: &mut Vec<u32>| -> Result<LocalMoranResult> {
        let k = w.cardinality(i);
        let wv = match opts.transform {
            Transform::Binary => 1.0,
            Transform::Row if k > 0 => 1.0 / k as f64,
            Transform::Row => 0.0,
        };
        let lag = w.neighbour_sum(i, &z) * wv;
        let zi = z[i];
        let i_stat = n1 * zi * lag / den;
        let quadrant = match (zi > 0.0, lag > 0.0) {
            (true, true) => Quadrant::HighHigh,
            (false, true) => Quadrant::LowHigh,
            (false, false) => Quadrant::LowLow,
            (true, false) => Quadrant::HighLow,
        };
        let wi = k as f64 * wv;
        let wi2 = k as f64 * wv * wv;
        let expected_cond = -(zi * zi * wi) / (n1 * m2);
        let variance_cond = (zi / m2).powi(2) * (nf / (nf - 2.0)) * (wi2 - wi * wi / n1) * (m2 - zi * zi / n1);
        let expected = -wi / n1;
        let mut variance = wi2 * (nf - b2) / n1;
        variance += (wi * wi - wi2) * (2.0 * b2 - nf) / (n1 * (nf - 2.0));
        variance -= (-wi / n1).powi(2);
        let zs = |e: f64, v: f64| Some((i_stat - e) / v.sqrt()).filter(|z| z.is_finite());
        let (z_tot, z_cond) = (zs(expected, variance), zs(expected_cond, variance_cond));
        let (mut p_sim, mut z_sim) = (None, None);
        if opts.permutations > 0 && k > 0 {
            if pool.is_empty() {
                pool.extend(0..n as u32);
            }
            let scale = n1 * zi * wv / den;
            let draws = Draws { count: opts.permutations, seed: opts.seed };
            let sim = simulate(i, k, &z, pool, draws, i_stat, |s| s * scale, ctl)?;
            p_sim = Some(sim.p_sim);
            z_sim = Some((i_stat - sim.mean) / sim.std).filter(|v| v.is_finite());
        }
        Ok(LocalMoranResult {
            i: i_stat,
            quadrant,
            expected,
            variance,
            expected_cond,
            variance_cond,
            z: z_tot,
            p_norm: z_tot.map(|z| normal_sf(z.abs())),
            z_cond,
            p_norm_cond: z_cond.map(|z| normal_sf(z.abs())),
            p_sim,
            z_sim,
        })
    };
    let chunks: Vec<Vec<LocalMoranResult>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map_init(Vec::new, |pool, c| {
            ctl.check()?;
            (c * CHUNK..((c + 1) * CHUNK).min(n)).map(|i| unit(i, pool)).collect()
        })
        .collect::<Result<_>>()?;
    Ok(chunks.concat())
}
