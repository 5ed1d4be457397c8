//! Errors of the SensorThings crate. Each says what is wrong and where: the JSON path of the
//! offending field in a body (`/Datastreams/0/unitOfMeasurement/name`), the path segment of a URL,
//! or the character position inside a query option (`$filter`, counted in characters, 1-based), so
//! the HTTP layer can answer 400 with the message unchanged.

/// Result alias of this crate.
pub type Result<T, E = StaError> = std::result::Result<T, E>;

/// Why a SensorThings request part was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StaError {
    /// A create/update body (or a dataArray body) that does not fit the data model. `path` is a
    /// JSON pointer to the offending member (`""` for the body itself).
    #[error("invalid body at `{path}`: {message}")]
    Body { path: String, message: String },

    /// A resource path that is not a SensorThings path. `segment` is the offending segment
    /// (1-based), `text` its text.
    #[error("invalid resource path: segment {segment} `{text}`: {message}")]
    Path { segment: usize, text: String, message: String },

    /// A query option that does not parse or does not fit the entity type. `position` counts
    /// characters (not bytes) from 1 in the option's (percent-decoded) value.
    #[error("invalid {option} at character {position}: {message}")]
    Query { option: String, position: usize, message: String },

    /// A request beyond a fixed bound (expression depth, text length, expand depth, dataArray
    /// rows): which bound, the value found (or reached) and the maximum.
    #[error("{what}: {found} exceeds the limit of {max}")]
    TooLarge { what: String, found: u64, max: u64 },
}

impl StaError {
    pub(crate) fn body(path: impl Into<String>, message: impl Into<String>) -> Self {
        StaError::Body { path: path.into(), message: message.into() }
    }

    pub(crate) fn query(option: &str, position: usize, message: impl Into<String>) -> Self {
        StaError::Query { option: option.to_owned(), position, message: message.into() }
    }

    pub(crate) fn too_large(what: impl Into<String>, found: u64, max: u64) -> Self {
        StaError::TooLarge { what: what.into(), found, max }
    }
}

/// Why a `$filter` could not be evaluated on an entity (evaluation is otherwise total: type
/// mismatches make a comparison false, as OData's null propagation does).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A construct the in-memory evaluator does not decide (e.g. a path through a to-many
    /// navigation property whose entities were not expanded inline).
    #[error("cannot evaluate `{what}` in memory: {reason}")]
    Unsupported { what: String, reason: String },
}
