//! Merging one entity's pushed changes into its document, and writing the result.
//!
//! The merge is CPU work (load, apply, state, save, conflicts: most of a push) that needs no lock.
//! A store serializes writers on its write transaction, so [`pre_pass`] merges the batch's
//! entities before [`crate::sync::push_then`] begins it — concurrent pushes then merge on all
//! cores while one of them writes. The pre-pass is optimistic: each result is kept with the
//! [`Basis`] it was computed from (layer definition, live row, stored document), and
//! the transaction uses it only when it reads that same basis; otherwise it merges again there,
//! as if there had been no pre-pass. A result is a pure function of its basis, the changes and
//! the caller, so either way the answer is the same.

use std::collections::HashMap;

use shikong_auth::Principal;
use shikong_crdt::{EntityDoc, EntityState};
use shikong_model::EntityId;
use shikong_protocol as wire;
use shikong_store::{FeatureKey, Layer, Patch, Store, StoreError, StoreTx, StoredFeature};

use crate::sync::{Result, SyncFailure, new_feature, rejected, store_refusal};

/// What a merge was computed from: the layer's definition, the live row and the stored document,
/// compared in full (a document may be rewritten under the same version: a push whose changes
/// leave the state as it was writes no version). A live row is the entity's newest version, and
/// history up to it never changes, so an equal row means equal history too.
#[derive(Debug, Clone)]
pub(crate) struct Basis {
    /// The layer's creation and last definition change.
    layer: (i64, i64),
    row: Option<StoredFeature>,
    doc: Option<(i64, Vec<u8>)>,
}

impl Basis {
    fn of(layer: &Layer, row: Option<&StoredFeature>, doc: Option<&(i64, Vec<u8>)>) -> Basis {
        Basis { layer: (layer.created_tx.0, layer.schema_tx.0), row: row.cloned(), doc: doc.cloned() }
    }

    /// Whether the transaction reads what the merge was computed from.
    pub(crate) fn holds(&self, layer: &Layer, row: Option<&StoredFeature>, doc: Option<&(i64, Vec<u8>)>) -> bool {
        self.layer == (layer.created_tx.0, layer.schema_tx.0) && self.row.as_ref() == row && self.doc.as_ref() == doc
    }
}

/// An entity's merge, before permissions are checked.
pub(crate) struct Prepared {
    /// The store version its document covered (`None`: the store never had it, a creation).
    pub base_version: Option<i64>,
    pub verdict: Verdict,
}

/// How merging the changes went.
pub(crate) enum Verdict {
    /// Answered with this refusal (a foreign change, missing dependencies, an invalid change).
    Refused(wire::SyncErrorCode, String),
    /// A failure of the whole push, raised where it arose before (after the permission check).
    Failed(SyncFailure),
    Merged(Box<Merged>),
}

/// A merged document and what the write and the answer need of it.
pub(crate) struct Merged {
    /// Changes new to the document.
    new: usize,
    /// `(merged, sent)` when some changes wait for dependencies the server lacks.
    partial: Option<(usize, usize)>,
    pub state: EntityState,
    latest_edit: Option<jiff::Timestamp>,
    /// The device's heads are among the changes it sent: it holds the whole merged document.
    device_has_all: bool,
    bytes: Vec<u8>,
    conflicts: Result<Vec<wire::Conflict>>,
}

/// Entries naming the same entity, merged as one, in the order they first appear.
pub(crate) fn group_entries(req: &wire::PushRequest) -> Vec<(&str, EntityId, Vec<Vec<u8>>)> {
    let mut groups: Vec<(&str, EntityId, Vec<Vec<u8>>)> = Vec::new();
    let mut index: HashMap<(&str, uuid::Uuid), usize> = HashMap::new();
    for e in &req.entities {
        let i = *index.entry((e.layer.as_str(), e.entity)).or_insert_with(|| {
            groups.push((e.layer.as_str(), EntityId(e.entity), Vec::new()));
            groups.len() - 1
        });
        groups[i].2.extend(e.changes.iter().map(|c| c.0.clone()));
    }
    groups
}

