//! Pure logic of the analysis engine (issue 19): spatial weights on CGCS2000 with geodesic
//! distances, Getis-Ord Gi / Gi*, local Moran's I, DBSCAN, HDBSCAN, kernel density, the
//! Mann-Kendall trend test and false discovery rate control.
//!
//! Why a crate of its own: the OGC API – Processes server (and a benchmark against PySAL esda and
//! scikit-learn) call these functions on data it has already read; keeping them free of I/O, async
//! and storage makes them testable in milliseconds against the reference libraries' numbers
//! (`tests/fixtures/analysis/make_reference.py` writes those numbers; `tests/reference.rs` checks
//! them to 1e-9).
//!
//! Points are `[lon, lat]` in degrees on CGCS2000 (EPSG:4490), x = longitude as everywhere in
//! shikong. Distances are geodesic (Karney, the same ellipsoid and algorithm as
//! [`shikong_geodesy::distance`]); the neighbour search runs on straight-line (chord) distances
//! between earth-centred coordinates, which bound the geodesic distance from both sides, so the
//! exact geodesic is only computed where the bounds cannot decide (see [`geodesic`]).
//!
//! Architecture invariants: no I/O, no clock, no global RNG (permutations take a seed and give the
//! same answer on any number of threads); every size an attacker controls is bounded by a
//! constant in [`limits`] and refused with an error naming it.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod change;
pub mod control;
pub mod dbscan;
pub mod emerging;
pub mod error;
pub mod geodesic;
pub mod getis;
pub mod grid;
pub mod hdbscan;
pub mod kde;
pub mod moran;
mod mreach;
pub mod overlay;
mod permute;
pub mod stats;
pub mod trajectory;
pub mod trend;
pub mod weights;

pub use control::Control;
pub use dbscan::{NOISE, dbscan};
pub use error::{AnalysisError, Result};
pub use geodesic::{LonLat, geodesic_m};
pub use getis::{GiOptions, GiResult, getis_ord, hotspot};
pub use hdbscan::{ClusterSelection, Hdbscan, HdbscanOptions, hdbscan};
pub use kde::{LonLatGrid, kde_at, kde_grid, silverman_bandwidth};
pub use moran::{LocalMoranResult, MoranOptions, Quadrant, local_moran};
pub use overlay::{Areal, BufferOptions};
pub use stats::{bh_adjust, fdr_cutoff, normal_sf};
pub use trajectory::{Fix, GapRule, SegmentStats, Track};
pub use trend::{MannKendall, mann_kendall};
pub use weights::{Transform, Weights, WeightsSpec};

/// Bounds on hostile or mistaken input; each error that one of them triggers names it.
pub mod limits {
    /// Points (or polygons, or values) in one analysis.
    pub const MAX_POINTS: usize = 1_000_000;
    /// Stored neighbour entries of one weights object (4 bytes each: 400 MB at the limit).
    pub const MAX_NEIGHBOUR_ENTRIES: usize = 100_000_000;
    /// Neighbour pairs visited by a search that stores none (`hotspot` on a distance band, DBSCAN's
    /// growth): a bound on time (a few seconds per billion on one core), not memory.
    pub const MAX_PAIRS_VISITED: usize = 2_000_000_000;
    /// k of k-nearest-neighbour weights.
    pub const MAX_K: usize = 1_000;
    /// Points tied at about the k-th distance from one point that the k-nearest search will
    /// compare exactly (many coincident points make the search quadratic).
    pub const MAX_KNN_CANDIDATES: usize = 100_000;
    /// The shortest distance band / DBSCAN eps, metres (keeps the search cubes' numbers in range).
    pub const MIN_DISTANCE_M: f64 = 1e-3;
    /// Distance band / DBSCAN eps, metres: beyond a city region's scale, and far inside the
    /// range where the chord bounds of [`crate::geodesic`] hold.
    pub const MAX_DISTANCE_M: f64 = 500_000.0;
    /// DBSCAN min_samples.
    pub const MAX_MIN_SAMPLES: usize = 100_000;
    /// Permutations of the conditional randomisation.
    pub const MAX_PERMUTATIONS: usize = 99_999;
    /// Length of one Mann-Kendall series (Sen's slope keeps n(n-1)/2 slopes).
    pub const MAX_SERIES: usize = 5_000;
    /// HDBSCAN min_samples (its default is min_cluster_size): the k of the core distances.
    pub const MAX_HDBSCAN_MIN_SAMPLES: usize = 1_000;
    /// Cells of one kernel density raster (8 bytes each: 128 MB at the limit).
    pub const MAX_CELLS: usize = 16_000_000;
    /// Kernel density bandwidth, metres (the chord bounds of [`crate::geodesic`] hold far beyond).
    pub const MAX_BANDWIDTH_M: f64 = 100_000.0;
    /// Point-cell pairs within the bandwidth that one kernel density evaluation may visit: a
    /// bound on time (about 10 ns each on one core), like `MAX_PAIRS_VISITED`; fits 32 bits.
    pub const MAX_KDE_PAIRS: usize = 4_000_000_000;
}
