//! The editing API: create, set fields, replace geometry, delete, restore, undo, resolve.
//!
//! Every edit runs in one SQLite transaction: validate against the layer schema with the server's
//! own function (`shikong_model::feature::conform`), apply it to the entity's automerge document
//! as one change by this replica's actor, write the visible row from the document's new state,
//! store the document, append the change to the outbox, recompute the entity's conflicts. A
//! refused edit writes nothing.

use rusqlite::{Connection, OptionalExtension, params};
use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc, EntityState, Resolved};
use shikong_gpkg::quote_ident;
use shikong_model::feature::conform;
use shikong_model::{EntityId, Feature, Geometry, ModelError, Properties, ValidTime};

use crate::conflicts;
use crate::error::{ReplicaError, Result};
use crate::format::{self, ReplicaLayer, key};
use crate::replica::{FeatureKey, Located, Replica, drop_doc, store_doc};
use crate::table;

/// A feature to create. `id` and `code` are generated when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewFeature {
    pub id: Option<EntityId>,
    pub code: Option<String>,
    pub geometry: Option<Geometry>,
    pub valid: ValidTime,
    pub properties: Properties,
}

/// The kind of a local change, as the outbox and the change message record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Set,
    Geometry,
    Delete,
    Undo,
    Resolve,
    Restore,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Geometry => "geometry",
            Op::Delete => "delete",
            Op::Undo => "undo",
            Op::Resolve => "resolve",
            Op::Restore => "restore",
        }
    }
}

/// What one edit works with inside its transaction.
pub(crate) struct Ctx<'a> {
    pub conn: &'a Connection,
    pub layer: &'a ReplicaLayer,
    pub actor: Actor,
    pub meta: &'a EditMeta,
    pub codes: &'a table::CodeCache,
}

