//! The crate's error types: a bad definition ([`FlowError`], [`ClassError`]) names the JSON path
//! of what is wrong; a refused action ([`Refusal`]) says exactly why, so the server can answer
//! problem+json and a device can show the inspector what happened to an offline action.

use serde::{Deserialize, Serialize};

use crate::flow::{Field, FlowRef};

/// A flow document that cannot be used. `path` is a JSON path into the document
/// (`actions[3].rules[0].from[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("flow document is not valid JSON for a flow at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("{path}: id {id:?} must be 1–64 characters of a–z, 0–9, '_' or '-'")]
    InvalidId { path: String, id: String },
    #[error("{path}: version must be 1 or more")]
    InvalidVersion { path: String },
    #[error("{path}: label is empty")]
    EmptyLabel { path: String },
    #[error("{path}: duplicate id {id:?} (first at {first})")]
    DuplicateId { path: String, id: String, first: String },
    #[error("{path}: unknown state {state:?}")]
    UnknownState { path: String, state: String },
    #[error("{path}: unknown role {role:?}")]
    UnknownRole { path: String, role: String },
    #[error("{path}: action {action:?} has no role that may perform it")]
    ActionWithoutRoles { path: String, action: String },
    #[error("{path}: a rule must name at least one state it applies in")]
    EmptyFrom { path: String },
    #[error("{path}: a held role must list at least one role name")]
    EmptyRoleRule { path: String },
    #[error("{path}: state {state:?} cannot be reached from the initial state")]
    UnreachableState { path: String, state: String },
    #[error("{path}: state {state:?} is not terminal but no action leads out of it")]
    DeadEnd { path: String, state: String },
    #[error("{path}: a time limit of zero")]
    ZeroLimit { path: String },
    #[error("{path}: a stage limited by class needs a default limit")]
    MissingLimit { path: String },
    #[error("{path}: an extending action keeps the case in its state (no `to`)")]
    ExtendMovesState { path: String },
    #[error("flow {id:?} version {version} already exists with different content")]
    VersionExists { id: String, version: u32 },
}

/// A classification document that cannot be used; `path` as in [`FlowError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("classification document is not valid JSON at line {line}, column {column}: {message}")]
    Json { line: usize, column: usize, message: String },
    #[error("{path}: code {code:?} must be {digits} digits")]
    InvalidCode { path: String, code: String, digits: usize },
    #[error("{path}: minor code {code:?} does not start with its major code {major:?}")]
    MinorOutsideMajor { path: String, code: String, major: String },
    #[error("{path}: duplicate code {code:?} (first at {first})")]
    DuplicateCode { path: String, code: String, first: String },
    #[error("{path}: text is empty")]
    Empty { path: String },
    #[error("{path}: a time limit of zero")]
    ZeroLimit { path: String },
}

/// Why an action was refused. Nothing about the case changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    #[error("the case runs flow {case:?}, the definition given is {given:?}")]
    WrongFlow { case: FlowRef, given: FlowRef },
    #[error("the case is in state {state:?}, which its flow does not define")]
    CorruptCase { state: String },
    #[error("action {action:?} is not an action of this flow")]
    UnknownAction { action: String },
    #[error("action {action:?} is not allowed in state {state:?} (allowed in: {allowed_in:?})")]
    WrongState { action: String, state: String, allowed_in: Vec<String> },
    #[error("action {action:?} in state {state:?} needs one of the roles {roles:?}")]
    WrongRole { action: String, state: String, roles: Vec<String> },
    #[error("action {action:?} needs the field {field:?}")]
    MissingField { action: String, field: Field },
    #[error("field {field:?}: {reason}")]
    InvalidField { field: Field, reason: String },
    #[error("action {action:?} needs at least {required} photo(s), {given} given")]
    MissingPhoto { action: String, required: u32, given: u32 },
    #[error("photos[{index}] is not a SHA-256 (64 hexadecimal digits): {value:?}")]
    InvalidPhoto { index: usize, value: String },
    #[error("an action id must not be empty")]
    EmptyActionId,
    #[error("action id {action_id:?} was already used for {recorded:?}, not {action:?}")]
    ActionIdReused { action_id: String, recorded: String, action: String },
}

impl Refusal {
    /// A short stable word for the kind (problem+json `type` suffixes, logs, tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::WrongFlow { .. } => "wrong_flow",
            Refusal::CorruptCase { .. } => "corrupt_case",
            Refusal::UnknownAction { .. } => "unknown_action",
            Refusal::WrongState { .. } => "wrong_state",
            Refusal::WrongRole { .. } => "wrong_role",
            Refusal::MissingField { .. } => "missing_field",
            Refusal::InvalidField { .. } => "invalid_field",
            Refusal::MissingPhoto { .. } => "missing_photo",
            Refusal::InvalidPhoto { .. } => "invalid_photo",
            Refusal::EmptyActionId => "empty_action_id",
            Refusal::ActionIdReused { .. } => "action_id_reused",
        }
    }
}
