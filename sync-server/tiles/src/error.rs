//! Errors of the tile services: each names the set, layer, field, file or tile at fault.

use shikong_store::StoreError;
use shikong_tiles::TileError;

/// Result alias of this crate.
pub type Result<T, E = TileServerError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("tile cache or registry (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no tile set named `{0}`")]
    NoSuchSet(String),
    #[error("tile set `{set}` has no acquisition at or before {when}")]
    NoSliceAt { set: String, when: String },
    #[error("unknown attribute `{field}` (the set's attributes: {known})")]
    NoSuchField { field: String, known: String },
    #[error("{path}: cannot import as a raster tile set: {message}")]
    Import { path: String, message: String },
    #[error("style `{id}`: {message}")]
    Style { id: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl TileServerError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TileServerError::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn import(path: &std::path::Path, message: impl Into<String>) -> Self {
        TileServerError::Import { path: path.display().to_string(), message: message.into() }
    }
}
