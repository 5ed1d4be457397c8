//! The audit log's vocabulary: what happened (an action code), how it ended, who did it and to
//! what. Rows are written by `AuthStore` in the same transaction as the change they record (so a
//! change without its audit row cannot exist), and by the server for data writes through
//! `AuthStore::record_write`. There is no API to change or remove a row, and the table's
//! triggers refuse UPDATE and DELETE.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use crate::error::AuthError;
use crate::types::{AuditId, DeviceId, UserId};

/// What happened. The string codes (`login.ok`) are stored and shown to admins; they never change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A password login that issued a token.
    Login,
    /// A password login refused: unknown user, wrong password, not active, or locked out.
    LoginFailed,
    TokenIssue,
    TokenRevoke,
    UserAdd,
    /// A citizen's self-registration.
    UserRegister,
    UserApprove,
    UserReject,
    UserDisable,
    UserEnable,
    UserRole,
    UserPassword,
    GroupCreate,
    GroupDelete,
    GroupAddMember,
    GroupRemoveMember,
    DeviceRegister,
    DeviceRevoke,
    EnrolmentCreate,
    EnrolmentRedeem,
    PermissionSet,
    PermissionRemove,
    // Data writes, recorded by the server.
    FeatureCreate,
    FeatureUpdate,
    FeatureDelete,
    LayerCreate,
    LayerUpdate,
    LayerDelete,
    LayerPublish,
    Import,
    SyncPush,
    /// An outside service registered or removed, an API key created or revoked (issue 20).
    ServiceRegister,
    ServiceDelete,
    ApiKeyCreate,
    ApiKeyRevoke,
    /// A request through the service proxy (key or user, service, status, bytes, time).
    ServiceProxy,
    /// A catalogue harvest source added or removed (issue 20).
    HarvestCreate,
    HarvestDelete,
    /// A code this build does not know (written by a newer build); kept as read.
    Other(String),
}