impl Ctx<'_> {
    fn crdt(&self, feature: &str) -> impl Fn(shikong_crdt::Error) -> ReplicaError + '_ {
        let layer = self.layer.name.clone();
        let feature = feature.to_owned();
        move |source| ReplicaError::Crdt { layer: layer.clone(), feature: feature.clone(), source }
    }

    fn invalid(&self, feature: &Feature) -> impl Fn(ModelError) -> ReplicaError + '_ {
        let layer = self.layer.name.clone();
        let label = label(feature);
        move |source| ReplicaError::Invalid { layer: layer.clone(), feature: label.clone(), source }
    }

    /// The server's validation of a complete state.
    pub(crate) fn conform(&self, f: Feature, previous: Option<&Feature>) -> Result<Feature> {
        let l = self.layer;
        let err = self.invalid(&f);
        conform(l.geometry_kind, l.has_z, &l.schema, f, previous).map_err(err)
    }

    /// Codes are unique in a layer (the replica has no index enforcing it; see `table`).
    pub(crate) fn check_code_free(&self, code: &str, id: EntityId) -> Result<()> {
        if table::code_taken(self.conn, &self.layer.name, code, id)? {
            return Err(ReplicaError::DuplicateCode { layer: self.layer.name.clone(), code: code.to_owned() });
        }
        Ok(())
    }

    /// The entity's document: the stored one, or the deterministic base of its row.
    pub(crate) fn doc_of(&self, located: &Located) -> Result<EntityDoc> {
        let label = located.row.as_ref().map_or_else(|| located.id.to_string(), |r| label(&r.feature));
        match (&located.doc, &located.row) {
            (Some((bytes, _)), _) => EntityDoc::load(bytes).map_err(self.crdt(&label)),
            (None, Some(row)) => EntityDoc::base(&self.layer.schema, &row.feature).map_err(self.crdt(&label)),
            (None, None) => Err(ReplicaError::NotFound { layer: self.layer.name.clone(), key: located.id.to_string() }),
        }
    }

    /// Records `change` (already applied to `doc`): validates the new state against the schema
    /// (`previous` for the retired-field rule), writes the row, the document, the outbox row and
    /// the conflicts.
    pub(crate) fn commit(
        &self,
        doc: &mut EntityDoc,
        previous: &EntityState,
        version: Option<i64>,
        change: &[u8],
        op: Op,
    ) -> Result<()> {
        let id = previous.feature.id;
        let state = doc.state(&self.layer.schema).map_err(self.crdt(&label(&previous.feature)))?;
        if state.deleted {
            table::delete(self.conn, &self.layer.name, id)?;
        } else {
            self.conform(state.feature.clone(), Some(&previous.feature))?;
            if previous.deleted || state.feature.geometry != previous.feature.geometry {
                table::upsert(self.conn, self.layer, &state.feature, version)?;
            } else {
                // The row shows the previous state (every document change rewrites it, and
                // outside edits were recorded before this one): its geometry is still right.
                table::upsert_attributes(self.conn, self.layer, &state.feature, version)?;
            }
        }
        store_doc(self.conn, &self.layer.name, id, &state.feature.code, version, doc)?;
        let hash = shikong_crdt::change_hash(change).map_err(self.crdt(&label(&state.feature)))?;
        // Later changes depend on earlier ones: an edit sends the refused ones again with it.
        self.conn
            .prepare_cached(
                "UPDATE sk_outbox SET status = 'pending', error_code = NULL, reason = NULL \
                 WHERE entity_id = ?1 AND status = 'rejected'",
            )?
            .execute([id.to_string()])?;
        self.conn
            .prepare_cached(
                "INSERT INTO sk_outbox (layer, entity_id, change, hash, op, device_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                self.layer.name,
                id.to_string(),
                change,
                hash.to_string(),
                op.as_str(),
                shikong_model::time::gpkg_datetime(self.meta.time)
            ])?;
        conflicts::refresh(self.conn, self.layer, id, Some(doc))?;
        Ok(())
    }

    /// Applies `edit` to the located entity and records it; `false` when it changed nothing.
    pub(crate) fn edit(&self, located: &Located, op: Op, edit: Edit) -> Result<bool> {
        let mut doc = self.doc_of(located)?;
        let previous = doc.state(&self.layer.schema).map_err(self.crdt(&located.id.to_string()))?;
        let name = label(&previous.feature);
        let edit = self.prepare(&previous, edit)?;
        let Some(change) = doc.edit(&self.layer.schema, self.actor, self.meta, edit).map_err(self.crdt(&name))? else {
            return Ok(false);
        };
        self.commit(&mut doc, &previous, located.version(), &change, op)?;
        Ok(true)
    }

    /// Checks an edit before it touches the document (so a refused edit is refused with the
    /// schema's message) and conforms a new geometry to the layer (single parts become multi
    /// parts in multi layers), as the server would.
    fn prepare(&self, previous: &EntityState, edit: Edit) -> Result<Edit> {
        let deleted = || ReplicaError::Deleted { layer: self.layer.name.clone(), feature: label(&previous.feature) };
        let mut target = previous.feature.clone();
        match edit {
            Edit::SetFields(props) => {
                if previous.deleted {
                    return Err(deleted());
                }
                for (k, v) in &props {
                    if v.is_null() {
                        target.properties.remove(k);
                    } else {
                        target.properties.insert(k.clone(), v.clone());
                    }
                }
                self.conform(target, Some(&previous.feature))?;
                Ok(Edit::SetFields(props))
            }
            Edit::SetGeometry(g) => {
                if previous.deleted {
                    return Err(deleted());
                }
                target.geometry = g;
                Ok(Edit::SetGeometry(self.conform(target, Some(&previous.feature))?.geometry))
            }
            Edit::SetCode(code) => {
                if previous.deleted {
                    return Err(deleted());
                }
                self.check_code_free(&code, previous.feature.id)?;
                target.code = code.clone();
                self.conform(target, Some(&previous.feature))?;
                Ok(Edit::SetCode(code))
            }
            Edit::SetValid(valid) => {
                if previous.deleted {
                    return Err(deleted());
                }
                target.valid = valid;
                self.conform(target, Some(&previous.feature))?;
                Ok(Edit::SetValid(valid))
            }
            Edit::Delete if previous.deleted => Err(deleted()),
            Edit::Restore if !previous.deleted => {
                Err(ReplicaError::NotDeleted { layer: self.layer.name.clone(), feature: label(&previous.feature) })
            }
            Edit::Resolve { attribute, value: Resolved::Geometry(g) } => {
                target.geometry = g;
                let g = self.conform(target, Some(&previous.feature))?.geometry;
                Ok(Edit::Resolve { attribute, value: Resolved::Geometry(g) })
            }
            other => Ok(other),
        }
    }
}

