//! The normal distribution's tail and false discovery rate control over many local tests.
//!
//! A hot-spot map runs one test per feature, so thousands of p-values below 0.05 arise by chance;
//! Benjamini–Hochberg keeps the expected share of false discoveries at `alpha`.

use crate::error::{AnalysisError, Result};

/// `P(Z > x)` for a standard normal `Z` (scipy's `norm.sf`), accurate in the far tail too
/// (through `erfc`, not `1 - cdf`).
pub fn normal_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / std::f64::consts::SQRT_2)
}

fn check_p(p: &[f64]) -> Result<()> {
    if p.is_empty() {
        return Err(AnalysisError::Empty { what: "p-values" });
    }
    for (index, &v) in p.iter().enumerate() {
        if !v.is_finite() {
            return Err(AnalysisError::NotFinite { what: "p-value", index, value: v });
        }
        if !(0.0..=1.0).contains(&v) {
            return Err(AnalysisError::OutOfRange { what: "p-value", value: v, range: "0 <= p <= 1" });
        }
    }
    Ok(())
}

/// Benjamini–Hochberg adjusted p-values, in the input's order (scipy's
/// `false_discovery_control(p, method="bh")`, statsmodels' `fdr_bh`): a feature is significant at
/// FDR `alpha` when its adjusted p is at most `alpha`.
pub fn bh_adjust(p: &[f64]) -> Result<Vec<f64>> {
    check_p(p)?;
    let m = p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut adjusted = vec![0.0; p.len()];
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    Ok(adjusted)
}

/// esda's `fdr(pvalues, alpha)`: the largest `k·alpha/m` such that the k-th smallest p-value is
/// below it, or the Bonferroni bound `alpha/m` when there is none. Features with `p <= cutoff` are
/// the significant ones in esda's hot-spot maps.
pub fn fdr_cutoff(p: &[f64], alpha: f64) -> Result<f64> {
    check_p(p)?;
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(AnalysisError::OutOfRange { what: "alpha", value: alpha, range: "0 < alpha < 1" });
    }
    let m = p.len();
    let mut sorted = p.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // sorted[t] is the (m - t)-th smallest; esda scans from the largest down.
    for (t, &v) in sorted.iter().enumerate() {
        let bound = (m - t) as f64 * alpha / m as f64;
        if v < bound {
            return Ok(bound);
        }
    }
    Ok(alpha / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_values() {
        assert_eq!(normal_sf(0.0), 0.5);
        assert!((normal_sf(1.959963984540054) - 0.025).abs() < 1e-15);
        // far tail: 1 - cdf would be 0 here
        assert!((normal_sf(10.0) / 7.619853024160527e-24 - 1.0).abs() < 1e-12);
    }
}
