//! Conflict review on the server (issue 16): the office lists the open conflicts of every
//! device's edits and settles them, without HTTP.
//!
//! - [`index`]: records an entity's open conflicts in the store's conflict index
//!   (`shikong_store::SyncBookkeepingTx::put_conflicts`), in the transaction of the merge or
//!   resolution that changed them. Push calls it for every merged entity, so the list reads the
//!   index and the few documents it names, never every document of the store.
//! - [`list`]: a page of open conflicts (layer, author, opened-since filters; `(layer, entity)`
//!   cursor). The conflicts come from each listed entity's document as it is now (with versions
//!   written outside sync applied), so a conflict such a write settled is not shown. Identical
//!   concurrent values are not conflicts (`shikong_crdt::EntityDoc::conflicts`).
//! - [`resolve`]: the office's choices as `Edit::Resolve` changes — the same operation a device
//!   writes when it resolves — one change per entity by the resolving user, under an actor derived
//!   from the request's `action_id` (so a retry is recognised in the documents themselves), written
//!   as new store versions in one transaction. Devices receive the change at their next pull and
//!   their conflict ends as everywhere else. Any bad resolution refuses the whole request, naming
//!   it (`resolutions[2].field`), before anything is committed. A resolution carrying `seen` (the
//!   [`revision`] the list showed) applies only while the field's conflict is still that one, so a
//!   side arriving between listing and resolving cannot shift what `other:N` takes
//!   ([`ResolveError::Changed`]: the server answers 409).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use shikong_auth::{Action, Principal};
use shikong_crdt::{Actor, ConflictSide, ConflictValueKind, Edit, EditMeta, EntityDoc, Resolved};
use shikong_model::{EntityId, Value, geojson, time};
use shikong_protocol as wire;
use shikong_protocol::api::conflicts as api;
use shikong_store::{ConflictEntry, ConflictFilter, FeatureKey, Layer, Patch, Store, StoreError, StoreTx, TxMeta};

use crate::sync::{SyncFailure, entity_doc, layer_access, new_feature, wire_conflicts};

/// At most this many resolutions per request.
pub const MAX_RESOLUTIONS: usize = 1000;

/// Why a resolution request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A resolution that cannot be applied; `path` names it (`resolutions[2].field`).
    #[error("`{path}`: {message}")]
    Invalid { path: String, message: String },
    /// The caller may not edit the layer a resolution names.
    #[error("`{path}`: {message}")]
    Forbidden { path: String, message: String },
    /// The conflict a resolution names by its listed `rev` (`seen`) changed since: a side was
    /// added or changed, or it was settled. The client lists it again.
    #[error("`{path}`: {message}")]
    Changed { path: String, message: String },
    #[error(transparent)]
    Sync(#[from] SyncFailure),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        ResolveError::Sync(e.into())
    }
}

impl From<shikong_crdt::Error> for ResolveError {
    fn from(e: shikong_crdt::Error) -> Self {
        ResolveError::Sync(e.into())
    }
}

impl From<shikong_auth::AuthError> for ResolveError {
    fn from(e: shikong_auth::AuthError) -> Self {
        ResolveError::Sync(e.into())
    }
}

fn invalid(path: String, message: impl Into<String>) -> ResolveError {
    ResolveError::Invalid { path, message: message.into() }
}

/// Records the open conflicts `open` of entity `id` in the conflict index (none: removed).
pub fn index(tx: &mut dyn StoreTx, layer: &str, id: EntityId, open: &[wire::Conflict]) -> Result<(), StoreError> {
    let authors: Vec<String> = open
        .iter()
        .flat_map(|c| std::iter::once(&c.winner).chain(&c.others))
        .flat_map(|s| s.user.iter().chain(s.device.iter()))
        .cloned()
        .collect();
    tx.put_conflicts(layer, id, u32::try_from(open.len()).unwrap_or(u32::MAX), &authors)
}

