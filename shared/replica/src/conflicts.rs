//! Open conflicts (`sk_conflicts`): recomputed from an entity's document whenever the document
//! changes here (edit, merge of a pull, adoption of a push answer), so the list always says what
//! the documents say, and read back as the protocol's [`Conflict`] for the apps.

use rusqlite::{Connection, params};
use serde_json::Value as Json;
use shikong_crdt::{ConflictSide, ConflictValueKind, EntityDoc};
use shikong_model::EntityId;
use shikong_protocol::{Conflict, ConflictKind, ConflictValue};

use crate::error::{ReplicaError, Result};
use crate::format::ReplicaLayer;
use crate::replica::Replica;

fn side(s: &ConflictSide) -> ConflictValue {
    let value = match &s.value {
        ConflictValueKind::Value(v) => crate::codec::value_json(v),
        ConflictValueKind::Geometry(Some(g)) => shikong_model::geojson::to_json(g),
        ConflictValueKind::Geometry(None) | ConflictValueKind::Absent => Json::Null,
        ConflictValueKind::Deleted(b) => Json::Bool(*b),
    };
    ConflictValue {
        value,
        user: s.user.clone(),
        device: s.device.clone(),
        time: s.time.map(shikong_model::time::beijing),
    }
}

fn kind_name(k: ConflictKind) -> &'static str {
    match k {
        ConflictKind::Field => "field",
        ConflictKind::DeletedWhileEdited => "deleted-while-edited",
    }
}

/// Replaces the recorded conflicts of `id` with those of `doc` (none without a document).
pub(crate) fn refresh(conn: &Connection, layer: &ReplicaLayer, id: EntityId, doc: Option<&EntityDoc>) -> Result<()> {
    conn.prepare_cached("DELETE FROM sk_conflicts WHERE entity_id = ?1")?.execute([id.to_string()])?;
    let Some(doc) = doc else { return Ok(()) };
    let crdt = |source| ReplicaError::Crdt { layer: layer.name.clone(), feature: id.to_string(), source };
    let conflicts = doc.conflicts(&layer.schema).map_err(crdt)?;
    if conflicts.is_empty() {
        return Ok(());
    }
    let code = doc.state(&layer.schema).map_err(crdt)?.feature.code;
    let mut insert = conn.prepare_cached(
        "INSERT INTO sk_conflicts (layer, entity_id, code, kind, attribute, winner, others) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for c in conflicts {
        let kind = match c.kind {
            shikong_crdt::ConflictKind::Field => ConflictKind::Field,
            shikong_crdt::ConflictKind::DeletedWhileEdited => ConflictKind::DeletedWhileEdited,
        };
        let others: Vec<ConflictValue> = c.others.iter().map(side).collect();
        insert.execute(params![
            layer.name,
            id.to_string(),
            code,
            kind_name(kind),
            c.attribute,
            serde_json::to_string(&side(&c.winner)).unwrap_or_default(),
            serde_json::to_string(&others).unwrap_or_default(),
        ])?;
    }
    Ok(())
}

impl Replica {
    /// Open conflicts on this replica's entities, by layer and code.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut stmt = self.conn.prepare(
            "SELECT layer, entity_id, code, kind, attribute, winner, others FROM sk_conflicts ORDER BY layer, code, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (layer, entity, code, kind, field, winner, others) = row?;
            let corrupt = |what: &str| ReplicaError::Corrupt(format!("sk_conflicts of {entity}: {what}"));
            out.push(Conflict {
                entity: entity.parse().map_err(|_| corrupt("entity id"))?,
                layer,
                code,
                kind: match kind.as_str() {
                    "field" => ConflictKind::Field,
                    "deleted-while-edited" => ConflictKind::DeletedWhileEdited,
                    _ => return Err(corrupt("kind")),
                },
                field,
                winner: serde_json::from_str(&winner).map_err(|_| corrupt("winner"))?,
                others: serde_json::from_str(&others).map_err(|_| corrupt("others"))?,
            });
        }
        Ok(out)
    }
}