/// The pre-pass's merges, by layer and entity.
pub(crate) type PrePass<'a> = HashMap<(&'a str, EntityId), (Basis, Prepared)>;

/// Merges the batch's live entities from committed data, outside any transaction. Best effort:
/// whatever fails to read or load is left to the transaction, which merges it again and meets
/// (and reports) the same failure. Entities without a live row are left out too: their document
/// may come from history, which another writer can extend without a live version to compare.
pub(crate) fn pre_pass<'a>(
    store: &dyn Store,
    who: &Principal,
    groups: &[(&'a str, EntityId, Vec<Vec<u8>>)],
) -> PrePass<'a> {
    let mut by_layer: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (l, _, _)) in groups.iter().enumerate() {
        by_layer.entry(l).or_default().push(i);
    }
    let mut out = HashMap::with_capacity(groups.len());
    for (name, members) in by_layer {
        let Ok(layer) = store.layer(name) else { continue };
        let ids: Vec<EntityId> = members.iter().map(|&i| groups[i].1).collect();
        let (Ok(mut rows), Ok(mut docs)) = (store.get_many(name, &ids), store.sync_docs(name, &ids)) else { continue };
        for i in members {
            let (layer_name, id, changes) = &groups[i];
            let Some(current) = rows.remove(id) else { continue };
            let stored = docs.remove(id);
            let basis = Basis::of(&layer, Some(&current), stored.as_ref());
            if let Ok(p) = prepare(store, &layer, *id, Some(&current), stored, who, changes) {
                out.insert((*layer_name, *id), (basis, p));
            }
        }
    }
    out
}

/// Loads the entity's document as the store holds it (`current`, `stored`: see
/// [`crate::sync::entity_doc_with`]) and merges `changes` into it.
pub(crate) fn prepare(
    store: &dyn Store,
    layer: &Layer,
    id: EntityId,
    current: Option<&StoredFeature>,
    stored: Option<(i64, Vec<u8>)>,
    who: &Principal,
    changes: &[Vec<u8>],
) -> Result<Prepared> {
    let known = crate::sync::entity_doc_from(store, layer, id, current, stored)?;
    let (doc, base_version) = match known {
        Some((d, v, _)) => (Some(d), Some(v)),
        None => (None, None),
    };
    Ok(Prepared { base_version, verdict: merge(layer, id, who, doc, changes) })
}

fn merge(layer: &Layer, id: EntityId, who: &Principal, doc: Option<EntityDoc>, changes: &[Vec<u8>]) -> Verdict {
    let mut doc = match doc.map_or_else(|| EntityDoc::load(&[]), Ok) {
        Ok(d) => d,
        Err(e) => return Verdict::Failed(e.into()),
    };
    if let Some((code, reason)) = foreign_change(who, id, &doc, changes) {
        return Verdict::Refused(code, reason);
    }
    // Changes building on ones the server lacks (another device's, lost by a restore from an
    // older backup until that device sends them again): those whose dependencies are here are
    // merged, the entity is answered `missing-dependencies` so the device keeps them all and
    // sends them again (what was merged is then dropped). Two devices whose lost changes build
    // on each other's thus both get through, one step at a time.
    let mut partial = None;
    let new = match doc.apply_changes(changes) {
        Ok(n) => n,
        Err(shikong_crdt::Error::MissingDependencies) => {
            let ready = match ready_changes(&doc, changes) {
                Ok(r) => r,
                Err(e) => return Verdict::Failed(e),
            };
            match doc.apply_changes(&ready) {
                Ok(n) if n > 0 => {
                    partial = Some((n, changes.len()));
                    n
                }
                _ => {
                    return Verdict::Refused(
                        wire::SyncErrorCode::MissingDependencies,
                        "the changes depend on changes the server does not have".into(),
                    );
                }
            }
        }
        Err(err) => return Verdict::Refused(wire::SyncErrorCode::InvalidChange, err.to_string()),
    };
    let state = match doc.state(layer.schema()) {
        Ok(s) if s.feature.id == id => s,
        Ok(_) => {
            return Verdict::Refused(wire::SyncErrorCode::InvalidChange, "the document names another entity".into());
        }
        Err(err) => return Verdict::Refused(wire::SyncErrorCode::InvalidChange, err.to_string()),
    };
    let pushed: Vec<shikong_crdt::ChangeHash> =
        changes.iter().filter_map(|c| shikong_crdt::change_hash(c).ok()).collect();
    let device_has_all = doc.heads().iter().all(|h| pushed.contains(h));
    let latest_edit = doc.latest_edit_time();
    let bytes = doc.save();
    let conflicts = crate::sync::wire_conflicts(layer, id, &state.feature.code, &doc);
    Verdict::Merged(Box::new(Merged { new, partial, state, latest_edit, device_has_all, bytes, conflicts }))
}

