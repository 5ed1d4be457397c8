//! Rebuilding a device's document on the server's, after the server went back in time (restored
//! from a backup older than what it had acknowledged; `docs/sync-protocol.md`, "Server marks").
//!
//! The device's document may hold changes the restored server no longer has. Its own it sends
//! again; another device's it cannot (the server accepts only a session's own changes), and when
//! their author no longer holds them either — it deleted the entity and forgot the document —
//! they are gone everywhere else. Merging the server's document into the device's would keep
//! showing them on this one device only: the replicas would never agree again. So the device
//! starts from the server's document and replays its own changes on it:
//! - an own change whose dependencies the server's document holds is applied as it is (same
//!   hash: the server drops it as known, or takes it back);
//! - an own change built on a lost foreign change cannot be applied (automerge needs its
//!   dependencies): it is *parked* — left out of the document, kept by the caller to send again —
//!   because its author may still send the foreign change again (then the server merges both and
//!   the next pull brings them); if no one holds that change any more, neither can come back;
//! - foreign changes the server lacks are left out: their author sends them again if it still
//!   holds them, and the next pull brings them back.

use automerge::ChangeHash;

use crate::doc::EntityDoc;
use crate::error::Result;
use crate::message::{ChangeClaim, change_claim};

/// The outcome of [`EntityDoc::rebased_onto`].
#[derive(Debug)]
pub struct Rebased {
    /// The server's document with the device's own changes on it.
    pub doc: EntityDoc,
    /// Own changes applied as they were.
    pub kept: Vec<ChangeHash>,
    /// Own changes that could not be applied (built on a change the server lacks): to keep and
    /// send again until the server has what they build on.
    pub parked: Vec<ChangeHash>,
    /// Foreign changes this document held that the server's does not.
    pub dropped: Vec<ChangeHash>,
}

impl EntityDoc {
    /// This document's own changes (`own` says which) replayed on `server`, the server's current
    /// document of the same entity (see the module docs).
    pub fn rebased_onto(&self, mut server: EntityDoc, own: impl Fn(&ChangeClaim) -> bool) -> Result<Rebased> {
        let (mut kept, mut parked, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
        // Causal order: a change comes after its dependencies.
        for bytes in self.changes_after(&[]) {
            let claim = change_claim(&bytes)?;
            if server.has_change(&claim.hash) {
                continue;
            }
            if !own(&claim) {
                dropped.push(claim.hash);
            } else if server.missing_dependencies(std::slice::from_ref(&bytes))?.is_empty() {
                server.apply_changes(std::slice::from_ref(&bytes))?;
                kept.push(claim.hash);
            } else {
                parked.push(claim.hash);
            }
        }
        Ok(Rebased { doc: server, kept, parked, dropped })
    }
}

#[cfg(test)]
mod tests {
    use shikong_model::Value;

    use crate::test_support::*;
    use crate::{ChangeClaim, Edit, EntityDoc};

    #[test]
    fn a_lost_foreign_change_is_left_out_and_an_own_change_built_on_it_is_parked() {
        let s = schema();
        let f = feature();
        // The server's document after the restore: the base only.
        let server = EntityDoc::base(&s, &f).unwrap();
        // The device pulled B's rename (lost by the restore), then set the depth itself.
        let mut device = server.clone();
        device.edit(&s, B, &li(), Edit::SetFields(props(&[("名称", "井".into())]))).unwrap();
        device.edit(&s, A, &zhang(), Edit::SetFields(props(&[("深度", Value::Real(8.0))]))).unwrap();
        let own = |c: &ChangeClaim| c.user.as_deref() == Some("张三");
        let r = device.rebased_onto(server, own).unwrap();
        assert_eq!(r.dropped.len(), 1);
        assert!(r.kept.is_empty());
        assert_eq!(r.parked.len(), 1);
        // The device shows what the server has until the server has what the edit builds on.
        assert_eq!(r.doc.state(&s).unwrap().feature, f);
    }

    #[test]
    fn own_changes_on_what_the_server_holds_are_kept_as_they_are() {
        let s = schema();
        let f = feature();
        let server = EntityDoc::base(&s, &f).unwrap();
        let mut device = server.clone();
        let change =
            device.edit(&s, A, &zhang(), Edit::SetFields(props(&[("深度", Value::Real(3.0))]))).unwrap().unwrap();
        let own = |c: &ChangeClaim| c.user.as_deref() == Some("张三");
        let r = device.rebased_onto(server, own).unwrap();
        assert_eq!(r.kept, vec![crate::change_hash(&change).unwrap()]);
        assert!(r.parked.is_empty() && r.dropped.is_empty());
        assert_eq!(r.doc.state(&s).unwrap().feature.properties.get("深度"), Some(&Value::Real(3.0)));
    }
}
