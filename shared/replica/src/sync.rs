//! The sync-facing side (transport-free; the sync client moves the bytes): cutting push batches
//! from the outbox, taking the server's answer, and storing pull pages.
//!
//! Crash safety: every call is one SQLite transaction. A push batch is recorded before it is
//! returned, so asking again before the answer arrives returns the same batch (same id, same
//! changes) and the server's idempotency does the rest. A pull page and its cursor are stored
//! together, so a page either counts entirely or not at all.
//!
//! A server that went back in time (restored from an older backup) says so in either answer
//! (`diverged`); the replica then sends its own changes again and pulls from the start (see
//! [`crate::resend`]).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;
use shikong_crdt::EntityDoc;
use shikong_model::{EntityId, Feature, Properties, ValidTime};
use shikong_protocol::{
    Bytes, EntityChanges, Outcome, PROTOCOL_VERSION, PullPage, PulledEntity, PushRequest, PushResponse, WireFeature,
};
use uuid::Uuid;

use crate::capture;
use crate::conflicts;
use crate::edit::forget;
use crate::error::{ReplicaError, Result};
use crate::format::{self, ReplicaInfo, ReplicaLayer, key};
use crate::replica::{Replica, drop_doc, has_local_changes, load_doc_bytes, store_doc};
use crate::table;

/// Raw change bytes per batch, so the base64 JSON body stays under the protocol's 8 MiB.
const MAX_BATCH_BYTES: i64 = 6 * 1024 * 1024;

/// What a push answer did to the replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub accepted: usize,
    pub unchanged: usize,
    pub rejected: usize,
    /// Own changes queued again because the server went back in time (`diverged`).
    pub resent: usize,
}

/// What a pull page did to the replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSummary {
    pub layers_changed: usize,
    /// Rows written from the server's state.
    pub updated: usize,
    /// Rows removed (deleted, or left the area).
    pub removed: usize,
    /// Entities whose server document was merged with local changes.
    pub merged: usize,
    /// Entities skipped because the replica already had a newer version.
    pub stale: usize,
    /// Own changes queued again because the server went back in time (`diverged`).
    pub resent: usize,
}

fn check_protocol(found: u32) -> Result<()> {
    if found != PROTOCOL_VERSION {
        return Err(ReplicaError::Protocol { found, supported: PROTOCOL_VERSION });
    }
    Ok(())
}

fn bad(layer: &str, entity: impl ToString, message: impl Into<String>) -> ReplicaError {
    ReplicaError::BadMessage { layer: layer.to_owned(), entity: entity.to_string(), message: message.into() }
}

fn current_batch(conn: &Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT batch FROM sk_outbox WHERE batch IS NOT NULL LIMIT 1", [], |r| r.get(0)).optional()?)
}

