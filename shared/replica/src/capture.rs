//! Edits made to a replica outside shikong — a user opening the GeoPackage in QGIS and editing a
//! layer. Triggers on every feature table (see `table::create_triggers`) note each inserted,
//! updated or deleted row in `sk_capture` together with the row's state before the first outside
//! edit (kart's working-copy tracking, done the same way). This module turns those notes into
//! ordinary validated document changes, so they sync like edits made in the apps.
//!
//! An outside edit the layer schema refuses cannot be sent; the row is put back as it was and the
//! edit reported, since QGIS cannot check shikong's constraints (code lists, ranges, required).

use rusqlite::types::Value as Sql;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};
use serde_json::{Map, Value as Json};
use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc, EntityState};
use shikong_model::{EntityId, Feature, Properties, ValidTime, Value};

use crate::codec;
use crate::edit::{Ctx, Op, generate_code, label};
use crate::error::{ReplicaError, Result};
use crate::format::ReplicaLayer;
use crate::replica::{Replica, load_doc_bytes};
use crate::table;

/// What [`Replica::import_external_edits`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExternalImport {
    /// Entities whose outside edits became document changes.
    pub recorded: u64,
    /// Outside edits refused by the layer schema and undone in the table.
    pub reverted: Vec<RevertedEdit>,
}

/// An outside edit that was undone.
#[derive(Debug, Clone, PartialEq)]
pub struct RevertedEdit {
    pub layer: String,
    /// The feature's code (or id when it had none).
    pub feature: String,
    pub message: String,
}