/// Rebuilds the conflict index from every stored document, in one transaction by `author`;
/// returns how many entities have open conflicts. For stores whose documents were merged before
/// the index existed (schema version 7): it reads every document once, so it is an operator's
/// step (or a start-up step run once), never part of a request.
pub fn reindex(store: &dyn Store, author: &str) -> Result<usize, SyncFailure> {
    let mut tx = store.begin(TxMeta::by(author).source("conflict index rebuild"))?;
    let mut open_entities = 0;
    for layer in store.layers()? {
        let mut ids: Vec<EntityId> = store.sync_doc_ids(layer.name())?.into_iter().collect();
        ids.sort_by_key(|id| id.0);
        for id in ids {
            let Some((doc, _, _)) = entity_doc(store, &layer, id)? else { continue };
            let code = doc.state(layer.schema())?.feature.code;
            let open = wire_conflicts(&layer, id, &code, &doc)?;
            open_entities += usize::from(!open.is_empty());
            index(tx.as_mut(), layer.name(), id, &open)?;
        }
    }
    tx.commit()?;
    Ok(open_entities)
}

/// A conflict's revision as listed (`rev`): the first 16 hex digits of the SHA-256 of its kind,
/// field and sides (value, user, device, time, in the document's order), so any change to a
/// side changes it and the same conflict always lists the same one.
pub fn revision(c: &wire::Conflict) -> String {
    use sha2::Digest as _;
    let sides = serde_json::to_vec(&(&c.kind, &c.field, &c.winner, &c.others)).unwrap_or_default();
    let digest = sha2::Sha256::digest(&sides);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn involves(c: &wire::Conflict, author: &str) -> bool {
    std::iter::once(&c.winner)
        .chain(&c.others)
        .any(|s| s.user.as_deref() == Some(author) || s.device.as_deref() == Some(author))
}

/// The open conflicts of one indexed entity, as the list shows them (none when the document
/// no longer has any, or the caller may not read the layer).
fn entry_conflicts(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    layers: &mut BTreeMap<String, Option<Layer>>,
    e: &ConflictEntry,
    author: Option<&str>,
) -> Result<Vec<api::OpenConflict>, SyncFailure> {
    if !layers.contains_key(&e.layer) {
        let l = match store.layer(&e.layer) {
            Ok(l) => Some(l),
            Err(StoreError::NoSuchLayer(_)) => None,
            Err(err) => return Err(err.into()),
        };
        let readable = match &l {
            Some(l) => auth.authorize(Some(who), &layer_access(l), Action::Read)?.into_result().is_ok(),
            None => false,
        };
        layers.insert(e.layer.clone(), l.filter(|_| readable));
    }
    let Some(Some(layer)) = layers.get(&e.layer) else { return Ok(Vec::new()) };
    let Some((doc, _, _)) = entity_doc(store, layer, e.entity)? else { return Ok(Vec::new()) };
    let code = doc.state(layer.schema())?.feature.code;
    let opened = time::beijing(e.opened);
    let open = wire_conflicts(layer, e.entity, &code, &doc)?;
    Ok(open
        .into_iter()
        .filter(|c| author.is_none_or(|a| involves(c, a)))
        .map(|c| {
            let base = doc.conflict_base(layer.schema(), &c.field).ok().flatten().map(|b| side_json(&b));
            api::OpenConflict { rev: revision(&c), conflict: c, base, opened: opened.clone() }
        })
        .collect())
}

fn side_json(v: &ConflictValueKind) -> Json {
    match v {
        ConflictValueKind::Value(v) => v.to_json(),
        ConflictValueKind::Geometry(g) => g.as_ref().map_or(Json::Null, geojson::to_json),
        ConflictValueKind::Deleted(b) => Json::Bool(*b),
        ConflictValueKind::Absent => Json::Null,
    }
}

/// One page of open conflicts matching `filter` (its `limit` counts conflicts; an entity's
/// conflicts are never split across pages, so a page may hold more when one entity has more).
pub fn list(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    filter: &ConflictFilter,
) -> Result<api::ConflictPage, SyncFailure> {
    let limit = filter.limit.max(1);
    let mut out: Vec<api::OpenConflict> = Vec::new();
    let mut layers = BTreeMap::new();
    let mut after = filter.after.clone();
    loop {
        let batch =
            store.open_conflicts(&ConflictFilter { after: after.clone(), limit: limit + 1, ..filter.clone() })?;
        let exhausted = batch.len() <= limit;
        for (i, e) in batch.iter().enumerate() {
            let found = entry_conflicts(store, auth, who, &mut layers, e, filter.author.as_deref())?;
            if !out.is_empty() && out.len() + found.len() > limit {
                return Ok(api::ConflictPage { conflicts: out, next: after.map(|(l, id)| format!("{l}/{id}")) });
            }
            out.extend(found);
            after = Some((e.layer.clone(), e.entity));
            if out.len() >= limit {
                let more = i + 1 < batch.len() || !exhausted;
                let next = after.filter(|_| more).map(|(l, id)| format!("{l}/{id}"));
                return Ok(api::ConflictPage { conflicts: out, next });
            }
        }
        if exhausted {
            return Ok(api::ConflictPage { conflicts: out, next: None });
        }
    }
}

/// The value a side holds, as a resolution writes it for `attribute`.
fn side_resolved(attribute: &str, side: &ConflictSide) -> Resolved {
    match &side.value {
        ConflictValueKind::Geometry(g) => Resolved::Geometry(g.clone()),
        ConflictValueKind::Deleted(b) => Resolved::Deleted(*b),
        ConflictValueKind::Value(v) => Resolved::Value(v.clone()),
        ConflictValueKind::Absent if attribute == "geometry" => Resolved::Geometry(None),
        ConflictValueKind::Absent => Resolved::Value(Value::Null),
    }
}

/// An office value in JSON for `attribute` of `layer`.
fn json_resolved(layer: &Layer, attribute: &str, j: &Json) -> Result<Resolved, String> {
    match attribute {
        "geometry" if j.is_null() => Ok(Resolved::Geometry(None)),
        "geometry" => geojson::from_json(j).map(|g| Resolved::Geometry(Some(g))).map_err(|e| e.to_string()),
        "deleted" => j.as_bool().map(Resolved::Deleted).ok_or_else(|| "expected true or false".to_owned()),
        "code" => match j {
            Json::String(s) if !s.trim().is_empty() => Ok(Resolved::Value(Value::Text(s.clone()))),
            _ => Err("expected a non-empty text".to_owned()),
        },
        "valid_from" | "valid_to" => match j {
            Json::Null => Ok(Resolved::Value(Value::Null)),
            Json::String(s) => {
                time::parse_instant(s).map(|t| Resolved::Value(Value::DateTime(t))).map_err(|e| e.to_string())
            }
            _ => Err("expected an RFC 3339 instant or null".to_owned()),
        },
        name => {
            let field = layer.schema().field(name).ok_or_else(|| format!("no field `{name}`"))?;
            field.coerce_json(j).map(Resolved::Value).map_err(|e| e.to_string())
        }
    }
}

/// One entity's share of a request: its document with the resolutions applied, and the index of
/// its first resolution (named when writing it fails).
struct Pending {
    layer: Layer,
    id: EntityId,
    doc: EntityDoc,
    first: usize,
    /// The revision of each open conflict (by field) before this request touched the entity:
    /// what a resolution's `seen` is checked against.
    revs: BTreeMap<String, String>,
}

/// What [`resolve`] runs in its transaction before the commit, with the entities written (the
/// server writes the audit record there).
pub type BeforeCommit<'a> = dyn FnMut(&mut dyn StoreTx, &[api::ResolvedEntity]) -> Result<(), SyncFailure> + 'a;

/// Applies the office's resolutions (see the module documentation).
pub fn resolve(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    req: &api::ResolveRequest,
    before_commit: &mut BeforeCommit<'_>,
) -> Result<api::ResolveResponse, ResolveError> {
    if req.resolutions.is_empty() {
        return Err(invalid("resolutions".into(), "at least one resolution is needed"));
    }
    if req.resolutions.len() > MAX_RESOLUTIONS {
        return Err(invalid(
            "resolutions".into(),
            format!("{} resolutions; at most {MAX_RESOLUTIONS} per request", req.resolutions.len()),
        ));
    }
    let actor = Actor(*req.action_id.as_bytes());
    let mut tx = store.begin(TxMeta {
        author: who.username.clone(),
        device: who.device.map(|d| d.to_string()),
        device_time: None,
        source: Some(format!("conflict resolution {}", req.action_id)),
        replica: None,
    })?;
    let now = tx.id().1;
    let meta = EditMeta { user: who.username.clone(), device: who.device.map(|d| d.to_string()), time: now };
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    for (i, r) in req.resolutions.iter().enumerate() {
        let at = |what: &str| format!("resolutions[{i}].{what}");
        if !layers.contains_key(&r.layer) {
            let l = match store.layer(&r.layer) {
                Ok(l) => l,
                Err(StoreError::NoSuchLayer(_)) => return Err(invalid(at("layer"), format!("no layer `{}`", r.layer))),
                Err(e) => return Err(e.into()),
            };
            if let shikong_auth::Decision::Deny(d) = auth.authorize(Some(who), &layer_access(&l), Action::Edit)? {
                return Err(ResolveError::Forbidden { path: at("layer"), message: d.reason });
            }
            layers.insert(r.layer.clone(), l);
        }
        let id = EntityId(r.entity);
        let slot = match pending.iter().position(|p| p.layer.name() == r.layer && p.id == id) {
            Some(s) => s,
            None => {
                let layer = layers[&r.layer].clone();
                let Some((doc, _, _)) = entity_doc(store, &layer, id)? else {
                    return Err(invalid(at("entity"), format!("no entity {} in `{}`", r.entity, r.layer)));
                };
                if !doc.changes_by(actor).is_empty() {
                    // Applied before: answer what it wrote, write nothing.
                    drop(tx);
                    return replayed(store, req);
                }
                let code = doc.state(layer.schema())?.feature.code;
                let revs =
                    wire_conflicts(&layer, id, &code, &doc)?.iter().map(|c| (c.field.clone(), revision(c))).collect();
                pending.push(Pending { layer, id, doc, first: i, revs });
                pending.len() - 1
            }
        };
        let p = &mut pending[slot];
        let schema = p.layer.schema().clone();
        if let Some(seen) = &r.seen {
            let Some(f) = &r.field else {
                return Err(invalid(at("seen"), "`seen` is the `rev` of one field's conflict: give `field` too"));
            };
            if p.revs.get(f) != Some(seen) {
                return Err(ResolveError::Changed {
                    path: at("seen"),
                    message: format!(
                        "the conflict on `{f}` of entity {} changed since it was listed (a side was added or \
                         changed, or it was settled): list it again and decide on what it is now",
                        r.entity
                    ),
                });
            }
        }
        let open = p.doc.conflicts(&schema)?;
        let chosen: Vec<&shikong_crdt::Conflict> = match &r.field {
            Some(f) => match open.iter().find(|c| &c.attribute == f) {
                Some(c) => vec![c],
                None => {
                    let names: Vec<&str> = open.iter().map(|c| c.attribute.as_str()).collect();
                    return Err(invalid(
                        at("field"),
                        format!(
                            "entity {} has no open conflict on `{f}` (open: {})",
                            r.entity,
                            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                        ),
                    ));
                }
            },
            None if open.is_empty() => {
                return Err(invalid(at("entity"), format!("entity {} has no open conflicts", r.entity)));
            }
            None => open.iter().collect(),
        };
        for c in chosen {
            let value = match &r.choose {
                api::Choice::Winner => side_resolved(&c.attribute, &c.winner),
                api::Choice::Other(n) => match c.others.get(*n) {
                    Some(side) => side_resolved(&c.attribute, side),
                    None => {
                        return Err(invalid(
                            at("choose"),
                            format!("`other:{n}`, but `{}` has {} other value(s)", c.attribute, c.others.len()),
                        ));
                    }
                },
                api::Choice::Value(j) => json_resolved(&p.layer, &c.attribute, j)
                    .map_err(|m| invalid(at("choose.value"), format!("`{}`: {m}", c.attribute)))?,
            };
            let edit = Edit::Resolve { attribute: c.attribute.clone(), value };
            p.doc.edit(&schema, actor, &meta, edit).map_err(|e| invalid(at("choose"), e.to_string()))?;
        }
    }
    let mut entities = Vec::with_capacity(pending.len());
    for mut p in pending {
        let path = format!("resolutions[{}]", p.first);
        let version = write_entity(store, tx.as_mut(), &p.layer, p.id, &mut p.doc).map_err(|e| match e {
            ResolveError::Sync(SyncFailure::Store(
                s @ (StoreError::Invalid { .. } | StoreError::Geometry { .. } | StoreError::DuplicateCode { .. }),
            )) => invalid(path.clone(), s.to_string()),
            other => other,
        })?;
        entities.push(api::ResolvedEntity { layer: p.layer.name().to_owned(), entity: p.id.0, version });
    }
    before_commit(tx.as_mut(), &entities)?;
    tx.commit()?;
    Ok(api::ResolveResponse { action_id: req.action_id, entities, replayed: false })
}

/// Writes the resolved document of an entity: its new visible state as a store version, the
/// document, and its remaining conflicts in the index. Returns the entity's version.
fn write_entity(
    store: &dyn Store,
    tx: &mut dyn StoreTx,
    layer: &Layer,
    id: EntityId,
    doc: &mut EntityDoc,
) -> Result<i64, ResolveError> {
    let schema = layer.schema();
    let state = doc.state(schema)?;
    let current = store.get(layer.name(), &FeatureKey::Id(id), None)?;
    let f = &state.feature;
    let version = match (&current, state.deleted) {
        (Some(cur), true) => {
            tx.delete(layer.name(), &FeatureKey::Id(id))?;
            cur.version + 1
        }
        (Some(cur), false) => {
            let set = schema
                .active()
                .map(|fd| (fd.name.clone(), f.properties.get(&fd.name).cloned().unwrap_or(Value::Null)))
                .collect();
            let patch = Patch {
                geometry: Some(f.geometry.clone()),
                code: Some(f.code.clone()),
                valid: Some(f.valid),
                set,
                device_time: None,
            };
            tx.update(layer.name(), &FeatureKey::Id(id), patch)?.unwrap_or(cur.version)
        }
        (None, false) => tx.restore(layer.name(), id, new_feature(f, None))?,
        (None, true) => store.history(layer.name(), &FeatureKey::Id(id))?.last().map_or(0, |v| v.version),
    };
    tx.put_sync_doc(layer.name(), id, version, &doc.save())?;
    let open = wire_conflicts(layer, id, &f.code, doc)?;
    index(tx, layer.name(), id, &open)?;
    Ok(version)
}

/// The answer to a request applied before: the entities' current versions.
fn replayed(store: &dyn Store, req: &api::ResolveRequest) -> Result<api::ResolveResponse, ResolveError> {
    let mut entities: Vec<api::ResolvedEntity> = Vec::new();
    for r in &req.resolutions {
        if entities.iter().any(|e| e.layer == r.layer && e.entity == r.entity) {
            continue;
        }
        let version = match store.sync_doc(&r.layer, EntityId(r.entity))? {
            Some((v, _)) => v,
            None => 0,
        };
        entities.push(api::ResolvedEntity { layer: r.layer.clone(), entity: r.entity, version });
    }
    Ok(api::ResolveResponse { action_id: req.action_id, entities, replayed: true })
}