impl Replica {
    /// The next batch of local changes to push, grouped by entity in the order they were made
    /// (at most `max_entities` entities and about 6 MiB of changes); `None` when nothing is
    /// pending. Until [`Replica::apply_push_response`] takes the answer, every call returns the
    /// same batch.
    pub fn push_batch(&mut self, max_entities: usize) -> Result<Option<PushRequest>> {
        capture::guard(&self.conn)?;
        let max = max_entities.clamp(1, shikong_protocol::MAX_PUSH_ENTITIES);
        let tx = self.conn.unchecked_transaction()?;
        let batch = match current_batch(&tx)? {
            Some(b) => b,
            None => {
                let mut stmt = tx.prepare(
                    "SELECT entity_id, sum(length(change)) FROM sk_outbox WHERE status = 'pending' \
                     GROUP BY entity_id ORDER BY min(seq)",
                )?;
                let mut rows = stmt.query([])?;
                let mut chosen: Vec<String> = Vec::new();
                let mut bytes = 0i64;
                while let Some(r) = rows.next()? {
                    let size: i64 = r.get(1)?;
                    if chosen.len() == max || (!chosen.is_empty() && bytes + size > MAX_BATCH_BYTES) {
                        break;
                    }
                    chosen.push(r.get(0)?);
                    bytes += size;
                }
                drop(rows);
                drop(stmt);
                if chosen.is_empty() {
                    return Ok(None);
                }
                let batch = Uuid::new_v4().hyphenated().to_string();
                let mut mark =
                    tx.prepare("UPDATE sk_outbox SET batch = ?1 WHERE entity_id = ?2 AND status = 'pending'")?;
                for id in &chosen {
                    mark.execute(params![batch, id])?;
                }
                batch
            }
        };
        let mut entities: Vec<EntityChanges> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        {
            let mut stmt =
                tx.prepare("SELECT layer, entity_id, change FROM sk_outbox WHERE batch = ?1 ORDER BY seq")?;
            let mut rows = stmt.query([&batch])?;
            while let Some(r) = rows.next()? {
                let (layer, entity, change): (String, String, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let i = match index.get(&entity) {
                    Some(i) => *i,
                    None => {
                        let uuid = Uuid::parse_str(&entity)
                            .map_err(|e| ReplicaError::Corrupt(format!("outbox entity id `{entity}`: {e}")))?;
                        entities.push(EntityChanges { layer, entity: uuid, changes: Vec::new() });
                        index.insert(entity, entities.len() - 1);
                        entities.len() - 1
                    }
                };
                entities[i].changes.push(Bytes(change));
            }
        }
        tx.commit()?;
        let batch = Uuid::parse_str(&batch).map_err(|e| ReplicaError::Corrupt(format!("batch id `{batch}`: {e}")))?;
        let seen = crate::resend::server_mark(&self.conn)?;
        Ok(Some(PushRequest { protocol: PROTOCOL_VERSION, replica: self.info.id, batch, entities, seen }))
    }

    /// Takes the server's answer to the current batch: accepted or unchanged entities leave the
    /// outbox and adopt the server's document (merged with any edit made since the batch was
    /// cut); refused ones stay, marked with the reason. Entities the answer does not mention stay
    /// pending for the next batch.
    pub fn apply_push_response(&mut self, response: &PushResponse) -> Result<PushSummary> {
        check_protocol(response.protocol)?;
        capture::guard(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        let batch = current_batch(&tx)?;
        let mut summary = PushSummary::default();
        for r in &response.results {
            let layer = self
                .layers
                .iter()
                .find(|l| l.name == r.layer)
                .ok_or_else(|| bad(&r.layer, r.entity, "not a layer of this replica"))?;
            let id = EntityId(r.entity);
            match &r.outcome {
                Outcome::Accepted { version } | Outcome::Unchanged { version } => {
                    if matches!(r.outcome, Outcome::Accepted { .. }) {
                        summary.accepted += 1;
                    } else {
                        summary.unchanged += 1;
                    }
                    let mut resent = Vec::new();
                    if let Some(b) = &batch {
                        resent = tx
                            .prepare_cached(
                                "SELECT change FROM sk_outbox WHERE entity_id = ?1 AND batch = ?2 AND op = 'resend'",
                            )?
                            .query_map(params![id.to_string(), b], |r| r.get::<_, Vec<u8>>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        tx.execute(
                            "DELETE FROM sk_outbox WHERE entity_id = ?1 AND batch = ?2",
                            params![id.to_string(), b],
                        )?;
                    }
                    adopt(&tx, layer, id, *version, r.doc.as_ref().map(|d| d.0.as_slice()), &resent)?;
                }
                Outcome::Rejected { code, reason } => {
                    summary.rejected += 1;
                    let code = serde_json::to_value(code).ok().and_then(|j| j.as_str().map(str::to_owned));
                    if let Some(b) = &batch {
                        tx.execute(
                            "UPDATE sk_outbox SET status = 'rejected', error_code = ?3, reason = ?4, batch = NULL \
                             WHERE entity_id = ?1 AND batch = ?2",
                            params![id.to_string(), b, code, reason],
                        )?;
                    }
                }
            }
        }
        if let Some(b) = &batch {
            tx.execute("UPDATE sk_outbox SET batch = NULL WHERE batch = ?1", [b])?;
        }
        if response.mark.is_some() {
            crate::resend::remember(&tx, response.mark.as_deref())?;
        }
        let actor = if response.diverged {
            summary.resent = crate::resend::restart(&tx, &self.info)?;
            Some(crate::resend::fresh_actor(&tx)?)
        } else {
            None
        };
        tx.execute_batch("DELETE FROM sk_capture;")?;
        tx.commit()?;
        if let Some(a) = actor {
            self.actor = a;
        }
        Ok(summary)
    }

    /// Stores one pull page and its cursor, all or nothing: layer changes first (new and renamed
    /// columns, data kept), then each entity — adopted as the server has it, or, when it has
    /// local changes, merged with the local document so they survive (conflicts are recorded).
    pub fn apply_pull_page(&mut self, page: &PullPage) -> Result<PullSummary> {
        check_protocol(page.protocol)?;
        capture::guard(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        let mut layers = self.layers.clone();
        let mut summary = PullSummary::default();
        // After the server went back in time the replica's versions may be ahead of its: its
        // word counts for every entity until the restarted pull is through. Own changes are
        // queued again first, so entities holding them merge instead.
        let sent = format::get_meta(&tx, key::CURSOR)?.unwrap_or_default();
        let authoritative = page.diverged || shikong_protocol::cursor_restarting(&sent);
        let actor = if page.diverged {
            summary.resent = crate::resend::requeue_own(&tx, &self.info)?;
            Some(crate::resend::fresh_actor(&tx)?)
        } else {
            None
        };
        let rebase = authoritative.then_some(Rebase { info: &self.info });
        for u in &page.layers {
            let Some(i) = layers.iter().position(|l| l.name == u.layer) else { continue };
            let new = ReplicaLayer::from_doc(&u.definition)?;
            if new.name != u.layer {
                return Err(bad(&u.layer, "-", format!("the definition names layer `{}`", new.name)));
            }
            table::drop_triggers(&tx, &u.layer)?;
            table::alter(&tx, &layers[i], &new)?;
            table::create_triggers(&tx, &new)?;
            tx.execute(
                "UPDATE sk_layers SET title = ?2, definition = ?3, tx = ?4 WHERE name = ?1",
                params![
                    u.layer,
                    new.title,
                    serde_json::to_string(&u.definition).map_err(|e| bad(&u.layer, "-", e.to_string()))?,
                    u.tx
                ],
            )?;
            layers[i] = new;
            summary.layers_changed += 1;
        }
        for e in &page.entities {
            let layer = layers
                .iter()
                .find(|l| l.name == e.layer)
                .ok_or_else(|| bad(&e.layer, e.entity, "not a layer of this replica"))?;
            pull_entity(&tx, layer, e, &mut summary, authoritative, rebase.as_ref())?;
        }
        format::set_meta(&tx, key::CURSOR, Some(&page.cursor))?;
        crate::resend::remember(&tx, shikong_protocol::cursor_mark(&page.cursor))?;
        tx.execute_batch("DELETE FROM sk_capture;")?;
        tx.commit()?;
        self.layers = layers;
        if let Some(a) = actor {
            self.actor = a;
        }
        Ok(summary)
    }

    /// Queues the changes the server refused as `missing-dependencies` again (they wait for
    /// another device's changes, typically after the server was restored from a backup); the sync
    /// client calls it before pushing. Returns how many.
    pub fn retry_missing_dependencies(&mut self) -> Result<usize> {
        crate::resend::retry_missing_dependencies(&self.conn)
    }

    /// The newest server mark this replica holds, which a pull sends as `seen`; `None` when its
    /// server never sent one (a server that predates marks refuses the parameter).
    pub fn server_mark(&self) -> Result<Option<String>> {
        crate::resend::server_mark(&self.conn)
    }
}

/// After the server accepted changes at `version`: merge its document (if sent) into the local
/// one, write the row from the merged state, keep the document only while it is still needed.
/// `resent`: the accepted changes that were queued again after the server went back in time.
fn adopt(
    conn: &Connection,
    layer: &ReplicaLayer,
    id: EntityId,
    version: i64,
    server_doc: Option<&[u8]>,
    resent: &[Vec<u8>],
) -> Result<()> {
    let crdt = |source| ReplicaError::Crdt { layer: layer.name.clone(), feature: id.to_string(), source };
    let local = load_doc_bytes(conn, &layer.name, id)?;
    let row = table::fid_of(conn, &layer.name, id)?;
    // A resent change parked by a restarted pull (`Rebase`) is not in the local document: the
    // server, answering without its document, takes the device to hold it. It is applied now
    // when the document holds what it builds on (the other device sent that again meanwhile);
    // otherwise the row cannot be brought up to date from here: its version is marked unknown,
    // so the end-of-sync verification fetches the entity as the server now has it.
    let mut caught_up = None;
    if server_doc.is_none()
        && !resent.is_empty()
        && row.is_some()
        && let Some((bytes, _)) = &local
    {
        let mut doc = EntityDoc::load(bytes).map_err(crdt)?;
        let mut missing = Vec::new();
        for c in resent {
            if !doc.has_change(&shikong_crdt::change_hash(c).map_err(crdt)?) {
                missing.push(c.clone());
            }
        }
        if !missing.is_empty() {
            if !doc.missing_dependencies(&missing).map_err(crdt)?.is_empty() {
                return table::forget_version(conn, &layer.name, id);
            }
            doc.apply_changes(&missing).map_err(crdt)?;
            caught_up = Some(doc);
        }
    }
    // The server sends no document when its merged one holds nothing this replica lacks (only
    // the pushed changes and their ancestors): the row and the document stay, only the version
    // they build on moves.
    if server_doc.is_none() && caught_up.is_none() && local.is_some() && row.is_some() {
        table::set_version(conn, &layer.name, id, version)?;
        conn.prepare_cached("UPDATE sk_docs SET version = ?1 WHERE entity_id = ?2")?
            .execute(params![version, id.to_string()])?;
        return Ok(());
    }
    let mut doc = match (caught_up, local, server_doc) {
        (Some(d), _, _) => Some(d),
        (None, Some((l, _)), Some(s)) => {
            let mut l = EntityDoc::load(&l).map_err(crdt)?;
            let mut s = EntityDoc::load(s).map_err(|e| bad(&layer.name, id, format!("document: {e}")))?;
            l.merge(&mut s).map_err(crdt)?;
            Some(l)
        }
        (None, None, Some(s)) => Some(EntityDoc::load(s).map_err(|e| bad(&layer.name, id, format!("document: {e}")))?),
        (None, Some((l, _)), None) => Some(EntityDoc::load(&l).map_err(crdt)?),
        (None, None, None) => None,
    };
    let pending = has_local_changes(conn, id)?;
    let Some(doc) = doc.as_mut() else {
        if row.is_some() {
            table::set_version(conn, &layer.name, id, version)?;
        }
        return Ok(());
    };
    let state = doc.state(&layer.schema).map_err(crdt)?;
    // An entity without a row here (deleted, or outside the area) is not brought back: the next
    // pull brings it if the replica should show it.
    if row.is_some() {
        if state.deleted {
            table::delete(conn, &layer.name, id)?;
        } else {
            table::upsert(conn, layer, &state.feature, Some(version))?;
        }
    }
    let visible = row.is_some() && !state.deleted;
    // A deletion that raced an edit stays listed until someone settles it, so the device keeps
    // the document even though the row is gone.
    let contested = !doc.conflicts(&layer.schema).map_err(crdt)?.is_empty();
    if visible || pending || contested {
        store_doc(conn, &layer.name, id, &state.feature.code, Some(version), doc)?;
        conflicts::refresh(conn, layer, id, Some(doc))?;
    } else {
        drop_doc(conn, id)?;
        conflicts::refresh(conn, layer, id, None)?;
    }
    Ok(())
}

/// The feature a pull page describes (properties come by field id).
fn wire_feature(layer: &ReplicaLayer, id: EntityId, w: &WireFeature) -> Result<Feature> {
    let err = |m: String| bad(&layer.name, id, m);
    let geometry = match &w.geometry {
        Json::Null => None,
        g => Some(shikong_model::geojson::from_json(g).map_err(|e| err(format!("geometry: {e}")))?),
    };
    let time = |s: &Option<String>, what: &str| {
        s.as_deref().map(shikong_model::parse_instant).transpose().map_err(|e| err(format!("{what}: {e}")))
    };
    let valid = ValidTime { from: time(&w.valid_from, "valid_from")?, to: time(&w.valid_to, "valid_to")? };
    let mut properties = Properties::new();
    for (field_id, v) in &w.properties {
        // An id this replica does not know yet belongs to a field a later layer update adds; the
        // document (when explicit) keeps its value meanwhile.
        let Some(f) = layer.schema.field_by_id(field_id) else { continue };
        let v = f.coerce_json(v).map_err(|e| err(e.to_string()))?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    Ok(Feature { id, code: w.code.clone(), geometry, valid, properties })
}

/// How a restarted pull (the server went back in time) treats an entity with local changes:
/// the replica's own changes are replayed on the server's document instead of merging the two
/// (`shikong_crdt::EntityDoc::rebased_onto`), so changes the server lost and only this replica
/// still holds, from other devices, do not linger here alone.
pub(crate) struct Rebase<'a> {
    pub info: &'a ReplicaInfo,
}

/// Stores one pulled entity. `authoritative`: the server's current word (a repair), adopted even
/// where the replica claims a newer version; `rebase`: see [`Rebase`].
pub(crate) fn pull_entity(
    conn: &Connection,
    layer: &ReplicaLayer,
    e: &PulledEntity,
    summary: &mut PullSummary,
    authoritative: bool,
    rebase: Option<&Rebase<'_>>,
) -> Result<()> {
    let id = EntityId(e.entity);
    let local = has_local_changes(conn, id)?;
    let stored = load_doc_bytes(conn, &layer.name, id)?;
    let known_version = match table::by_id(conn, layer, id)? {
        Some(row) => row.version,
        None => stored.as_ref().and_then(|s| s.1),
    };
    if !local && !authoritative && known_version.is_some_and(|v| v > e.version) {
        summary.stale += 1;
        return Ok(());
    }
    let server_doc = e
        .doc
        .as_ref()
        .map(|d| EntityDoc::load(&d.0).map_err(|err| bad(&layer.name, id, format!("document: {err}"))))
        .transpose()?;
    if let Some(d) = &server_doc {
        let doc_id = d.entity_id().map_err(|err| bad(&layer.name, id, format!("document: {err}")))?;
        if doc_id != id {
            return Err(bad(&layer.name, id, format!("the document is entity {doc_id}")));
        }
    }
    let state = e.state.as_ref().map(|w| wire_feature(layer, id, w)).transpose()?;
    if e.left_area || !local {
        // Nothing local to keep: the server's word is the replica's state.
        match (&state, e.left_area) {
            (Some(f), false) => {
                table::upsert(conn, layer, f, Some(e.version))?;
                summary.updated += 1;
                match server_doc {
                    Some(mut d) => {
                        store_doc(conn, &layer.name, id, &f.code, Some(e.version), &mut d)?;
                        conflicts::refresh(conn, layer, id, Some(&d))?;
                    }
                    None => {
                        drop_doc(conn, id)?;
                        conflicts::refresh(conn, layer, id, None)?;
                    }
                }
            }
            _ if local => {
                // Left the area with local changes: hide the row, keep the document and the
                // changes until they are pushed.
                table::delete(conn, &layer.name, id)?;
                summary.removed += 1;
            }
            _ => {
                // Deleted on the server. If the deletion raced an edit the document carries that
                // conflict: keep it (without a row) so the device can list and settle it.
                let contested = match &server_doc {
                    Some(d) => !d
                        .conflicts(&layer.schema)
                        .map_err(|e| bad(&layer.name, id, format!("document: {e}")))?
                        .is_empty(),
                    None => false,
                };
                match server_doc {
                    Some(mut d) if contested && !e.left_area => {
                        table::delete(conn, &layer.name, id)?;
                        let code = d.state(&layer.schema).map(|s| s.feature.code).unwrap_or_default();
                        store_doc(conn, &layer.name, id, &code, Some(e.version), &mut d)?;
                        conflicts::refresh(conn, layer, id, Some(&d))?;
                    }
                    _ => forget(conn, layer, id)?,
                }
                summary.removed += 1;
            }
        }
        return Ok(());
    }
    // Local changes: merge so they survive; the merged document decides what the row shows.
    let crdt = |source| ReplicaError::Crdt { layer: layer.name.clone(), feature: id.to_string(), source };
    let mut doc = match &stored {
        Some((bytes, _)) => EntityDoc::load(bytes).map_err(crdt)?,
        None => return Err(ReplicaError::Corrupt(format!("entity {id} has local changes but no document"))),
    };
    let server_doc = match (server_doc, &state) {
        (Some(d), _) => Some(d),
        (None, Some(f)) => Some(EntityDoc::base(&layer.schema, f).map_err(crdt)?),
        (None, None) => None,
    };
    if let (Some(rb), Some(s)) = (rebase, &server_doc) {
        // Parked own changes stay in the outbox (queued again before the restart): they go
        // again with every push until the server has what they build on. They are marked
        // `resend`, which tells `adopt` that the document lacks them.
        let r = doc.rebased_onto(s.clone(), |c| crate::resend::is_own(c, rb.info)).map_err(crdt)?;
        let mut mark = conn.prepare_cached("UPDATE sk_outbox SET op = 'resend' WHERE entity_id = ?1 AND hash = ?2")?;
        for h in &r.parked {
            mark.execute(params![id.to_string(), h.to_string()])?;
        }
        doc = r.doc;
        summary.merged += 1;
    } else if let Some(mut s) = server_doc {
        doc.merge(&mut s).map_err(|err| {
            bad(
                &layer.name,
                id,
                format!("cannot merge the server's document with local changes ({err}); the server must send the document of every entity whose history is not its base"),
            )
        })?;
        summary.merged += 1;
    }
    let merged = doc.state(&layer.schema).map_err(crdt)?;
    if merged.deleted || state.is_none() {
        table::delete(conn, &layer.name, id)?;
        summary.removed += 1;
    } else {
        table::upsert(conn, layer, &merged.feature, Some(e.version))?;
        summary.updated += 1;
    }
    store_doc(conn, &layer.name, id, &merged.feature.code, Some(e.version), &mut doc)?;
    conflicts::refresh(conn, layer, id, Some(&doc))?;
    Ok(())
}
