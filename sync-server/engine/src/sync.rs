//! The server side of offline sync, without HTTP (see `docs/sync-protocol.md`).
//!
//! - [`entity_doc`]: an entity's CRDT document as the server knows it — the stored explicit one,
//!   extended with deterministic server changes for store versions written since (import, API), or
//!   derived from the store's immutable history (base of version 1 + server changes).
//! - [`push`]: merges a device's changes entity by entity into the store: permissions, schema
//!   validation, one store version per entity, the whole batch in one transaction with a savepoint
//!   per entity (a refused entity is reported and rolled back alone). The CRDT merges run before
//!   that transaction, which serializes writers, and are reused inside it only where the entity
//!   is still as they read it (module `merge`). Entries naming the same
//!   entity are merged as one (the batch's entities are read before any is written — live rows
//!   through the transaction in one `get_many` per layer, documents and history through reader
//!   connections, which do not see the open transaction — so a second pass over an entity would
//!   merge against its state before the batch and undo the first). A change the server does not hold yet must
//!   be the caller's own edit: its message names the caller as user and, for a token bound to a
//!   device, that device; anything else is refused (`forbidden`), never rewritten (a change's
//!   message is part of its hash, which later changes depend on).
//! - [`pull`]: pages of entities changed since a cursor, in the replica's layers and area, that
//!   the caller may still read (the others are named in `revoked`).
//! - [`cut_replica`]: writes a replica GeoPackage for a device.
//!
//! Pull cursors and push answers carry a server mark ([`crate::timeline`]); a device whose mark
//! the store no longer holds (the server was restored from an older backup) is told so and pulls
//! from the start again.

use std::collections::BTreeMap;
use std::path::Path;

pub use crate::cursor::SyncCursor;
use geo::Intersects;
use serde_json::Value as Json;
use shikong_auth::{Action, LayerAccess, Principal};
use shikong_crdt::{ConflictKind as CKind, ConflictValueKind, EntityDoc, EntityState, ServerMeta};
use shikong_model::{EntityId, Feature, Geometry, geojson, time};
use shikong_protocol as wire;
use shikong_store::{
    FeatureKey, FeatureStore, Layer, NewFeature, Query, ReplicaRecord, Store, StoreError, StoreTx, StoredFeature, TxId,
    TxMeta,
};

/// Why a sync request failed as a whole (per-entity refusals are in the response instead).
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error("{message}")]
    Refused { code: wire::SyncErrorCode, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] shikong_auth::AuthError),
    #[error("document: {0}")]
    Crdt(#[from] shikong_crdt::Error),
}

fn refused(code: wire::SyncErrorCode, message: impl Into<String>) -> SyncFailure {
    SyncFailure::Refused { code, message: message.into() }
}

pub(crate) type Result<T, E = SyncFailure> = std::result::Result<T, E>;

fn meta_of(v: &shikong_store::VersionRecord) -> ServerMeta {
    ServerMeta { version: v.version, tx: v.tx.tx.0, author: v.tx.author.clone(), time: v.tx.time }
}

/// The entity's document and the store version it covers (`None`: the store never had it).
/// `explicit` is false when the document is the deterministic base of an unchanged version 1,
/// which devices derive themselves (so it is not sent).
pub fn entity_doc(store: &dyn Store, layer: &Layer, id: EntityId) -> Result<Option<(EntityDoc, i64, bool)>> {
    let current = store.get(layer.name(), &FeatureKey::Id(id), None)?;
    entity_doc_with(store, layer, id, current.as_ref(), None)
}

/// [`entity_doc`] when the caller already holds the live version (`current`) and possibly knows
/// whether a stored document exists (`has_stored`: `Some(false)` skips the lookup). The common
/// cases need no history: an entity still at version 1 without a stored document is its base, and
/// a stored document covering the live version is complete.
pub fn entity_doc_with(
    store: &dyn Store,
    layer: &Layer,
    id: EntityId,
    current: Option<&StoredFeature>,
    has_stored: Option<bool>,
) -> Result<Option<(EntityDoc, i64, bool)>> {
    let stored = if has_stored == Some(false) { None } else { store.sync_doc(layer.name(), id)? };
    entity_doc_from(store, layer, id, current, stored)
}