impl AuditAction {
    const KNOWN: [AuditAction; 38] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::TokenIssue,
        AuditAction::TokenRevoke,
        AuditAction::UserAdd,
        AuditAction::UserRegister,
        AuditAction::UserApprove,
        AuditAction::UserReject,
        AuditAction::UserDisable,
        AuditAction::UserEnable,
        AuditAction::UserRole,
        AuditAction::UserPassword,
        AuditAction::GroupCreate,
        AuditAction::GroupDelete,
        AuditAction::GroupAddMember,
        AuditAction::GroupRemoveMember,
        AuditAction::DeviceRegister,
        AuditAction::DeviceRevoke,
        AuditAction::EnrolmentCreate,
        AuditAction::EnrolmentRedeem,
        AuditAction::PermissionSet,
        AuditAction::PermissionRemove,
        AuditAction::FeatureCreate,
        AuditAction::FeatureUpdate,
        AuditAction::FeatureDelete,
        AuditAction::LayerCreate,
        AuditAction::LayerUpdate,
        AuditAction::LayerDelete,
        AuditAction::LayerPublish,
        AuditAction::Import,
        AuditAction::SyncPush,
        AuditAction::ServiceRegister,
        AuditAction::ServiceDelete,
        AuditAction::ApiKeyCreate,
        AuditAction::ApiKeyRevoke,
        AuditAction::ServiceProxy,
        AuditAction::HarvestCreate,
        AuditAction::HarvestDelete,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::Login => "login.ok",
            AuditAction::LoginFailed => "login.failed",
            AuditAction::TokenIssue => "token.issue",
            AuditAction::TokenRevoke => "token.revoke",
            AuditAction::UserAdd => "user.add",
            AuditAction::UserRegister => "user.register",
            AuditAction::UserApprove => "user.approve",
            AuditAction::UserReject => "user.reject",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserEnable => "user.enable",
            AuditAction::UserRole => "user.role",
            AuditAction::UserPassword => "user.password",
            AuditAction::GroupCreate => "group.create",
            AuditAction::GroupDelete => "group.delete",
            AuditAction::GroupAddMember => "group.add_member",
            AuditAction::GroupRemoveMember => "group.remove_member",
            AuditAction::DeviceRegister => "device.register",
            AuditAction::DeviceRevoke => "device.revoke",
            AuditAction::EnrolmentCreate => "enrolment.create",
            AuditAction::EnrolmentRedeem => "enrolment.redeem",
            AuditAction::PermissionSet => "permission.set",
            AuditAction::PermissionRemove => "permission.remove",
            AuditAction::FeatureCreate => "feature.create",
            AuditAction::FeatureUpdate => "feature.update",
            AuditAction::FeatureDelete => "feature.delete",
            AuditAction::LayerCreate => "layer.create",
            AuditAction::LayerUpdate => "layer.update",
            AuditAction::LayerDelete => "layer.delete",
            AuditAction::LayerPublish => "layer.publish",
            AuditAction::Import => "import",
            AuditAction::SyncPush => "sync.push",
            AuditAction::ServiceRegister => "service.register",
            AuditAction::ServiceDelete => "service.delete",
            AuditAction::ApiKeyCreate => "apikey.create",
            AuditAction::ApiKeyRevoke => "apikey.revoke",
            AuditAction::ServiceProxy => "service.proxy",
            AuditAction::HarvestCreate => "harvest.create",
            AuditAction::HarvestDelete => "harvest.delete",
            AuditAction::Other(s) => s,
        }
    }

    /// Reads a stored code; unknown codes become [`AuditAction::Other`].
    pub(crate) fn from_stored(code: &str) -> AuditAction {
        AuditAction::KNOWN.into_iter().find(|a| a.as_str() == code).unwrap_or_else(|| AuditAction::Other(code.into()))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = AuthError;
    /// Known codes only (a filter naming an unknown action is a typo, not a wish).
    fn from_str(s: &str) -> Result<Self, AuthError> {
        AuditAction::KNOWN
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| AuthError::InvalidArgument(format!("unknown audit action `{s}`")))
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    /// Bad credentials, invalid input, conflict.
    Failed,
    /// Refused by a permission check or a lockout.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Result<Outcome, AuthError> {
        s.parse()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s.trim() {
            "ok" => Ok(Outcome::Ok),
            "failed" => Ok(Outcome::Failed),
            "denied" => Ok(Outcome::Denied),
            _ => Err(AuthError::InvalidArgument(format!("unknown outcome `{s}` (expected ok, failed or denied)"))),
        }
    }
}

/// Who did it, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorRef {
    User {
        id: UserId,
        username: String,
    },
    /// A local operator (the CLI), by the name it gave.
    Local(String),
    Anonymous,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub action: AuditAction,
    pub outcome: Outcome,
    pub actor: ActorRef,
    pub device: Option<DeviceId>,
    /// Client address.
    pub client: Option<String>,
    pub request_id: Option<String>,
    /// The account concerned: the username tried at login, the account changed, the token owner.
    pub user: Option<String>,
    /// Another object concerned: group, device id, token id, rule subject.
    pub target: Option<String>,
    pub layer: Option<String>,
    /// Entity ids written (at most [`MAX_ENTITY_IDS`]; `entity_count` has the full number).
    pub entities: Vec<String>,
    pub entity_count: Option<u64>,
    /// The store transaction the write became.
    pub tx: Option<String>,
    /// Free text: why it failed, what changed (`role office → inspector`).
    pub detail: Option<String>,
}

/// How many entity ids one audit row keeps; an import of a million features keeps the first ones
/// and the count.
pub const MAX_ENTITY_IDS: usize = 1000;

/// A data write for the audit log, reported by the server after (or instead of) the store write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRecord {
    pub action: AuditAction,
    pub outcome: Outcome,
    pub layer: Option<String>,
    pub entities: Vec<String>,
    /// Number of entities written; `entities.len()` when `None`.
    pub count: Option<u64>,
    pub tx: Option<String>,
    pub detail: Option<String>,
}

