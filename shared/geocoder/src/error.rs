//! The crate's one error type: every variant says which input, row or field is at fault.

/// Errors of gazetteer building, record editing and snapshot loading. Geocoding itself never fails:
/// input it cannot place is answered with a "no match" result that carries the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CSV source could not be read or parsed.
    #[error("{source_name}: row {row}: {message}")]
    Csv { source_name: String, row: u64, message: String },
    /// A division code is not 2, 4, 6, 9 or 12 digits, or does not nest under its parent.
    #[error("{source_name}: row {row}: bad division code {code:?}: {message}")]
    BadCode { source_name: String, row: u64, code: String, message: String },
    /// A code given by a caller (record, alias, subset) names no division in the gazetteer.
    #[error("unknown division code {code:?} ({context})")]
    UnknownCode { code: String, context: String },
    /// A record field is invalid (empty name, non-finite coordinate, too few line vertices…).
    #[error("{kind} {id:?}: {message}")]
    BadRecord { kind: &'static str, id: String, message: String },
    /// A coordinate is not a finite longitude/latitude pair.
    #[error("bad coordinate ({lon}, {lat}): {message}")]
    BadCoordinate { lon: f64, lat: f64, message: String },
    /// A snapshot is not a gazetteer snapshot, is of an unsupported version, or is corrupt.
    #[error("gazetteer snapshot: {message}")]
    Snapshot { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
