//! Errors of the analysis crate: each names the input at fault and, for a size limit, the bound.

/// Result alias of this crate.
pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;

/// Input the analysis refuses: empty, non-finite, out of range, or beyond a size bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} {index} is not a finite number ({value})")]
    NotFinite { what: &'static str, index: usize, value: f64 },
    #[error("point {index}: longitude {lon} is outside [-180, 180]")]
    LongitudeOutOfRange { index: usize, lon: f64 },
    #[error("point {index}: latitude {lat} is outside [-90, 90]")]
    LatitudeOutOfRange { index: usize, lat: f64 },
    /// A size bound: `what` has `got`, more than `max` (the named limit in [`crate::limits`]).
    #[error("{what}: {got} is more than the limit {limit} = {max}")]
    TooMany { what: &'static str, got: usize, limit: &'static str, max: usize },
    #[error("{what} = {value} is out of range ({range})")]
    OutOfRange { what: &'static str, value: f64, range: &'static str },
    #[error("k = {k} must be less than the number of points ({n})")]
    KNotBelowN { k: usize, n: usize },
    #[error("{what} has {got} entries but there are {expected} units")]
    LengthMismatch { what: &'static str, got: usize, expected: usize },
    #[error("neighbour list of unit {unit}: {problem} ({neighbour})")]
    BadNeighbour { unit: usize, neighbour: usize, problem: &'static str },
    #[error("{what}: {why}")]
    Degenerate { what: &'static str, why: &'static str },
    /// A geometry an overlay or buffer cannot take (invalid, off the globe, wrong kind), naming
    /// the layer and feature.
    #[error("{what} {index}: {why}")]
    BadGeometry { what: &'static str, index: usize, why: String },
    /// An input item the analysis cannot take, naming it by position.
    #[error("{what} {index}: {problem}")]
    Invalid { what: &'static str, index: usize, problem: &'static str },
    /// An identifier given twice where each must be unique.
    #[error("{what} {id:?} is given twice")]
    Duplicate { what: &'static str, id: String },
    /// The caller's [`crate::Control`] asked the computation to stop; nothing was computed.
    #[error("the analysis was stopped before it finished")]
    Cancelled,
}
