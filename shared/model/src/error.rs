//! Errors of the model crate. Every variant says *what* is wrong and *where* (field, coordinate
//! index, byte offset) so that callers can prefix the file/row and show it to a user unchanged.

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// A geometry that cannot be stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    #[error("coordinate {index} is not a finite number ({value})")]
    NotFinite { index: usize, value: String },
    #[error("{kind} needs at least {min} points, got {got}")]
    TooFewPoints { kind: &'static str, min: usize, got: usize },
    #[error("polygon ring {ring} is not closed (first point {first} differs from last point {last})")]
    UnclosedRing { ring: usize, first: String, last: String },
    #[error("mixed dimensions: some coordinates have Z and others do not")]
    MixedDimensions,
    #[error("empty {0}")]
    Empty(&'static str),
    #[error("unsupported geometry type {0}")]
    Unsupported(String),
    #[error("malformed {format} at byte {offset}: {message}")]
    Malformed { format: &'static str, offset: usize, message: String },
    #[error("malformed {format}: {message}")]
    Syntax { format: &'static str, message: String },
    #[error("latitude {lat} at coordinate {index} is beyond ±90°")]
    LatitudeOutOfRange { index: usize, lat: f64 },
    #[error("a {expected} layer cannot hold a {got}")]
    WrongKind { expected: &'static str, got: &'static str },
}

/// A property value that does not fit its layer schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ValidationError {
    /// The field at fault, by its current name.
    pub field: String,
    /// What is wrong, in one phrase.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Any error of the model crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("invalid geometry: {0}")]
    Geometry(#[from] GeometryError),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("invalid time `{input}`: {message}")]
    Time { input: String, message: String },
    #[error("unknown CRS `{0}` (use EPSG:4490, EPSG:4326, EPSG:3857, EPSG:4491–4554, GCJ02 or BD09)")]
    UnknownCrs(String),
    #[error("invalid {what} `{input}`: {message}")]
    Invalid { what: &'static str, input: String, message: String },
    #[error("invalid layer schema: {0}")]
    Schema(String),
}
