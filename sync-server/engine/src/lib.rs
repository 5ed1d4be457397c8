//! The sync engine: what the server does for offline devices, without HTTP (see
//! `docs/sync-protocol.md`). Push merges device changes into the store, pull pages changes since a
//! cursor, a replica is cut for a device, estimated before it is cut, and verified and repaired at
//! the end of a sync; attachments' ids are checked and their downloads decided (`blobs`); what of the
//! gazetteer a principal may see is decided per answer (`gazetteer_scope`).
//!
//! Architecture invariant: the engine asks an [`Authorizer`] what a principal may do; it never
//! reaches into the account store, so the HTTP layer (or a test) decides where permissions come from.

#![forbid(unsafe_code)]

pub mod blobs;
pub mod conflicts;
pub mod cursor;
pub mod gazetteer_scope;
pub mod layers;
mod merge;
pub mod replica_estimate;
pub mod sync;
pub mod sync_verify;
pub mod timeline;

use shikong_auth::{Action, AuthError, AuthStore, Decision, LayerAccess, Principal};

pub use sync::SyncFailure;

/// What the engine asks before it reads or writes a layer for a principal. The account store
/// implements it; tests and other deployments may answer from elsewhere.
pub trait Authorizer: Send + Sync {
    /// The decision for `who` doing `action` on `layer` (`None`: an anonymous caller).
    fn authorize(
        &self,
        who: Option<&Principal>,
        layer: &LayerAccess<'_>,
        action: Action,
    ) -> Result<Decision, AuthError>;
}

impl Authorizer for AuthStore {
    fn authorize(
        &self,
        who: Option<&Principal>,
        layer: &LayerAccess<'_>,
        action: Action,
    ) -> Result<Decision, AuthError> {
        AuthStore::authorize(self, who, layer, action)
    }
}
