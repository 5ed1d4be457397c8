//! The Mann–Kendall trend test with Sen's slope, for one bin's series in an emerging hot-spot
//! analysis (is the bin's Gi* z-score, or count, rising or falling over the time steps?).
//!
//! Formulas of pymannkendall's `original_test` (1.4): `S = Σ_{i<j} sign(x_j - x_i)`,
//! `Var(S) = [n(n-1)(2n+5) - Σ_t t(t-1)(2t+5)] / 18` over groups of tied values, the continuity
//! corrected `z = (S ∓ 1)/√Var(S)` (0 when `S = 0`), the two-sided `p = 2·sf(|z|)`,
//! Kendall's `τ = S / (n(n-1)/2)`, Sen's slope (median of pairwise slopes) and the Conover
//! intercept `median(x) - (n-1)/2 · slope`. Missing values are the caller's to drop: NaN is refused.

use crate::error::{AnalysisError, Result};
use crate::limits::MAX_SERIES;
use crate::stats::normal_sf;

/// The Mann–Kendall test of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    pub s: f64,
    pub var_s: f64,
    /// Continuity-corrected z-score; 0 when `S = 0`.
    pub z: f64,
    /// Two-sided p-value; 1 when the variance is zero (a constant series).
    pub p: f64,
    pub tau: f64,
    /// Sen's slope, per time step.
    pub slope: f64,
    pub intercept: f64,
}

fn median(sorted: &[f64]) -> f64 {
    let m = sorted.len();
    if m % 2 == 1 { sorted[m / 2] } else { (sorted[m / 2 - 1] + sorted[m / 2]) / 2.0 }
}

/// Mann–Kendall test of `x`, observations at equal time steps, oldest first.
pub fn mann_kendall(x: &[f64]) -> Result<MannKendall> {
    let n = x.len();
    if n < 2 {
        return Err(AnalysisError::Degenerate { what: "series", why: "a trend needs at least 2 observations" });
    }
    if n > MAX_SERIES {
        return Err(AnalysisError::TooMany { what: "series length", got: n, limit: "MAX_SERIES", max: MAX_SERIES });
    }
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(AnalysisError::NotFinite { what: "series value", index, value });
    }
    let mut s = 0i64;
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            s += match x[j].partial_cmp(&x[i]) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
            slopes.push((x[j] - x[i]) / (j - i) as f64);
        }
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let nf = n as f64;
    let mut ties = 0.0;
    let mut start = 0;
    while start < n {
        let end = start + sorted[start..].iter().take_while(|v| **v == sorted[start]).count();
        let t = (end - start) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        start = end;
    }
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let s = s as f64;
    let z = match s {
        s if s > 0.0 => (s - 1.0) / var_s.sqrt(),
        s if s < 0.0 => (s + 1.0) / var_s.sqrt(),
        _ => 0.0,
    };
    let p = 2.0 * normal_sf(z.abs());
    slopes.sort_by(f64::total_cmp);
    let slope = median(&slopes);
    let intercept = median(&sorted) - (nf - 1.0) / 2.0 * slope;
    Ok(MannKendall { s, var_s, z, p, tau: s / (0.5 * nf * (nf - 1.0)), slope, intercept })
}
