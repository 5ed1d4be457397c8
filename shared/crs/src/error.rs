//! Errors of the CRS crate: each names the CRS codes and, for coordinates, which one failed.

use shikong_geodesy::GeodesyError;
use shikong_model::{Crs, GeometryError};

/// Result alias of this crate.
pub type Result<T, E = CrsError> = std::result::Result<T, E>;

/// What users may type, shown with every "unknown CRS" error.
pub const SUPPORTED: &str = "EPSG:4490 (CGCS2000), EPSG:4326 (WGS 84), CRS84, EPSG:3857 (Web Mercator), \
EPSG:4491–4554 (CGCS2000 Gauss-Krüger zones: 4491–4501 6° with zone prefix, 4502–4512 6°, 4513–4533 3° with \
zone prefix, 4534–4554 3°), GCJ02 (Amap/Tencent), BD09 (Baidu)";

/// Anything that stops a transformation or a measurement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CrsError {
    #[error("unknown CRS `{input}`; supported: {SUPPORTED}")]
    UnknownCrs { input: String },
    #[error("invalid geometry: {0}")]
    Geometry(#[from] GeometryError),
    #[error(transparent)]
    Geodesy(#[from] GeodesyError),
    /// PROJ refused to set up the operation (should not happen for supported codes; kept for the
    /// day `proj.db` and this crate disagree).
    #[error("PROJ cannot build the transformation {from} → {to}: {message}")]
    Build { from: Crs, to: Crs, message: String },
    /// One coordinate could not be transformed (outside the projection's domain).
    #[error("coordinate {index} {coord} cannot be transformed from {from} to {to}: {message}")]
    Point { index: usize, coord: String, from: Crs, to: Crs, message: String },
    #[error("{0} is not a CGCS2000 Gauss-Krüger zone (EPSG:4491–4554)")]
    NotAZone(Crs),
}