/// The refusal of a merged state whose attachments are malformed or not uploaded: attachment
/// values come from the device, so they are checked before they name any file.
pub(crate) fn attachment_refusal(
    layer: &str,
    id: EntityId,
    state: &EntityState,
    has_blob: &dyn Fn(&str) -> bool,
) -> Option<wire::EntityResult> {
    let attachments: Vec<&String> = state
        .feature
        .properties
        .values()
        .filter_map(|v| match v {
            shikong_model::Value::Attachments(list) => Some(list),
            _ => None,
        })
        .flatten()
        .collect();
    if let Some(bad) = attachments.iter().find(|h| !crate::blobs::valid_blob_id(h)) {
        return Some(rejected(
            layer,
            id,
            wire::SyncErrorCode::Invalid,
            format!("attachment `{}` is not a lowercase hex SHA-256", crate::blobs::shown(bad)),
        ));
    }
    let missing = attachments.into_iter().find(|h| !has_blob(h))?;
    Some(rejected(
        layer,
        id,
        wire::SyncErrorCode::AttachmentMissing,
        format!("attachment {missing} has not been uploaded"),
    ))
}

/// Writes a merged entity in its own savepoint: its state as a store version, its document, its
/// entries in the conflict index. Returns its answer and its open conflicts (none when the store
/// refused the state: that entity alone is rolled back).
pub(crate) fn write(
    tx: &mut dyn StoreTx,
    layer: &Layer,
    id: EntityId,
    current: Option<&StoredFeature>,
    base_version: Option<i64>,
    m: Merged,
    now: jiff::Timestamp,
) -> Result<(wire::EntityResult, Vec<wire::Conflict>)> {
    // The device's clock, never later than the transaction (a claim, like the message).
    let device_time = m.latest_edit.map(|t| t.min(now));
    tx.savepoint()?;
    let version = match write_state(tx, layer, id, current, base_version, &m.state, device_time) {
        Ok(v) => v.or(current.map(|c| c.version)).or(base_version).unwrap_or(0),
        Err(err) => {
            tx.rollback_to_savepoint()?;
            return Ok((rejected(layer.name(), id, store_refusal(&err), err.to_string()), Vec::new()));
        }
    };
    tx.put_sync_doc(layer.name(), id, version, &m.bytes)?;
    // The conflict index follows the document, in the same transaction.
    let open = m.conflicts?;
    crate::conflicts::index(tx, layer.name(), id, &open)?;
    tx.release_savepoint()?;
    let outcome = if let Some((merged, sent)) = m.partial {
        wire::Outcome::Rejected {
            code: wire::SyncErrorCode::MissingDependencies,
            reason: format!("{merged} of {sent} changes merged; the others depend on changes the server does not have"),
        }
    } else if m.new == 0 || current.is_some_and(|c| c.version == version) {
        wire::Outcome::Unchanged { version }
    } else {
        wire::Outcome::Accepted { version }
    };
    let result = wire::EntityResult {
        layer: layer.name().to_owned(),
        entity: id.0,
        doc: (!m.device_has_all && m.partial.is_none()).then_some(wire::Bytes(m.bytes)),
        outcome,
    };
    Ok((result, open))
}

