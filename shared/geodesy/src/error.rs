//! Errors of the geodesy crate: each says which coordinate or value is at fault.

use shikong_model::GeometryError;

use crate::zone::GkZone;

/// Result alias of this crate.
pub type Result<T, E = GeodesyError> = std::result::Result<T, E>;

/// Input that cannot be measured or placed in a zone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeodesyError {
    /// The geometry breaks a structural rule (NaN, unclosed ring, latitude beyond ±90°, …).
    #[error("invalid geometry: {0}")]
    Geometry(#[from] GeometryError),
    #[error("{what} is not a finite number ({value})")]
    NotFinite { what: &'static str, value: f64 },
    #[error("longitude {lon} is outside the CGCS2000 {width}° Gauss-Krüger zones ({first} to {last})")]
    OutsideZones { lon: f64, width: f64, first: GkZone, last: GkZone },
    /// A 3-D measurement between a point with Z and one without.
    #[error("point {index} has no Z while the others have one (cannot mix 2-D and 3-D points)")]
    MissingZ { index: usize },
    /// An azimuth or angle asked of a segment whose two ends coincide.
    #[error("segment {index} has zero length, so it has no direction")]
    ZeroLength { index: usize },
}
