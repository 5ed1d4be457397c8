//! Conditional randomisation (esda's `crand`): for unit `i`, hold its own value and draw its
//! `k_i` neighbours' values at random, without replacement, from the other `n - 1` units, many
//! times; the observed statistic's rank among the draws gives a pseudo p-value.
//!
//! Each unit has its own generator seeded from `(seed, i)`, so results do not depend on the
//! number of threads or the order units are visited. The draws are a partial Fisher–Yates
//! shuffle over a per-thread pool (a permutation stays a permutation after a partial shuffle, so
//! the pool is never reset): O(k) per draw.

use crate::control::Control;
use crate::error::Result;

/// Summary of the simulated statistics of one unit, as esda reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Simulated {
    /// `(min(larger, perms - larger) + 1) / (perms + 1)`, `larger` = draws `>=` the observation.
    pub p_sim: f64,
    /// Mean and (population) standard deviation of the draws.
    pub mean: f64,
    pub std: f64,
}

/// How many draws, from which seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Draws {
    pub count: usize,
    pub seed: u64,
}

/// A generator for unit `i`: splitmix of the seed and the index, so neighbouring units' streams
/// are unrelated.
fn unit_rng(seed: u64, i: usize) -> fastrand::Rng {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    fastrand::Rng::with_seed(z ^ (z >> 31))
}

/// Draws `draws.count` random sums of `k` values of units other than `i` and maps each through `stat`,
/// comparing with `observed`. `pool` is a permutation of `0..values.len()` (any order). Asks
/// `ctl` every [`crate::control::CHECK_EVERY`] draws (one unit's draws can be 99,999 × thousands of neighbours).
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate(
    i: usize,
    k: usize,
    values: &[f64],
    pool: &mut [u32],
    draws: Draws,
    observed: f64,
    stat: impl Fn(f64) -> f64,
    ctl: &Control<'_>,
) -> Result<Simulated> {
    let n = pool.len();
    let perms = draws.count;
    let mut rng = unit_rng(draws.seed, i);
    let mut larger = 0usize;
    let (mut sum, mut sum2) = (0.0, 0.0);
    for p in 0..perms {
        ctl.every(p)?;
        // Draw k + 1 distinct units; drop i if drawn, else the last one: a uniform k-subset of the
        // others either way.
        let draw = (k + 1).min(n);
        let mut total = 0.0;
        let mut taken = 0;
        for t in 0..draw {
            let r = rng.usize(t..n);
            pool.swap(t, r);
            let j = pool[t] as usize;
            if j != i && taken < k {
                total += values[j];
                taken += 1;
            }
        }
        let s = stat(total);
        if s >= observed {
            larger += 1;
        }
        sum += s;
        sum2 += s * s;
    }
    let folded = larger.min(perms - larger);
    let mean = sum / perms as f64;
    let var = (sum2 / perms as f64 - mean * mean).max(0.0);
    Ok(Simulated { p_sim: (folded + 1) as f64 / (perms + 1) as f64, mean, std: var.sqrt() })
}
