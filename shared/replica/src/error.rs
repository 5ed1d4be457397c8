//! Errors of the replica crate. Every variant names the file, layer, feature (code or id), field or
//! column at fault, so the apps can show the message to an inspector unchanged.

/// Result alias of this crate.
pub type Result<T, E = ReplicaError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    #[error("{path}: not a shikong replica ({reason})")]
    NotAReplica { path: String, reason: String },
    #[error("{path}: replica format {found} is newer than this app understands (up to {supported}); update the app")]
    TooNew { path: String, found: i64, supported: i64 },
    #[error("{path}: the file already exists (a replica is always written to a new file)")]
    Exists { path: String },
    #[error("layer `{0}` is not in this replica")]
    NoSuchLayer(String),
    #[error("layer `{layer}`: {message}")]
    BadLayer { layer: String, message: String },
    #[error("layer `{layer}`: no feature {key}")]
    NotFound { layer: String, key: String },
    /// An edit or a feature refused by the layer schema; nothing was written.
    #[error("layer `{layer}`, feature `{feature}`: {source}")]
    Invalid {
        layer: String,
        feature: String,
        #[source]
        source: shikong_model::ModelError,
    },
    #[error("layer `{layer}`: code `{code}` is already used by another feature")]
    DuplicateCode { layer: String, code: String },
    #[error("layer `{layer}`: a feature with id {id} already exists")]
    DuplicateId { layer: String, id: String },
    #[error("layer `{layer}`, feature `{feature}` is deleted (restore it first)")]
    Deleted { layer: String, feature: String },
    #[error("layer `{layer}`, feature `{feature}` is not deleted (nothing to restore)")]
    NotDeleted { layer: String, feature: String },
    #[error("layer `{layer}`, feature `{feature}`: nothing of this replica's to undo")]
    NothingToUndo { layer: String, feature: String },
    #[error("layer `{layer}`, feature `{feature}`: entity document: {source}")]
    Crdt {
        layer: String,
        feature: String,
        #[source]
        source: shikong_crdt::Error,
    },
    #[error("layer `{layer}`, row fid {fid}, column `{column}`: {message}")]
    BadValue { layer: String, fid: i64, column: String, message: String },
    /// Something in a pull page or push response the replica cannot apply; nothing of the page
    /// was stored.
    #[error("sync message, layer `{layer}`, entity {entity}: {message}")]
    BadMessage { layer: String, entity: String, message: String },
    #[error("sync message speaks protocol {found}; this app speaks {supported}")]
    Protocol { found: u32, supported: u32 },
    #[error("attachment of {size} bytes is larger than the limit of {max} bytes")]
    AttachmentTooLarge { size: u64, max: u64 },
    #[error("attachment {0} is not in this replica")]
    NoSuchAttachment(String),
    #[error("attachment evidence: {0}")]
    BadEvidence(String),
    #[error("{count} edit(s) made outside shikong (QGIS) are not yet recorded: call import_external_edits first")]
    ExternalEditsPending { count: u64 },
    #[error("this replica already made edits with its writer id; it cannot take a new one")]
    ActorInUse,
    #[error("no task `{0}` in this replica (tasks arrive at sync: `shikong replica sync`)")]
    NoSuchTask(String),
    /// An offline action the flow does not allow on the task as the device knows it; not queued.
    #[error("case {case}: {reason}")]
    TaskRefused { case: String, kind: String, reason: String },
    #[error("corrupt replica: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Gpkg(#[from] shikong_gpkg::GpkgError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