impl WriteRecord {
    pub fn new(action: AuditAction, layer: impl Into<String>) -> Self {
        WriteRecord {
            action,
            outcome: Outcome::Ok,
            layer: Some(layer.into()),
            entities: Vec::new(),
            count: None,
            tx: None,
            detail: None,
        }
    }
}

/// The audit record of a data write, made inside the write's store transaction and kept there
/// (the store's outbox, `shikong_store::Outbox`) until [`crate::AuthStore::record_pending`] has
/// appended it here: a write and its audit record are committed together, so a crash after the
/// store's commit delays the audit row, never loses it. `id` makes the append idempotent.
/// Serialized as JSON (`to_json`/`from_json`), a format private to this crate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingAudit {
    pub id: uuid::Uuid,
    /// When the write happened (its transaction's instant), milliseconds since 1970.
    pub at_ms: i64,
    /// `user`, `local` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor: Option<String>,
    pub device: Option<String>,
    pub client: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub layer: Option<String>,
    pub entities: Vec<String>,
    pub count: Option<u64>,
    pub tx: Option<String>,
    pub detail: Option<String>,
}

impl PendingAudit {
    /// The record of `w` by `actor` at `at` (the write's transaction instant), with a new id.
    pub fn new(actor: &crate::Actor, w: &WriteRecord, at: Timestamp) -> Self {
        let who = crate::db::RowActor::of(actor);
        PendingAudit {
            id: uuid::Uuid::now_v7(),
            at_ms: at.as_millisecond(),
            actor_kind: who.kind.to_owned(),
            actor_id: who.id,
            actor: who.name.map(str::to_owned),
            device: who.device,
            client: who.client.map(str::to_owned),
            request_id: who.request_id.map(str::to_owned),
            action: w.action.as_str().to_owned(),
            outcome: w.outcome.as_str().to_owned(),
            layer: w.layer.clone(),
            entities: w.entities.iter().take(MAX_ENTITY_IDS).cloned().collect(),
            count: Some(w.count.unwrap_or(u64::try_from(w.entities.len()).unwrap_or(u64::MAX))),
            tx: w.tx.clone(),
            detail: w.detail.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, AuthError> {
        serde_json::from_str(s).map_err(|e| AuthError::InvalidArgument(format!("not a pending audit record: {e}")))
    }
}

/// Filters for reading the audit log; every field narrows the result. Newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditQuery {
    /// At or after this instant.
    pub from: Option<Timestamp>,
    /// Before this instant.
    pub to: Option<Timestamp>,
    /// Entries by this user or about this account (actor or `user` column; ASCII case ignored).
    pub user: Option<String>,
    /// Any of these actions (empty: all).
    pub actions: Vec<AuditAction>,
    pub outcome: Option<Outcome>,
    pub layer: Option<String>,
    /// Continue after this entry in the newest-first listing, i.e. entries with smaller ids
    /// (pass the previous page's `next`).
    pub after: Option<AuditId>,
    /// At most this many entries (1..=1000; 0 means 100).
    pub limit: usize,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The cursor for the next (older) page, if there may be one.
    pub next: Option<AuditId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::KNOWN {
            assert!(seen.insert(a.as_str().to_owned()), "duplicate code {a}");
            assert_eq!(a.as_str().parse::<AuditAction>().unwrap(), a);
            assert_eq!(AuditAction::from_stored(a.as_str()), a);
        }
        assert_eq!(AuditAction::from_stored("style.update"), AuditAction::Other("style.update".into()));
        assert!("style.update".parse::<AuditAction>().is_err());
        for o in [Outcome::Ok, Outcome::Failed, Outcome::Denied] {
            assert_eq!(Outcome::from_stored(o.as_str()).unwrap(), o);
        }
    }
}
