//! The app core's one error type. Every effect (a file, a replica, the server, a platform
//! service) reports an [`AppError`] whose variant says what failed and where — the file, the form
//! field, the offline area, the layer — so the views can branch on it and word it in the user's
//! language ([`crate::i18n::error_text`]) instead of showing or matching strings.

use std::path::{Path, PathBuf};

use crate::collect::FieldProblem;

/// Result alias of the app core.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Everything that can go wrong in an app action.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A value the user typed is refused; `field` names the input (`server`, `category`, …).
    #[error("{field}: {message}")]
    Input { field: String, message: String },
    /// The form has problems, one per field, all found at once; nothing was written.
    #[error("the form has problems: {}", problems_text(.0))]
    Form(Vec<FieldProblem>),
    #[error("not signed in")]
    NotSignedIn,
    /// The server cannot be reached now (network check before talking to it).
    #[error("offline: the server cannot be reached")]
    Offline,
    #[error("no offline area `{id}` on this device")]
    NoArea { id: String },
    #[error("no offline area is open")]
    NoActiveArea,
    #[error("offline area `{area}` carries no gazetteer")]
    NoGazetteer { area: String },
    /// Deleting an area would lose work that is not on the server yet.
    #[error("offline area `{area}`: {pending} edits and {photos} photos are not uploaded yet")]
    Unsent { area: String, pending: u64, photos: usize },
    #[error("no position fix yet")]
    NoFix,
    #[error("QR code: no QR code found in the image")]
    QrNotFound,
    #[error("QR code: the QR code cannot be read: {reason}")]
    QrUnreadable { reason: String },
    #[error("QR code: cannot draw `{text}`: {reason}")]
    QrEncode { text: String, reason: String },
    /// A link read from a QR code is not one of ours, or lacks a part.
    #[error("QR code link: {0}")]
    Link(#[from] shikong_protocol::enrolment::LinkError),
    /// A photo or picked image that cannot be read or written (`name`: its file name).
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    /// A recorded position track (NMEA, GPX) that cannot be replayed.
    #[error("position track {}: {reason}", .path.display())]
    Track { path: PathBuf, reason: String },
    #[error("camera folder {}: {reason}", .folder.display())]
    Camera { folder: PathBuf, reason: String },
    #[error("secure storage, key `{key}`: {reason}")]
    SecureStorage { key: String, reason: String },
    /// A file of the app's data folder that does not parse.
    #[error("{}: damaged file: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A conflict whose values cannot be applied to its field.
    #[error("conflict on layer `{layer}`, field `{field}`: {reason}")]
    BadConflict { layer: String, field: String, reason: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The action's worker stopped before it answered (a panic in a blocking task).
    #[error("the action stopped unexpectedly: {0}")]
    Interrupted(String),
    #[error("{0}")]
    Sync(#[from] shikong_sync_client::SyncError),
    #[error("{0}")]
    Replica(#[from] shikong_replica::ReplicaError),
}

impl AppError {
    /// `map_err` adapter naming the file an I/O error is about.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AppError + '_ {
        move |source| AppError::Io { path: path.to_owned(), source }
    }

    /// A refused input.
    pub fn input(field: &str, message: impl Into<String>) -> AppError {
        AppError::Input { field: field.to_owned(), message: message.into() }
    }
}

fn problems_text(list: &[FieldProblem]) -> String {
    list.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ")
}
