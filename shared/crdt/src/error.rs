//! Errors of the CRDT crate. Variants name the document key, field or attribute at fault so a
//! caller can prefix the layer and entity and show the message unchanged.

use shikong_model::EntityId;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error of the CRDT crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A change depends on changes this document does not have; nothing was applied.
    /// [`crate::EntityDoc::missing_dependencies`] names them.
    #[error("a change depends on changes this document does not have (missing dependencies); nothing was applied")]
    MissingDependencies,
    /// Bytes that are not an automerge document or change.
    #[error("invalid document or change bytes: {0}")]
    Invalid(String),
    /// A value that does not fit its field (when writing an edit or reading a stored value), or a
    /// field the layer does not have.
    #[error("field `{field}`: {message}")]
    Schema { field: String, message: String },
    /// A system key of the document (`id`, `g`, `code`, `vf`, `vt`, `del`) is missing or holds a
    /// value of the wrong kind.
    #[error("document key `{key}`: {message}")]
    Document { key: String, message: String },
    /// A resolution that names an unknown attribute or brings the wrong kind of value.
    #[error("cannot resolve `{attribute}`: {message}")]
    Resolve { attribute: String, message: String },
    /// A state or feature for another entity than the document's.
    #[error("the document is entity {document}, not {given}")]
    WrongEntity { document: EntityId, given: EntityId },
    /// An automerge operation failed (a bug rather than bad input: every write is a scalar put
    /// on the root map).
    #[error("automerge: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for Error {
    fn from(e: automerge::AutomergeError) -> Self {
        Error::Automerge(e.to_string())
    }
}

impl Error {
    pub(crate) fn schema(field: &str, message: impl Into<String>) -> Self {
        Error::Schema { field: field.to_owned(), message: message.into() }
    }

    pub(crate) fn document(key: &str, message: impl Into<String>) -> Self {
        Error::Document { key: key.to_owned(), message: message.into() }
    }
}
