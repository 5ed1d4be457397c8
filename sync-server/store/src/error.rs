//! Store errors. Each says what is wrong and where (layer, entity code, field), so that the CLI
//! prints it as one line and the server maps it to a precise problem+json response.

use shikong_model::{GeometryError, ModelError};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{path}: not a shikong store ({reason})")]
    NotAStore { path: String, reason: String },
    #[error(
        "{path} was written by a newer shikong (store schema version {found}; this build understands up to {supported}). Upgrade shikong to open it."
    )]
    TooNew { path: String, found: i64, supported: i64 },
    #[error(
        "{config}: the {backend} backend is not built into this shikong yet; give a data directory (SQLite) instead"
    )]
    BackendNotBuiltIn {
        /// The configuration as given (passwords hidden).
        config: String,
        backend: &'static str,
    },
    #[error("{config}: cannot connect to the database: {reason}")]
    Connect {
        /// The configuration as given (passwords hidden).
        config: String,
        reason: String,
    },
    #[error("invalid store configuration `{config}`: {reason}")]
    InvalidConfig { config: String, reason: String },
    #[error("no layer named `{0}`")]
    NoSuchLayer(String),
    #[error("layer `{0}` already exists")]
    LayerExists(String),
    #[error("invalid layer name `{name}`: {reason}")]
    InvalidLayerName { name: String, reason: String },
    #[error("layer `{layer}`: no live feature {key}")]
    NotFound { layer: String, key: String },
    #[error("layer `{layer}`: entity code `{code}` is already used by another feature")]
    DuplicateCode { layer: String, code: String },
    #[error("layer `{layer}`: entity id {id} already exists")]
    DuplicateId { layer: String, id: String },
    #[error("layer `{layer}`, feature `{code}`: {source}")]
    Invalid {
        layer: String,
        code: String,
        #[source]
        source: ModelError,
    },
    #[error("layer `{layer}`, feature `{code}`: invalid geometry: {source}")]
    Geometry {
        layer: String,
        code: String,
        #[source]
        source: GeometryError,
    },
    #[error("layer `{layer}`: {message}")]
    SchemaChange { layer: String, message: String },
    #[error("layer `{layer}`: field `{field}` matches {count} live features; an upsert key must be unique")]
    AmbiguousKey { layer: String, field: String, count: usize },
    #[error("invalid filter: {0}")]
    Filter(#[from] shikong_query::QueryError),
    #[error("{0}")]
    InvalidArgument(String),
    /// A store copy's destination already holds data ([`crate::copy`]); nothing was written.
    #[error(
        "{store}: the destination of a copy must be an empty store, and this one holds {holds}; copy into a new data folder or an empty database"
    )]
    DestinationNotEmpty { store: String, holds: String },
    #[error("store data is inconsistent: {0}")]
    Corrupt(String),
    #[error("SQLite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(postgres::Error),
    /// The shared commit of a group of transactions failed ([`crate::FeatureStore::begin_grouped`]):
    /// nothing of this transaction was written.
    #[error("the commit failed, nothing was written: {0}")]
    CommitFailed(String),
    /// The work was stopped by its [`crate::cancel`] token (a statement interrupted, or a loop
    /// that checked); nothing was written.
    #[error("the store call was stopped: {0}")]
    Cancelled(crate::cancel::CancelReason),
    #[error(transparent)]
    Gpkg(#[from] shikong_gpkg::GpkgError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The database cannot serve the call right now — unreachable, its connection closed, shutting
    /// down or starting up, or read-only (a standby not promoted yet) — rather than anything
    /// about the call: PostgreSQL down or failing over. The call may succeed shortly (the server
    /// answers 503 with `Retry-After`).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Postgres(e) => {
                e.is_closed()
                    // The socket failed (reset by a server that went away).
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        // connection_exception, operator_intervention's shutdowns and
                        // cannot_connect_now, read_only_sql_transaction.
                        c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") || c == "25006"
                    })
            }
            _ => false,
        }
    }
}

/// An interrupted statement (the progress handler of [`crate::cancel`]) is [`StoreError::Cancelled`].
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
            && let Some(reason) = crate::cancel::current_reason()
        {
            return crate::cancel::cancelled(reason);
        }
        StoreError::Sqlite(e)
    }
}

/// A statement cancelled by its `statement_timeout` (the current token's deadline) or while the
/// current token is cancelled is [`StoreError::Cancelled`].
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED) {
            let reason = crate::cancel::current_reason().unwrap_or(crate::cancel::CancelReason::Deadline);
            return crate::cancel::cancelled(reason);
        }
        StoreError::Postgres(e)
    }
}