/// The store write for a merged state; the version written (`None`: nothing was).
fn write_state(
    tx: &mut dyn StoreTx,
    layer: &Layer,
    id: EntityId,
    current: Option<&StoredFeature>,
    base_version: Option<i64>,
    state: &EntityState,
    device_time: Option<jiff::Timestamp>,
) -> std::result::Result<Option<i64>, StoreError> {
    let f = &state.feature;
    Ok(match (current, state.deleted, base_version) {
        (Some(cur), true, _) => {
            tx.delete(layer.name(), &FeatureKey::Id(id))?;
            Some(cur.version + 1)
        }
        (Some(_), false, _) => {
            let set = layer
                .schema()
                .active()
                .map(|fd| (fd.name.clone(), f.properties.get(&fd.name).cloned().unwrap_or(shikong_model::Value::Null)))
                .collect();
            let patch = Patch {
                geometry: Some(f.geometry.clone()),
                code: Some(f.code.clone()),
                valid: Some(f.valid),
                set,
                device_time,
            };
            tx.update(layer.name(), &FeatureKey::Id(id), patch)?
        }
        (None, false, Some(_)) => Some(tx.restore(layer.name(), id, new_feature(f, device_time))?),
        (None, false, None) => {
            tx.insert(layer.name(), new_feature(f, device_time))?;
            Some(1)
        }
        (None, true, _) => None, // deleted here and there: nothing to write
    })
}

/// Why `changes` may not be merged as `who`'s edits of entity `id`, if they may not. Only changes
/// the document does not hold yet are checked (a resent batch, or changes a device merged from
/// the server, are already the server's); each must be a device edit whose message names the
/// caller, not written under the entity's base or server actor, and naming the caller's device
/// when the token is bound to one — a session without a device may label its edits freely, but
/// not with a device id.
fn foreign_change(
    who: &Principal,
    id: EntityId,
    doc: &EntityDoc,
    changes: &[Vec<u8>],
) -> Option<(wire::SyncErrorCode, String)> {
    let forbidden = |m: String| Some((wire::SyncErrorCode::Forbidden, m));
    for (i, bytes) in changes.iter().enumerate() {
        let n = i + 1;
        let claim = match shikong_crdt::change_claim(bytes) {
            Ok(c) => c,
            Err(e) => return Some((wire::SyncErrorCode::InvalidChange, format!("change {n}: {e}"))),
        };
        if doc.has_change(&claim.hash) {
            continue;
        }
        if claim.actor.is_some_and(|a| a == shikong_crdt::Actor::base(id) || a == shikong_crdt::Actor::server(id)) {
            return Some((
                wire::SyncErrorCode::InvalidChange,
                format!("change {n} is written as the server's, which devices may not"),
            ));
        }
        if !claim.device_edit {
            return forbidden(format!("change {n} is not a device edit (its message names no user)"));
        }
        let user = claim.user.as_deref().unwrap_or("");
        if user != who.username {
            return forbidden(format!(
                "change {n} says user `{}` made it, but this session is `{}`",
                crate::blobs::shown(user),
                who.username
            ));
        }
        let device = claim.device.as_deref();
        match who.device {
            Some(d) if device != Some(d.to_string().as_str()) => {
                return forbidden(format!(
                    "change {n} names device `{}`, but this session's device is {d}",
                    crate::blobs::shown(device.unwrap_or(""))
                ));
            }
            None if device.is_some_and(|d| d.parse::<uuid::Uuid>().is_ok()) => {
                return forbidden(format!(
                    "change {n} names device {}, but this session is not bound to a device",
                    device.unwrap_or("")
                ));
            }
            _ => {}
        }
    }
    None
}

/// The changes of `changes` whose dependencies `doc` holds or that follow from those, in the
/// order they were sent.
fn ready_changes(doc: &EntityDoc, changes: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut ready: Vec<Vec<u8>> = Vec::new();
    let mut rest: Vec<&Vec<u8>> = changes.iter().collect();
    loop {
        let before = ready.len();
        let mut i = 0;
        while i < rest.len() {
            ready.push(rest[i].clone());
            if doc.missing_dependencies(&ready)?.is_empty() {
                rest.remove(i);
            } else {
                ready.pop();
                i += 1;
            }
        }
        if ready.len() == before {
            return Ok(ready);
        }
    }
}