/// How a feature is named in messages: its code, or its id before it has one.
pub(crate) fn label(f: &Feature) -> String {
    if f.code.is_empty() { f.id.to_string() } else { f.code.clone() }
}

/// A code unique in this replica and across devices: `<layer>-<first 6 hex digits of the actor>-<n>`.
pub(crate) fn generate_code(conn: &Connection, layer: &str, actor: Actor) -> Result<String> {
    let prefix: String = actor.to_string().chars().take(6).collect();
    let t = quote_ident(layer);
    loop {
        let n: i64 = conn
            .query_row(
                "UPDATE sk_layers SET next_code = next_code + 1 WHERE name = ?1 RETURNING next_code - 1",
                [layer],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| ReplicaError::NoSuchLayer(layer.to_owned()))?;
        let code = format!("{layer}-{prefix}-{n}");
        let in_table =
            conn.query_row(&format!("SELECT 1 FROM {t} WHERE code = ?1"), [&code], |_| Ok(())).optional()?.is_some();
        let in_docs = conn
            .query_row("SELECT 1 FROM sk_docs WHERE layer = ?1 AND code = ?2", [layer, &code], |_| Ok(()))
            .optional()?
            .is_some();
        if !in_table && !in_docs {
            return Ok(code);
        }
    }
}

/// A new entity id: a UUID v7 from the device time of the edit (ids sort by creation).
fn new_id(meta: &EditMeta) -> EntityId {
    let ms = u64::try_from(meta.time.as_millisecond()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000);
    EntityId(uuid::Uuid::new_v7(ts))
}

