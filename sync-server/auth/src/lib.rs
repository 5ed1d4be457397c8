//! Who may use the platform and what they may do: users with roles (admin, office staff, field
//! inspectors, citizens), groups, devices, bearer tokens, per-layer permissions, citizen
//! self-registration with admin approval (用户注册审核), and the audit log.
//!
//! This is the policy and persistence layer; it knows nothing of HTTP. The server turns an
//! `Authorization: Bearer …` header into a [`Principal`] with [`AuthStore::verify`], asks
//! [`AuthStore::authorize`] (or the pure [`decide`]) before touching a layer, reports writes with
//! [`AuthStore::record_write`], and maps [`AuthError::kind`] to a status code. The CLI calls the
//! same methods with [`Actor::local`].
//!
//! Credentials live in their own SQLite file (`DIR/auth.sqlite`), never in the GeoPackage store:
//! stores are copied around and opened in QGIS, and password hashes must not travel with them.
//! With a PostgreSQL store they live in that database, in their own schema `shikong_auth`
//! ([`AuthStore::open_postgres`]), shared by every server process on it.
//!
//! Architecture invariants:
//! - no clock reads in logic: "now" comes from the [`Clock`] given to the store;
//! - secrets (tokens, enrolment codes) are shown once and stored only as SHA-256 hashes; passwords
//!   only as Argon2id hashes;
//! - every change and every login attempt writes an audit row in the same transaction as the
//!   change itself; the audit table cannot be updated or deleted from.
#![forbid(unsafe_code)]

pub mod audit;
mod clock;
mod db;
mod error;
pub mod lockout;
pub mod password;
pub mod permission;
mod secret;
pub mod throttle;
mod types;

pub use audit::{ActorRef, AuditAction, AuditEntry, AuditPage, AuditQuery, Outcome, PendingAudit, WriteRecord};
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::copy::{AccountsCopied, AuthDump, Cell, PendingAccounts};
pub use db::harvest::{HarvestSourceRow, HarvestedRecord, MAX_HARVEST_TITLE, NewHarvestSource, UpsertCounts};
pub use db::services::{ApiKeyRow, MAX_KEY_RATE, NewApiKey, NewServiceRow, ServiceRow};
pub use db::{
    APPLICATION_ID, AuthStore, MAX_AUDIT_CLIENT, MAX_AUDIT_DETAIL, MAX_AUDIT_NAME, MAX_AUDIT_REQUEST_ID,
    MAX_AUDIT_TARGET, SCHEMA_VERSION,
};
pub use error::{AuthError, ErrorKind, Result};
pub use lockout::LockoutPolicy;
pub use password::PasswordCost;
pub use permission::{Action, Decision, Denial, Effective, Grants, LayerAccess, Rule, Subject, decide};
pub use throttle::{RatePolicy, ThrottlePolicy};
pub use types::*;