/// How many rows outside edits touched since they were last imported.
pub(crate) fn pending(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.prepare_cached("SELECT count(*) FROM sk_capture")?.query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Refuses to go on while outside edits are unrecorded (a pull would overwrite them).
pub(crate) fn guard(conn: &Connection) -> Result<()> {
    match pending(conn)? {
        0 => Ok(()),
        count => Err(ReplicaError::ExternalEditsPending { count }),
    }
}

/// Records every noted outside edit, inside the caller's transaction, and clears the notes.
pub(crate) fn import(
    conn: &Connection,
    layers: &[ReplicaLayer],
    actor: Actor,
    meta: &EditMeta,
) -> Result<ExternalImport> {
    let mut out = ExternalImport::default();
    if pending(conn)? == 0 {
        return Ok(out);
    }
    let notes: Vec<(String, i64, Option<String>)> = conn
        .prepare("SELECT layer, fid, old FROM sk_capture ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // Outside edits are found by row, never by code.
    let codes = table::CodeCache::default();
    for (layer, fid, old) in notes {
        let Some(def) = layers.iter().find(|l| l.name == layer) else { continue };
        let ctx = Ctx { conn, layer: def, actor, meta, codes: &codes };
        match import_one(&ctx, fid, old.as_deref())? {
            Ok(true) => out.recorded += 1,
            Ok(false) => {}
            Err(Refused { feature, message, undo }) => {
                undo.run(&ctx)?;
                out.reverted.push(RevertedEdit { layer: layer.clone(), feature, message });
            }
        }
    }
    conn.execute_batch("DELETE FROM sk_capture;")?;
    Ok(out)
}

/// An outside edit that cannot be recorded, and how to put the row back.
struct Refused {
    feature: String,
    message: String,
    undo: Undo,
}

enum Undo {
    /// A row added outside: remove it.
    RemoveRow(i64),
    /// A row changed outside: write the state before the change back (or remove the row when
    /// that state is a deletion).
    PutBack { fid: i64, state: Box<EntityState>, version: Option<i64> },
}

impl Undo {
    fn run(self, ctx: &Ctx<'_>) -> Result<()> {
        let t = shikong_gpkg::quote_ident(&ctx.layer.name);
        match self {
            Undo::RemoveRow(fid) => {
                ctx.conn.execute(&format!("DELETE FROM {t} WHERE fid = ?1"), [fid])?;
            }
            Undo::PutBack { fid, state, .. } if state.deleted => {
                ctx.conn.execute(&format!("DELETE FROM {t} WHERE fid = ?1"), [fid])?;
            }
            Undo::PutBack { fid, state, version } => {
                // Free the id first in case the outside edit moved it onto another row.
                ctx.conn.execute(
                    &format!("DELETE FROM {t} WHERE {} AND fid != ?2", table::ID_MATCH),
                    params![state.feature.id.to_string(), fid],
                )?;
                table::update(ctx.conn, ctx.layer, fid, &state.feature, version)?;
            }
        }
        Ok(())
    }
}

/// Recorded (whether anything changed), or refused.
type Outcome = std::result::Result<bool, Refused>;

fn import_one(ctx: &Ctx<'_>, fid: i64, old: Option<&str>) -> Result<Outcome> {
    let layer = ctx.layer;
    let current = table::by_fid(ctx.conn, layer, fid);
    let Some(old) = old else {
        // Inserted outside (and perhaps edited since): a new entity, unless it is gone again.
        let row = match current {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(Ok(false)),
            Err(e) => return Ok(Err(remove_row(fid, fid.to_string(), e.to_string()))),
        };
        return create(ctx, row.fid, row.feature);
    };
    let (old_feature, old_version) = decode_old(layer, old)?;
    let id = old_feature.id;
    let stored = load_doc_bytes(ctx.conn, &layer.name, id)?;
    let version = stored.as_ref().map_or(old_version, |s| s.1.or(old_version));
    let mut doc = match &stored {
        Some((bytes, _)) => EntityDoc::load(bytes),
        None => EntityDoc::base(&layer.schema, &old_feature),
    }
    .map_err(|source| ReplicaError::Crdt { layer: layer.name.clone(), feature: label(&old_feature), source })?;
    let previous = doc.state(&layer.schema).map_err(|source| ReplicaError::Crdt {
        layer: layer.name.clone(),
        feature: label(&old_feature),
        source,
    })?;
    let row = match current {
        Ok(Some(row)) => row,
        Ok(None) => {
            if previous.deleted {
                return Ok(Ok(false));
            }
            let change = apply(ctx, &mut doc, Edit::Delete)?;
            if let Some(change) = change {
                ctx.commit(&mut doc, &previous, version, &change, Op::Delete)?;
            }
            return Ok(Ok(true));
        }
        Err(e) => return Ok(Err(put_back(fid, &previous, version, e.to_string()))),
    };
    if row.feature.id != id {
        return Ok(Err(put_back(fid, &previous, version, "the entity id cannot be changed".into())));
    }
    let target = match ctx.conform(row.feature.clone(), Some(&previous.feature)) {
        Ok(f) => f,
        Err(e) => return Ok(Err(put_back(fid, &previous, version, e.to_string()))),
    };
    let edits = diff(&previous.feature, &target);
    let mut changed = false;
    for (op, edit) in edits {
        let before = doc.state(&layer.schema).map_err(|source| ReplicaError::Crdt {
            layer: layer.name.clone(),
            feature: label(&target),
            source,
        })?;
        if let Some(change) = apply(ctx, &mut doc, edit)? {
            ctx.commit(&mut doc, &before, version, &change, op)?;
            changed = true;
        }
    }
    Ok(Ok(changed))
}

fn apply(ctx: &Ctx<'_>, doc: &mut EntityDoc, edit: Edit) -> Result<Option<Vec<u8>>> {
    doc.edit(&ctx.layer.schema, ctx.actor, ctx.meta, edit).map_err(|source| ReplicaError::Crdt {
        layer: ctx.layer.name.clone(),
        feature: String::new(),
        source,
    })
}

fn create(ctx: &Ctx<'_>, fid: i64, mut feature: Feature) -> Result<Outcome> {
    let layer = ctx.layer;
    if feature.code.is_empty() {
        feature.code = generate_code(ctx.conn, &layer.name, ctx.actor)?;
    }
    let name = label(&feature);
    let feature = match ctx.conform(feature, None) {
        Ok(f) => f,
        Err(e) => return Ok(Err(remove_row(fid, name, e.to_string()))),
    };
    if load_doc_bytes(ctx.conn, &layer.name, feature.id)?.is_some() {
        return Ok(Err(remove_row(fid, name, format!("entity id {} is already used", feature.id))));
    }
    if let Err(e) = ctx.check_code_free(&feature.code, feature.id) {
        return Ok(Err(remove_row(fid, name, e.to_string())));
    }
    let (mut doc, change) = EntityDoc::create(&layer.schema, &feature, ctx.actor, ctx.meta)
        .map_err(|source| ReplicaError::Crdt { layer: layer.name.clone(), feature: name, source })?;
    let previous = EntityState { feature, deleted: true };
    ctx.commit(&mut doc, &previous, None, &change, Op::Create)?;
    Ok(Ok(true))
}

fn remove_row(fid: i64, feature: String, message: String) -> Refused {
    Refused { feature, message, undo: Undo::RemoveRow(fid) }
}

fn put_back(fid: i64, previous: &EntityState, version: Option<i64>, message: String) -> Refused {
    Refused {
        feature: label(&previous.feature),
        message,
        undo: Undo::PutBack { fid, state: Box::new(previous.clone()), version },
    }
}

/// The edits taking `old` to `new`, one change each (geometry, code, valid time, fields).
fn diff(old: &Feature, new: &Feature) -> Vec<(Op, Edit)> {
    let mut edits = Vec::new();
    if old.geometry != new.geometry {
        edits.push((Op::Geometry, Edit::SetGeometry(new.geometry.clone())));
    }
    if old.code != new.code {
        edits.push((Op::Set, Edit::SetCode(new.code.clone())));
    }
    if old.valid != new.valid {
        edits.push((Op::Set, Edit::SetValid(new.valid)));
    }
    let mut props = Properties::new();
    for (k, v) in &new.properties {
        if old.properties.get(k) != Some(v) {
            props.insert(k.clone(), v.clone());
        }
    }
    for k in old.properties.keys().filter(|k| !new.properties.contains_key(*k)) {
        props.insert(k.clone(), Value::Null);
    }
    if !props.is_empty() {
        edits.push((Op::Set, Edit::SetFields(props)));
    }
    edits
}

/// The row state the capture trigger saved (a JSON object of the columns, geometry in hex).
fn decode_old(layer: &ReplicaLayer, old: &str) -> Result<(Feature, Option<i64>)> {
    let corrupt = |m: String| ReplicaError::Corrupt(format!("sk_capture of layer `{}`: {m}", layer.name));
    let map: Map<String, Json> = serde_json::from_str(old).map_err(|e| corrupt(e.to_string()))?;
    let text = |k: &str| map.get(k).and_then(Json::as_str).map(str::to_owned);
    let id: EntityId = text("entity_id")
        .ok_or_else(|| corrupt("no entity id".into()))?
        .parse()
        .map_err(|e: shikong_model::ModelError| corrupt(e.to_string()))?;
    let geometry = match text("geom").filter(|h| !h.is_empty()) {
        Some(hex) => {
            let bytes = decode_hex(&hex).ok_or_else(|| corrupt("geometry hex".into()))?;
            codec::geometry_from_sql(ValueRef::Blob(&bytes)).map_err(corrupt)?
        }
        None => None,
    };
    let time = |k: &str| match text(k) {
        Some(s) => codec::time_from_sql(ValueRef::Text(s.as_bytes())).map_err(|e| corrupt(e.to_string())),
        None => Ok(None),
    };
    let valid = ValidTime { from: time("valid_from")?, to: time("valid_to")? };
    let mut properties = Properties::new();
    for f in &layer.schema.fields {
        let sql = match map.get(&f.name) {
            None | Some(Json::Null) => continue,
            Some(Json::Number(n)) => n.as_i64().map_or_else(|| Sql::Real(n.as_f64().unwrap_or(f64::NAN)), Sql::Integer),
            Some(Json::String(s)) => Sql::Text(s.clone()),
            Some(Json::Bool(b)) => Sql::Integer(i64::from(*b)),
            Some(other) => Sql::Text(other.to_string()),
        };
        let v = codec::from_sql(ValueRef::from(&sql), f.ty).map_err(|m| corrupt(format!("`{}`: {m}", f.name)))?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    let version = map.get("sk_version").and_then(Json::as_i64);
    Ok((Feature { id, code: text("code").unwrap_or_default(), geometry, valid, properties }, version))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

impl Replica {
    /// Turns edits made to the file outside shikong (QGIS) into changes by this replica, validated
    /// like any edit; refused ones are undone in the table and reported. Edits made through this
    /// API do this first on their own; the sync client calls it before a push and a pull.
    pub fn import_external_edits(&mut self, meta: &EditMeta) -> Result<ExternalImport> {
        let tx = self.conn.unchecked_transaction()?;
        let out = import(&tx, &self.layers, self.actor, meta)?;
        if out.recorded > 0 {
            crate::format::set_meta(&tx, crate::format::key::ACTOR_USED, Some("1"))?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Rows touched outside shikong and not yet imported.
    pub fn external_edits(&self) -> Result<u64> {
        pending(&self.conn)
    }
}