impl Replica {
    /// Runs `f` in one transaction with the context of `layer`: outside (QGIS) edits are recorded
    /// first, and the capture rows this crate's own writes leave behind are cleared at the end.
    fn in_edit<T>(&mut self, layer: &str, meta: &EditMeta, f: impl FnOnce(&Ctx<'_>) -> Result<T>) -> Result<T> {
        // A savepoint: its own transaction normally, a nested step inside [`Replica::batch`].
        let tx = self.conn.savepoint()?;
        crate::capture::import(&tx, &self.layers, self.actor, meta)?;
        let def =
            self.layers.iter().find(|l| l.name == layer).ok_or_else(|| ReplicaError::NoSuchLayer(layer.to_owned()))?;
        let out = f(&Ctx { conn: &tx, layer: def, actor: self.actor, meta, codes: &self.codes })?;
        // Cached statements: an edit is small, and parsing these every time was a tenth of it.
        tx.prepare_cached("DELETE FROM sk_capture")?.execute([])?;
        tx.prepare_cached(
            "UPDATE sk_replica SET value = '1' WHERE key = 'actor_used' AND value IS NOT '1' AND EXISTS (SELECT 1 FROM sk_outbox)",
        )?
        .execute([])?;
        tx.commit()?;
        Ok(out)
    }

    fn in_entity_edit(&mut self, layer: &str, key: &FeatureKey, meta: &EditMeta, op: Op, edit: Edit) -> Result<bool> {
        self.in_edit(layer, meta, |ctx| {
            let located = Replica::locate(ctx.conn, ctx.codes, ctx.layer, key)?
                .ok_or_else(|| ReplicaError::NotFound { layer: layer.to_owned(), key: key.to_string() })?;
            ctx.edit(&located, op, edit)
        })
    }

    /// Runs several edits as one transaction: all are kept or, if one fails, none (a form saving
    /// many features, a script, a benchmark). Each edit inside is still one change each.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Replica) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE;")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT;")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK;");
                Err(e)
            }
        }
    }

    /// Creates a feature (id and code generated when absent); returns its id.
    pub fn create_feature(&mut self, layer: &str, new: NewFeature, meta: &EditMeta) -> Result<EntityId> {
        self.in_edit(layer, meta, |ctx| {
            let id = new.id.unwrap_or_else(|| new_id(meta));
            if table::fid_of(ctx.conn, layer, id)?.is_some()
                || ctx
                    .conn
                    .query_row("SELECT 1 FROM sk_docs WHERE entity_id = ?1", [id.to_string()], |_| Ok(()))
                    .optional()?
                    .is_some()
            {
                return Err(ReplicaError::DuplicateId { layer: layer.to_owned(), id: id.to_string() });
            }
            let code = match new.code {
                Some(c) => c,
                None => generate_code(ctx.conn, layer, ctx.actor)?,
            };
            let feature = Feature { id, code, geometry: new.geometry, valid: new.valid, properties: new.properties };
            let feature = ctx.conform(feature, None)?;
            ctx.check_code_free(&feature.code, feature.id)?;
            let (mut doc, change) = EntityDoc::create(&ctx.layer.schema, &feature, ctx.actor, meta)
                .map_err(|source| ReplicaError::Crdt { layer: layer.to_owned(), feature: label(&feature), source })?;
            let previous = EntityState { feature, deleted: true };
            ctx.commit(&mut doc, &previous, None, &change, Op::Create)?;
            Ok(id)
        })
    }

    /// Sets fields (`Value::Null` clears one); `false` when nothing changed.
    pub fn set_fields(
        &mut self,
        layer: &str,
        key: &FeatureKey,
        properties: Properties,
        meta: &EditMeta,
    ) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Set, Edit::SetFields(properties))
    }

    /// Replaces the geometry (`None` removes it).
    pub fn set_geometry(
        &mut self,
        layer: &str,
        key: &FeatureKey,
        geometry: Option<Geometry>,
        meta: &EditMeta,
    ) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Geometry, Edit::SetGeometry(geometry))
    }

    /// Changes the entity code.
    pub fn set_code(&mut self, layer: &str, key: &FeatureKey, code: &str, meta: &EditMeta) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Set, Edit::SetCode(code.to_owned()))
    }

    /// Changes the valid time.
    pub fn set_valid(&mut self, layer: &str, key: &FeatureKey, valid: ValidTime, meta: &EditMeta) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Set, Edit::SetValid(valid))
    }

    /// Deletes the feature: the row goes, the document keeps the deletion until it is synced.
    pub fn delete(&mut self, layer: &str, key: &FeatureKey, meta: &EditMeta) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Delete, Edit::Delete)
    }

    /// Brings a deleted feature back (the resolution of a deletion that raced an edit).
    pub fn restore(&mut self, layer: &str, key: &FeatureKey, meta: &EditMeta) -> Result<bool> {
        self.in_entity_edit(layer, key, meta, Op::Restore, Edit::Restore)
    }

    /// Undoes this replica's newest change on the entity that is not itself undone (undoing a
    /// creation deletes). The undo is a change of its own and syncs like any edit.
    pub fn undo(&mut self, layer: &str, key: &FeatureKey, meta: &EditMeta) -> Result<()> {
        self.in_edit(layer, meta, |ctx| {
            let located = Replica::locate(ctx.conn, ctx.codes, ctx.layer, key)?
                .ok_or_else(|| ReplicaError::NotFound { layer: layer.to_owned(), key: key.to_string() })?;
            let mut doc = ctx.doc_of(&located)?;
            let previous = doc.state(&ctx.layer.schema).map_err(ctx.crdt(&located.id.to_string()))?;
            let name = label(&previous.feature);
            let change = doc
                .undo(&ctx.layer.schema, ctx.actor, meta)
                .map_err(ctx.crdt(&name))?
                .ok_or_else(|| ReplicaError::NothingToUndo { layer: layer.to_owned(), feature: name })?;
            ctx.commit(&mut doc, &previous, located.version(), &change, Op::Undo)
        })
    }

    /// Settles a conflict on `attribute` (a field name, `geometry`, `code`, `valid_from`,
    /// `valid_to` or `deleted`) with the chosen value.
    pub fn resolve(
        &mut self,
        layer: &str,
        key: &FeatureKey,
        attribute: &str,
        value: Resolved,
        meta: &EditMeta,
    ) -> Result<bool> {
        let edit = Edit::Resolve { attribute: attribute.to_owned(), value };
        self.in_entity_edit(layer, key, meta, Op::Resolve, edit)
    }

    /// Local changes waiting to be pushed (refused ones not counted; see [`Replica::rejected`]).
    pub fn pending(&self) -> Result<u64> {
        let n: i64 =
            self.conn.query_row("SELECT count(*) FROM sk_outbox WHERE status = 'pending'", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Local changes the server refused, oldest first. They stay in the replica (and in the
    /// visible state) until the user edits the feature again or retries.
    pub fn rejected(&self) -> Result<Vec<RejectedChange>> {
        let mut stmt = self.conn.prepare(
            "SELECT o.layer, o.entity_id, coalesce(d.code, ''), o.op, o.device_time, o.error_code, o.reason \
             FROM sk_outbox o LEFT JOIN sk_docs d ON d.entity_id = o.entity_id WHERE o.status = 'rejected' ORDER BY o.seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RejectedChange {
                layer: r.get(0)?,
                entity: r.get::<_, String>(1)?,
                code: r.get(2)?,
                op: r.get(3)?,
                device_time: r.get(4)?,
                error_code: r.get(5)?,
                reason: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Makes the refused changes of one feature (or of all, with `None`) pending again.
    pub fn retry(&mut self, target: Option<(&str, &FeatureKey)>) -> Result<u64> {
        let n = match target {
            None => self.conn.execute(
                "UPDATE sk_outbox SET status = 'pending', error_code = NULL, reason = NULL WHERE status = 'rejected'",
                [],
            )?,
            Some((layer, key)) => {
                let located = Replica::locate(&self.conn, &self.codes, self.layer(layer)?, key)?
                    .ok_or_else(|| ReplicaError::NotFound { layer: layer.to_owned(), key: key.to_string() })?;
                self.conn.execute(
                    "UPDATE sk_outbox SET status = 'pending', error_code = NULL, reason = NULL \
                     WHERE status = 'rejected' AND entity_id = ?1",
                    [located.id.to_string()],
                )?
            }
        };
        Ok(n as u64)
    }

    /// Gives the replica a new random writer id. Only allowed before its first edit: a replica
    /// file copied to a second device must get its own id there, or both would write changes
    /// under the same identity.
    pub fn renew_actor(&mut self) -> Result<Actor> {
        if format::get_meta(&self.conn, key::ACTOR_USED)?.as_deref() != Some("0") {
            return Err(ReplicaError::ActorInUse);
        }
        let actor = Actor::random();
        format::set_meta(&self.conn, key::ACTOR, Some(&actor.to_string()))?;
        self.actor = actor;
        Ok(actor)
    }
}

/// A local change the server refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedChange {
    pub layer: String,
    pub entity: String,
    pub code: String,
    /// `create`, `set`, `geometry`, `delete`, `undo`, `resolve` or `restore`.
    pub op: String,
    /// Device time of the edit (GeoPackage DATETIME, UTC).
    pub device_time: String,
    /// The server's [`shikong_protocol::SyncErrorCode`] in its kebab-case wire form.
    pub error_code: Option<String>,
    pub reason: String,
}

/// Removes the row and document of an entity that no longer needs either.
pub(crate) fn forget(conn: &Connection, layer: &ReplicaLayer, id: EntityId) -> Result<()> {
    table::delete(conn, &layer.name, id)?;
    drop_doc(conn, id)?;
    conflicts::refresh(conn, layer, id, None)
}
