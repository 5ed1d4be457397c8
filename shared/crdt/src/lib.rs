//! One automerge document per edited entity: how offline edits from many devices and the office
//! merge field by field without losing any of them (issue 5, docs/sync-protocol.md).
//!
//! Each document's root map holds one scalar per attribute (`id`, `g`, `code`, `vf`, `vt`,
//! `p.<field id>`, `del`), so concurrent writes of different attributes both survive and
//! concurrent writes of the same attribute keep every value: automerge shows the deterministic
//! winner and [`EntityDoc::conflicts`] lists the others with who wrote them and when (read from the
//! change messages). Resolving, deleting, restoring and undoing are changes too, so they sync and
//! stay in history like any edit.
//!
//! Entities that were never edited through sync carry no document at all: their implicit document
//! is the deterministic [`EntityDoc::base`], identical on every machine, so a device's first edit
//! merges with the server's copy without either side shipping the base.
//!
//! Architecture invariant: pure. No I/O, no clock reads (times come in [`EditMeta`] and
//! [`ServerMeta`]), no HTTP; callers move bytes. Validation against the layer schema is the
//! caller's job (`shikong_model::feature::conform`), but reading a document never guesses: a stored
//! value that does not fit its field type is an error.
#![forbid(unsafe_code)]

mod actor;
mod codec;
mod conflict;
mod doc;
mod edits;
mod error;
mod message;
mod rebase;
mod undo;

#[cfg(test)]
mod convergence;
#[cfg(test)]
mod test_support;

pub use actor::Actor;
pub use automerge::ChangeHash;
pub use doc::{EntityDoc, change_hash};
pub use edits::EditRecord;
pub use error::{Error, Result};
pub use message::{ChangeClaim, change_claim};
pub use rebase::Rebased;

use shikong_model::{Feature, Geometry, Properties, ValidTime, Value};

/// Who makes a device edit and when by the device's clock (recorded in the change message).
#[derive(Debug, Clone, PartialEq)]
pub struct EditMeta {
    pub user: String,
    pub device: Option<String>,
    pub time: jiff::Timestamp,
}

/// The store version a server change mirrors (recorded in the change message; `time`, the
/// transaction time, becomes the change time in milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMeta {
    pub version: i64,
    pub tx: i64,
    pub author: String,
    pub time: jiff::Timestamp,
}

/// One local edit, applied as one change. Properties are keyed by field **name** as everywhere in
/// `shikong-model`; documents key them by field id, translated through the layer schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A whole entity: every attribute of the feature (absent properties are cleared).
    Create(Feature),
    /// Some fields; `Value::Null` clears a field.
    SetFields(Properties),
    SetGeometry(Option<Geometry>),
    SetCode(String),
    SetValid(ValidTime),
    Delete,
    /// Undeletes (`del = false`): the resolution of a deletion that raced an edit.
    Restore,
    /// Chooses the value of a contested attribute: a field name, `geometry`, `code`, `valid_from`,
    /// `valid_to` or `deleted`. Always written when the attribute is contested, even if the chosen
    /// value is the current winner, so the other values stop competing everywhere.
    Resolve {
        attribute: String,
        value: Resolved,
    },
}

/// The value chosen by a resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// A field value, the code (`Text`) or a valid-time end (`DateTime` or `Null`).
    Value(Value),
    Geometry(Option<Geometry>),
    /// `true` confirms a deletion, `false` restores the entity.
    Deleted(bool),
}

/// What a document says about its entity now. A deleted entity keeps its last attributes, which a
/// restore brings back.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    pub feature: Feature,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Concurrent writes of the same attribute.
    Field,
    /// Edits made concurrently with the winning deletion (attribute `deleted`): the entity stays
    /// deleted until someone confirms the deletion or restores it.
    DeletedWhileEdited,
}

/// One competing value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictValueKind {
    Value(Value),
    Geometry(Option<Geometry>),
    Deleted(bool),
    Absent,
}

/// A competing value and who wrote it, when (device clock for device changes, transaction time for
/// server changes; nothing for the base).
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictSide {
    pub value: ConflictValueKind,
    pub user: Option<String>,
    pub device: Option<String>,
    pub time: Option<jiff::Timestamp>,
}

/// A conflict a person must settle: the visible `winner` and the `others` that lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// A field name, `geometry`, `code`, `valid_from`, `valid_to` or `deleted`.
    pub attribute: String,
    pub winner: ConflictSide,
    pub others: Vec<ConflictSide>,
}
