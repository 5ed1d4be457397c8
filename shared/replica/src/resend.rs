//! Recovering from a server that went back in time (restored from a backup older than what it
//! had acknowledged, see `docs/sync-protocol.md`, "Server marks").
//!
//! The server names the newest transaction a device has heard of with a *mark* (in pull cursors
//! and push answers); the replica keeps the newest one and sends it back as `seen`. When the
//! server no longer holds it, it says `diverged`, and the replica:
//! - queues every change of its own (its user's device edits, found in the entity documents it
//!   keeps) again: what the server lost comes back, what it still has is dropped by automerge;
//! - pulls from [`shikong_protocol::RESTART_CURSOR`], adopting the server's word for every entity
//!   without local changes (its version numbers may be lower than the lost ones the replica saw);
//! - edits under a new writer id from then on ([`fresh_actor`]).
//!
//! What the replica no longer keeps cannot come back: the document of an entity it deleted is
//! forgotten once the server acknowledged the deletion.

use rusqlite::{Connection, params};
use shikong_crdt::EntityDoc;

use crate::error::{ReplicaError, Result};
use crate::format::{self, ReplicaInfo, key};

/// The newest server mark the replica holds: the last one an answer carried, else its cursor's.
/// `None` when the server never sent one (it predates marks; `seen` would be refused).
pub(crate) fn server_mark(conn: &Connection) -> Result<Option<String>> {
    if let Some(m) = format::get_meta(conn, key::SERVER_MARK)? {
        return Ok(Some(m));
    }
    let cursor = format::get_meta(conn, key::CURSOR)?.unwrap_or_default();
    Ok(shikong_protocol::cursor_mark(&cursor).map(str::to_owned))
}

/// Remembers the newest mark a server answer carried.
pub(crate) fn remember(conn: &Connection, mark: Option<&str>) -> Result<()> {
    format::set_meta(conn, key::SERVER_MARK, mark)
}

/// Queues this replica's own changes of every document it keeps again (those already queued stay
/// as they are). Returns how many were queued.
pub(crate) fn requeue_own(conn: &Connection, info: &ReplicaInfo) -> Result<usize> {
    let docs: Vec<(String, String, Vec<u8>)> = {
        let mut stmt = conn.prepare("SELECT entity_id, layer, doc FROM sk_docs ORDER BY rowid")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut insert = conn.prepare(
        "INSERT OR IGNORE INTO sk_outbox (layer, entity_id, change, hash, op, device_time) \
         VALUES (?1, ?2, ?3, ?4, 'resend', ?5)",
    )?;
    // Refused for lacking what the server lost: they go again with the changes they depend on.
    let mut queued = retry_missing_dependencies(conn)?;
    for (entity, layer, bytes) in docs {
        let crdt = |source| ReplicaError::Crdt { layer: layer.clone(), feature: entity.clone(), source };
        let doc = EntityDoc::load(&bytes).map_err(crdt)?;
        // Causal order: a change comes after the ones it depends on.
        for change in doc.changes_after(&[]) {
            let claim = shikong_crdt::change_claim(&change).map_err(crdt)?;
            if !is_own(&claim, info) {
                continue;
            }
            let time = claim.time.unwrap_or_else(jiff::Timestamp::now);
            queued += insert.execute(params![
                layer,
                entity,
                change,
                claim.hash.to_string(),
                shikong_model::time::gpkg_datetime(time)
            ])?;
        }
    }
    Ok(queued)
}

/// Whether a change is this replica's own: a device edit by its user (on its device, when it
/// has one) — what it may send, and send again.
pub(crate) fn is_own(claim: &shikong_crdt::ChangeClaim, info: &ReplicaInfo) -> bool {
    claim.device_edit
        && claim.user.as_deref() == Some(info.user.as_str())
        && (info.device.is_none() || claim.device == info.device)
}

/// Queues the changes refused as `missing-dependencies` again: they build on changes another
/// device has yet to send (again, after a restore), so every sync tries them once more; the
/// server merges what it can each time.
pub(crate) fn retry_missing_dependencies(conn: &Connection) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE sk_outbox SET status = 'pending', error_code = NULL, reason = NULL \
         WHERE status = 'rejected' AND error_code = 'missing-dependencies'",
        [],
    )?)
}

/// A new writer id for the replica's edits from now on. The server lost some of the replica's
/// changes, and other devices may still hold them: a new change under the old id could take a
/// sequence number one of those already has, which automerge refuses to merge.
pub(crate) fn fresh_actor(conn: &Connection) -> Result<shikong_crdt::Actor> {
    let actor = shikong_crdt::Actor::random();
    format::set_meta(conn, key::ACTOR, Some(&actor.to_string()))?;
    Ok(actor)
}

/// The server went back in time: queue the replica's own changes again and pull from the start.
pub(crate) fn restart(conn: &Connection, info: &ReplicaInfo) -> Result<usize> {
    let queued = requeue_own(conn, info)?;
    format::set_meta(conn, key::CURSOR, Some(shikong_protocol::RESTART_CURSOR))?;
    Ok(queued)
}