/// [`entity_doc_with`] when the caller also read the stored document (`stored`).
pub(crate) fn entity_doc_from(
    store: &dyn Store,
    layer: &Layer,
    id: EntityId,
    current: Option<&StoredFeature>,
    stored: Option<(i64, Vec<u8>)>,
) -> Result<Option<(EntityDoc, i64, bool)>> {
    let schema = layer.schema();
    match (&stored, current) {
        (None, Some(c)) if c.version == 1 => return Ok(Some((EntityDoc::base(schema, &c.feature)?, 1, false))),
        (Some((v, bytes)), Some(c)) if *v == c.version => return Ok(Some((EntityDoc::load(bytes)?, *v, true))),
        _ => {}
    }
    let history = match store.history(layer.name(), &FeatureKey::Id(id)) {
        Ok(h) => h,
        Err(StoreError::NotFound { .. }) => {
            // Created by a device and not yet accepted: only a stored document can exist.
            return Ok(match stored {
                Some((v, bytes)) => Some((EntityDoc::load(&bytes)?, v, true)),
                None => None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let Some(last) = history.last() else { return Ok(None) };
    let (mut doc, mut covered, explicit) = match stored {
        Some((v, bytes)) => (EntityDoc::load(&bytes)?, v, true),
        None => {
            let Some(first) = history.first().and_then(|v| v.state.as_ref()) else {
                return Err(StoreError::Corrupt(format!("entity {id} has no first state")).into());
            };
            (EntityDoc::base(schema, first)?, history[0].version, history.len() > 1)
        }
    };
    // Versions written since the document (import, API, CLI): deterministic server changes.
    let mut previous: Option<Feature> = None;
    for v in &history {
        if v.version <= covered {
            if v.state.is_some() {
                previous.clone_from(&v.state);
            }
            continue;
        }
        let target = match &v.state {
            Some(f) => EntityState { feature: f.clone(), deleted: false },
            None => match &previous {
                Some(p) => EntityState { feature: p.clone(), deleted: true },
                None => continue,
            },
        };
        doc.server_change(schema, &target, &meta_of(v))?;
        if v.state.is_some() {
            previous.clone_from(&v.state);
        }
        covered = v.version;
    }
    Ok(Some((doc, last.version, explicit || covered > history[0].version)))
}

pub(crate) fn layer_access(l: &Layer) -> LayerAccess<'_> {
    LayerAccess { name: l.name(), public: l.def.public, citizen_reports: l.def.citizen_reports }
}

fn conflict_value(side: &shikong_crdt::ConflictSide) -> wire::ConflictValue {
    wire::ConflictValue {
        value: match &side.value {
            ConflictValueKind::Value(v) => v.to_json(),
            ConflictValueKind::Geometry(g) => g.as_ref().map_or(Json::Null, geojson::to_json),
            ConflictValueKind::Deleted(b) => Json::Bool(*b),
            ConflictValueKind::Absent => Json::Null,
        },
        user: side.user.clone(),
        device: side.device.clone(),
        time: side.time.map(time::beijing),
    }
}

/// The open conflicts of a document, in wire form.
pub fn wire_conflicts(layer: &Layer, id: EntityId, code: &str, doc: &EntityDoc) -> Result<Vec<wire::Conflict>> {
    Ok(doc
        .conflicts(layer.schema())?
        .iter()
        .map(|c| wire::Conflict {
            layer: layer.name().to_owned(),
            entity: id.0,
            code: code.to_owned(),
            kind: match c.kind {
                CKind::Field => wire::ConflictKind::Field,
                CKind::DeletedWhileEdited => wire::ConflictKind::DeletedWhileEdited,
            },
            field: c.attribute.clone(),
            winner: conflict_value(&c.winner),
            others: c.others.iter().map(conflict_value).collect(),
        })
        .collect())
}

pub(crate) fn rejected(
    layer: &str,
    id: EntityId,
    code: wire::SyncErrorCode,
    reason: impl Into<String>,
) -> wire::EntityResult {
    wire::EntityResult {
        layer: layer.to_owned(),
        entity: id.0,
        outcome: wire::Outcome::Rejected { code, reason: reason.into() },
        doc: None,
    }
}

pub(crate) fn store_refusal(e: &StoreError) -> wire::SyncErrorCode {
    match e {
        StoreError::Invalid { .. }
        | StoreError::Geometry { .. }
        | StoreError::DuplicateCode { .. }
        | StoreError::DuplicateId { .. } => wire::SyncErrorCode::Invalid,
        StoreError::NoSuchLayer(_) => wire::SyncErrorCode::UnknownLayer,
        _ => wire::SyncErrorCode::Internal,
    }
}

/// A layer's live rows and stored documents among a push batch's entities.
type ReadAhead =
    (std::collections::HashMap<EntityId, StoredFeature>, std::collections::HashMap<EntityId, (i64, Vec<u8>)>);

/// Merges a push batch. `device` names the device for the store's records.
pub fn push(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    req: &wire::PushRequest,
    has_blob: &dyn Fn(&str) -> bool,
) -> Result<wire::PushResponse> {
    push_then(store, auth, who, req, has_blob, &mut |_, _| Ok(()))
}

/// What [`push_then`] runs inside the batch's transaction, after every entity was merged and
/// before the commit, with the entities' results (the server writes the batch's audit record
/// there, so that it commits with the batch: see `shikong_store::Outbox`).
pub type BeforeCommit<'a> = dyn FnMut(&mut dyn StoreTx, &[wire::EntityResult]) -> Result<()> + 'a;

/// [`push`], calling `before_commit` in the batch's transaction just before it commits.
pub fn push_then(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    req: &wire::PushRequest,
    has_blob: &dyn Fn(&str) -> bool,
    before_commit: &mut BeforeCommit<'_>,
) -> Result<wire::PushResponse> {
    if req.protocol != wire::PROTOCOL_VERSION {
        return Err(refused(
            wire::SyncErrorCode::UnsupportedProtocol,
            format!("protocol {} (this server speaks {})", req.protocol, wire::PROTOCOL_VERSION),
        ));
    }
    // A device that knows marks says which one it holds; checked before anything is written.
    let diverged = match &req.seen {
        Some(seen) => !crate::timeline::holds(store, &crate::timeline::parse_seen(seen)?)?,
        None => false,
    };
    if req.entities.len() > wire::MAX_PUSH_ENTITIES {
        return Err(refused(
            wire::SyncErrorCode::TooLarge,
            format!("{} entities in one batch; at most {}", req.entities.len(), wire::MAX_PUSH_ENTITIES),
        ));
    }
    let groups = crate::merge::group_entries(req);
    // The CRDT work, before the transaction that serializes writers (see `crate::merge`).
    let pre = crate::merge::pre_pass(store, who, &groups);
    let device = who.device.map(|d| d.to_string());
    let tx = store.begin(TxMeta {
        author: who.username.clone(),
        device: device.clone(),
        device_time: None,
        // A label for people (`sync push <replica> <batch>`); pull recognises the replica's own
        // pushes by the typed `replica`.
        source: Some(format!("{} {}", push_source(req.replica), req.batch)),
        replica: Some(req.replica),
    })?;
    let (results, conflicts) = merge_in(store, auth, who, tx, groups, pre, has_blob, before_commit)?;
    // Read after the commit: the mark covers this push.
    let mark = match &req.seen {
        Some(_) => crate::timeline::current(store)?.map(|m| m.to_string()),
        None => None,
    };
    Ok(wire::PushResponse { protocol: wire::PROTOCOL_VERSION, results, conflicts, mark, diverged })
}

/// The part of [`push_then`] inside its transaction `tx`: each entity's merge (the pre-pass's
/// when its basis still holds), permission, attachments and write, then `before_commit` and the
/// commit. Returns the results and open conflicts.
#[allow(clippy::too_many_arguments)]
fn merge_in<'r>(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    mut tx: Box<dyn StoreTx + '_>,
    groups: Vec<(&'r str, EntityId, Vec<Vec<u8>>)>,
    mut pre: crate::merge::PrePass<'r>,
    has_blob: &dyn Fn(&str) -> bool,
    before_commit: &mut BeforeCommit<'_>,
) -> Result<(Vec<wire::EntityResult>, Vec<wire::Conflict>)> {
    let now = tx.id().1;
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    // Each layer's live rows and documents are read in one go when the layer comes up (the
    // transaction keeps the rows for its writes): a PostgreSQL store then spends no round trip
    // per entity on them. Documents are read through reader connections, which do not see the
    // open transaction: every entity is read before any is written.
    let mut layer_ids: std::collections::HashMap<&str, Vec<EntityId>> = std::collections::HashMap::new();
    for (l, id, _) in &groups {
        layer_ids.entry(l).or_default().push(*id);
    }
    let mut read_ahead: std::collections::HashMap<&str, ReadAhead> = std::collections::HashMap::new();
    let mut results = Vec::with_capacity(groups.len());
    let mut decisions: std::collections::HashMap<(String, Action), shikong_auth::Decision> =
        std::collections::HashMap::new();
    let mut conflicts = Vec::new();
    for (layer_name, id, changes) in groups {
        if !layers.contains_key(layer_name) {
            match store.layer(layer_name) {
                Ok(l) => {
                    let ids = layer_ids.get(layer_name).map_or(&[][..], Vec::as_slice);
                    read_ahead.insert(layer_name, (tx.get_many(layer_name, ids)?, store.sync_docs(layer_name, ids)?));
                    layers.insert(layer_name.to_owned(), l);
                }
                Err(StoreError::NoSuchLayer(_)) => {
                    results.push(rejected(
                        layer_name,
                        id,
                        wire::SyncErrorCode::UnknownLayer,
                        format!("no layer `{layer_name}`"),
                    ));
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
        }
        let Some(layer) = layers.get(layer_name) else { continue };
        let (current, stored) = match read_ahead.get_mut(layer_name) {
            Some((rows, docs)) => (rows.remove(&id), docs.remove(&id)),
            None => (None, None),
        };
        let prepared = match pre.remove(&(layer_name, id)) {
            Some((basis, p)) if basis.holds(layer, current.as_ref(), stored.as_ref()) => p,
            _ => crate::merge::prepare(store, layer, id, current.as_ref(), stored, who, &changes)?,
        };
        let action = if prepared.base_version.is_some() { Action::Edit } else { Action::Create };
        // One decision per layer and action per batch (the rules cannot change mid-batch).
        let decision = match decisions.get(&(layer.name().to_owned(), action)) {
            Some(d) => d.clone(),
            None => {
                let d = auth.authorize(Some(who), &layer_access(layer), action)?;
                decisions.insert((layer.name().to_owned(), action), d.clone());
                d
            }
        };
        if let shikong_auth::Decision::Deny(d) = decision {
            results.push(rejected(layer.name(), id, wire::SyncErrorCode::Forbidden, d.reason));
            continue;
        }
        let merged = match prepared.verdict {
            crate::merge::Verdict::Merged(m) => m,
            crate::merge::Verdict::Refused(code, reason) => {
                results.push(rejected(layer.name(), id, code, reason));
                continue;
            }
            crate::merge::Verdict::Failed(e) => return Err(e),
        };
        if let Some(r) = crate::merge::attachment_refusal(layer.name(), id, &merged.state, has_blob) {
            results.push(r);
            continue;
        }
        let (result, open) =
            crate::merge::write(tx.as_mut(), layer, id, current.as_ref(), prepared.base_version, *merged, now)?;
        conflicts.extend(open);
        results.push(result);
    }
    before_commit(tx.as_mut(), &results)?;
    tx.commit()?;
    Ok((results, conflicts))
}

pub(crate) fn new_feature(f: &Feature, device_time: Option<jiff::Timestamp>) -> NewFeature {
    NewFeature {
        id: Some(f.id),
        code: Some(f.code.clone()),
        geometry: f.geometry.clone(),
        valid: f.valid,
        properties: f.properties.clone(),
        device_time,
    }
}

/// The replica's area as a geometry (CGCS2000), if it has one.
pub fn area_geometry(store: &dyn FeatureStore, area: Option<&str>) -> Result<Option<Geometry>> {
    let Some(a) = area else { return Ok(None) };
    if let Some(code) = a.strip_prefix("admin:") {
        let f = store
            .get("division", &FeatureKey::Code(code.to_owned()), None)
            .map_err(|e| refused(wire::SyncErrorCode::Invalid, format!("area `{a}`: {e}")))?
            .ok_or_else(|| refused(wire::SyncErrorCode::Invalid, format!("area `{a}`: no division {code}")))?;
        return match f.feature.geometry {
            Some(g @ (Geometry::Polygon(_) | Geometry::MultiPolygon(_))) => Ok(Some(g)),
            _ => Err(refused(
                wire::SyncErrorCode::Invalid,
                format!(
                    "area `{a}`: division {code} has no boundary polygon (import boundaries into the `division` layer, or give a WKT polygon)"
                ),
            )),
        };
    }
    let g = shikong_model::wkt::parse(a).map_err(|e| refused(wire::SyncErrorCode::Invalid, format!("area: {e}")))?;
    g.validate().map_err(|e| refused(wire::SyncErrorCode::Invalid, format!("area: {e}")))?;
    match g {
        Geometry::Polygon(_) | Geometry::MultiPolygon(_) => Ok(Some(g)),
        other => Err(refused(wire::SyncErrorCode::Invalid, format!("area must be a polygon, not a {}", other.kind()))),
    }
}

fn inside(area: Option<&geo::Geometry<f64>>, g: Option<&Geometry>) -> bool {
    match (area, g) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(g)) => a.intersects(&g.to_geo()),
    }
}

/// The transaction label prefix of pushes from one replica.
fn push_source(replica: uuid::Uuid) -> String {
    format!("sync push {replica}")
}

/// Whether transaction `tx` was a push by `replica`. An entity whose newest version and document
/// come from its own replica's push needs no pull: the push answer carried that exact version and
/// merged document, and the device adopted both before pulling.
fn own_push(store: &dyn FeatureStore, replica: uuid::Uuid, tx: TxId, memo: &mut BTreeMap<i64, bool>) -> Result<bool> {
    if let Some(b) = memo.get(&tx.0) {
        return Ok(*b);
    }
    let own =
        store.transactions(Some(TxId(tx.0 - 1)), 1)?.first().is_some_and(|r| r.tx == tx && r.replica == Some(replica));
    memo.insert(tx.0, own);
    Ok(own)
}

/// One page of changes for a replica. A pull is complete when a page says `more: false`; the
/// replica then reflects every transaction committed before the pull's last page was read.
///
/// The caller's read right is checked per layer on every page: a layer `who` may no longer read
/// sends nothing (no entities, no definition) and keeps its cursor position; the page names it in
/// `revoked` with the reason, so the device can say why that layer stopped updating.
pub fn pull(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    replica: &ReplicaRecord,
    cursor: &SyncCursor,
    limit: usize,
) -> Result<wire::PullPage> {
    pull_seen(store, auth, who, replica, cursor, None, limit)
}

/// [`pull`] for a device that sends its newest server mark (`seen`, the `seen` parameter; older
/// devices send none, and the cursor's mark is checked instead). When the store no longer holds
/// the mark — it was restored from an older backup — the pull starts over from the beginning
/// ([`wire::RESTART_CURSOR`]); a device that sent `seen` is told (`diverged`) so it sends its own
/// changes again.
pub fn pull_seen(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    replica: &ReplicaRecord,
    cursor: &SyncCursor,
    seen: Option<&str>,
    limit: usize,
) -> Result<wire::PullPage> {
    let seen = seen.map(crate::timeline::parse_seen).transpose()?;
    let diverged = match (&seen, &cursor.mark) {
        (Some(m), _) | (None, Some(m)) => !crate::timeline::holds(store, m)?,
        (None, None) => false,
    };
    let restarted;
    let cursor = if diverged {
        restarted = SyncCursor { restart: true, ..SyncCursor::default() };
        &restarted
    } else {
        cursor
    };
    let limit = limit.clamp(1, wire::MAX_PULL_ENTITIES);
    let area = area_geometry(store, replica.area.as_deref())?.map(|g| g.to_geo());
    let mut next = cursor.clone();
    let mut page_layers = Vec::new();
    let mut entities = Vec::new();
    let mut more = false;
    let mut own_txs = BTreeMap::new();
    let mut readable = Vec::with_capacity(replica.layers.len());
    let mut revoked = Vec::new();
    for name in &replica.layers {
        let layer = store.layer(name)?;
        match auth.authorize(Some(who), &layer_access(&layer), Action::Read)? {
            shikong_auth::Decision::Allow => readable.push(name),
            shikong_auth::Decision::Deny(d) => revoked.push(wire::RevokedLayer {
                layer: name.clone(),
                code: wire::SyncErrorCode::Forbidden,
                reason: d.reason,
            }),
        }
    }
    for name in readable {
        let pos = cursor.of(name);
        let room = limit.saturating_sub(entities.len());
        if room == 0 {
            more = true;
            break;
        }
        // One snapshot per layer page (see `FeatureStore::changes_since`): when the page reaches
        // the end, its `next` moves past the snapshot's newest transaction, so the cursor itself
        // says which transaction the replica is complete through (what verification compares).
        // The documents are read after that snapshot (a PostgreSQL store reads each call in its
        // own): when one already belongs to a newer version the page is read again, in a newer
        // snapshot, so a row never travels with another version's document (a few attempts,
        // then the newest document goes, as it always did).
        let mut attempt = 0;
        let (page, layer, page_entities) = loop {
            let page = store.changes_since(name, pos, room)?;
            // Read after the changes' snapshot: a schema change that snapshot saw is sent with
            // it and cannot be passed over by the advanced cursor.
            let layer = store.layer(name)?;
            let mut list = Vec::with_capacity(page.changes.len());
            let mut stale = false;
            for c in &page.changes {
                if !cursor.restart && own_push(store, replica.id, c.tx, &mut own_txs)? {
                    continue;
                }
                match pulled(store, &layer, c.id, c.version, c.tx, c.state.as_ref(), area.as_ref(), attempt < 4)? {
                    Some(e) => list.push(e),
                    None => {
                        stale = true;
                        break;
                    }
                }
            }
            if !stale {
                break (page, layer, list);
            }
            attempt += 1;
        };
        if layer.schema_tx.0 > pos.tx && layer.schema_tx.0 > cursor.base {
            page_layers.push(wire::LayerUpdate {
                layer: name.clone(),
                tx: layer.schema_tx.0,
                definition: crate::layers::layer_doc(&layer),
            });
        }
        entities.extend(page_entities);
        next.layers.insert(name.clone(), page.next);
        if page.more {
            more = true;
            break;
        }
    }
    // The newest transaction the positions stand on, never behind the device's own `seen` (which
    // may cover a push newer than this page): a mark the store keeps is a state it keeps.
    let reach = next.layers.values().map(|c| c.tx).chain([next.base]).max().unwrap_or(0);
    next.mark = crate::timeline::at(store, reach)?;
    if let Some(s) = seen.filter(|_| !diverged)
        && next.mark.is_none_or(|m| m.tx < s.tx)
    {
        next.mark = Some(s);
    }
    next.restart = cursor.restart && more;
    Ok(wire::PullPage {
        protocol: wire::PROTOCOL_VERSION,
        cursor: next.to_string(),
        more,
        layers: page_layers,
        entities,
        revoked,
        diverged: diverged && seen.is_some(),
    })
}

/// One entity of a pull page or repair answer: `state` at `version` (None: deleted) with the
/// document that goes with it. With `consistent`, `None` when the entity changed after `state`
/// was read: the document (read in another snapshot, as a PostgreSQL store reads each call)
/// belongs to a newer version, and a row with another version's document shows one thing and
/// edits another.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pulled(
    store: &dyn Store,
    layer: &Layer,
    id: EntityId,
    version: i64,
    tx: TxId,
    state: Option<&StoredFeature>,
    area: Option<&geo::Geometry<f64>>,
    consistent: bool,
) -> Result<Option<wire::PulledEntity>> {
    let base = wire::PulledEntity {
        layer: layer.name().to_owned(),
        entity: id.0,
        version,
        tx: tx.0,
        state: None,
        doc: None,
        left_area: false,
    };
    let Some(s) = state else {
        // Deleted: devices with pending edits merge the document (delete wins, edits flagged).
        let doc = match entity_doc(store, layer, id)? {
            Some((_, v, _)) if consistent && v > version => return Ok(None),
            Some((mut d, _, _)) => Some(wire::Bytes(d.save())),
            None => None,
        };
        return Ok(Some(wire::PulledEntity { doc, ..base }));
    };
    if !inside(area, s.feature.geometry.as_ref()) {
        return Ok(Some(wire::PulledEntity { left_area: true, ..base }));
    }
    let doc = match entity_doc_with(store, layer, id, Some(s), None)? {
        Some((_, v, _)) if consistent && v > version => return Ok(None),
        Some((mut d, _, true)) => Some(wire::Bytes(d.save())),
        _ => None,
    };
    Ok(Some(wire::PulledEntity { state: Some(wire::convert::to_wire(layer.schema(), &s.feature)), doc, ..base }))
}

/// Writes a replica GeoPackage of `req.layers` (within `req.area`) to `out` as the store was at
/// its newest transaction, registers it, and returns the record.
pub fn cut_replica(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    server_url: &str,
    req: &wire::ReplicaRequest,
    out: &Path,
) -> Result<ReplicaRecord> {
    if req.protocol != wire::PROTOCOL_VERSION {
        return Err(refused(wire::SyncErrorCode::UnsupportedProtocol, format!("protocol {}", req.protocol)));
    }
    if req.layers.is_empty() {
        return Err(refused(wire::SyncErrorCode::Invalid, "a replica needs at least one layer"));
    }
    let mut layers = Vec::new();
    for name in &req.layers {
        let l = store.layer(name).map_err(|e| match e {
            StoreError::NoSuchLayer(n) => refused(wire::SyncErrorCode::UnknownLayer, format!("no layer `{n}`")),
            other => other.into(),
        })?;
        auth.authorize(Some(who), &layer_access(&l), Action::Read)?.into_result()?;
        layers.push(l);
    }
    let area_geom = area_geometry(store, req.area.as_deref())?;
    let latest = store.latest_tx()?;
    let at = store.transactions(Some(TxId(latest.0 - 1)), 1)?.first().map(|t| t.time);
    let record = ReplicaRecord {
        id: uuid::Uuid::now_v7(),
        name: req.name.clone(),
        author: who.username.clone(),
        device: who.device.map(|d| d.to_string()),
        layers: req.layers.clone(),
        area: area_geom.as_ref().map(shikong_model::wkt::to_wkt),
        created_tx: latest,
    };
    let info = shikong_replica::ReplicaInfo {
        id: record.id,
        name: record.name.clone(),
        server_url: server_url.to_owned(),
        user: who.username.clone(),
        device: record.device.clone(),
        area: record.area.clone(),
        created_at: jiff::Timestamp::now(),
    };
    let rlayers: Vec<shikong_replica::ReplicaLayer> = layers.iter().map(replica_layer).collect();
    let mut w = shikong_replica::ReplicaWriter::create(out, &info, &rlayers)
        .map_err(|e| refused(wire::SyncErrorCode::Internal, e.to_string()))?;
    let env = area_geom.as_ref().and_then(Geometry::bbox);
    let area = area_geom.as_ref();
    for l in &layers {
        let q = Query { bbox: env, intersects: area, as_of: at, ..Query::layer(l.name()) };
        let mut failure = None;
        let mut rows = Vec::new();
        store.query(&q, &mut |f| {
            rows.push(f);
            true
        })?;
        let with_docs = store.sync_doc_ids(l.name())?;
        for (i, f) in rows.into_iter().enumerate() {
            // Writing the file does not touch the store's connections: stop here when the
            // request that asked for the replica has gone.
            if i % 256 == 0 {
                shikong_store::cancel::check()?;
            }
            if f.version == 1 && !with_docs.contains(&f.feature.id) {
                w.add_feature(l.name(), &f.feature, f.version, None)
                    .map_err(|e| refused(wire::SyncErrorCode::Internal, e.to_string()))?;
                continue;
            }
            let doc = match entity_doc_with(store, l, f.feature.id, Some(&f), Some(with_docs.contains(&f.feature.id)))?
            {
                Some((mut d, _, true)) => Some(d.save()),
                _ => None,
            };
            if let Err(e) = w.add_feature(l.name(), &f.feature, f.version, doc.as_deref()) {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            return Err(refused(wire::SyncErrorCode::Internal, e.to_string()));
        }
    }
    let mark = crate::timeline::at(store, latest.0)?;
    let cursor = SyncCursor { base: latest.0, mark, ..SyncCursor::default() };
    w.finish(&cursor.to_string()).map_err(|e| refused(wire::SyncErrorCode::Internal, e.to_string()))?;
    let mut tx = store.begin(TxMeta::by(who.username.clone()).source(format!("replica {}", record.id)))?;
    tx.put_replica(&record)?;
    tx.commit()?;
    Ok(record)
}

/// A store layer as a replica file declares it.
pub(crate) fn replica_layer(l: &Layer) -> shikong_replica::ReplicaLayer {
    shikong_replica::ReplicaLayer {
        name: l.name().to_owned(),
        title: l.def.title.clone(),
        description: l.def.description.clone(),
        geometry_kind: l.def.geometry_kind,
        has_z: l.def.has_z,
        schema: l.def.schema.clone(),
        public: l.def.public,
        citizen_reports: l.def.citizen_reports,
    }
}
