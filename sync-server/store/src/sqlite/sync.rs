//! The sync bookkeeping on SQLite: entities' CRDT documents (`sk_sync_docs`), replicas cut for
//! devices (`sk_replicas`) and attachments' records (`sk_blobs`), in the store's own file so that
//! one transaction writes versions and documents together. The change feed (`read.rs`) reads
//! `sk_sync_docs.tx` to list document-only changes. `sk_blob_refs` records which layers reference
//! each attachment, written by every feature write (`tx.rs`) in its transaction. `sk_conflicts`
//! indexes the entities whose documents hold open conflicts (migration 7), written by the merges
//! and resolutions that change them.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use shikong_gpkg::quote_ident;
use shikong_model::{Feature, Value};

use super::SqliteStore;
use super::layers::hist_table;
use super::tx::SqliteTx;
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{SyncBookkeeping, SyncBookkeepingTx};

impl SyncBookkeeping for SqliteStore {
    fn sync_doc(&self, layer: &str, id: EntityId) -> Result<Option<(i64, Vec<u8>)>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT version, doc FROM sk_sync_docs WHERE layer = ?1 AND entity_id = ?2",
                params![layer, id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn sync_docs(&self, layer: &str, ids: &[EntityId]) -> Result<std::collections::HashMap<EntityId, (i64, Vec<u8>)>> {
        // One reader and one prepared statement for a push's whole batch.
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT version, doc FROM sk_sync_docs WHERE layer = ?1 AND entity_id = ?2")?;
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(d) =
                stmt.query_row(params![layer, id.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?
            {
                out.insert(*id, d);
            }
        }
        Ok(out)
    }

    fn sync_doc_ids(&self, layer: &str) -> Result<HashSet<EntityId>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT entity_id FROM sk_sync_docs WHERE layer = ?1")?;
        let ids = stmt.query_map([layer], |r| r.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for id in ids {
            let id = id?;
            out.insert(id.parse().map_err(|e| StoreError::Corrupt(format!("sync doc entity id `{id}`: {e}")))?);
        }
        Ok(out)
    }

    fn replica(&self, id: ReplicaId) -> Result<Option<ReplicaRecord>> {
        type Row = (Option<String>, String, Option<String>, String, Option<String>, i64);
        let row: Option<Row> = self
            .reader()?
            .query_row(
                "SELECT name, author, device, layers, area, created_tx FROM sk_replicas WHERE id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        let Some((name, author, device, layers, area, created_tx)) = row else { return Ok(None) };
        let layers: Vec<String> =
            serde_json::from_str(&layers).map_err(|e| StoreError::Corrupt(format!("replica {id} layers: {e}")))?;
        Ok(Some(ReplicaRecord { id, name, author, device, layers, area, created_tx: TxId(created_tx) }))
    }

    fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let row: Option<(i64, String, String, String)> = self
            .reader()?
            .query_row("SELECT size, mime, evidence, uploaded_by FROM sk_blobs WHERE sha256 = ?1", [sha256], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        Ok(row.map(|(size, mime, evidence, uploaded_by)| BlobRecord {
            sha256: sha256.to_owned(),
            size: u64::try_from(size).unwrap_or(0),
            mime,
            evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null),
            uploaded_by,
        }))
    }

    fn blob_layers(&self, sha256: &str) -> Result<Vec<String>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT layer FROM sk_blob_refs WHERE sha256 = ?1 ORDER BY layer")?;
        let layers = stmt.query_map([sha256], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(layers)
    }

    fn open_conflicts(&self, f: &ConflictFilter) -> Result<Vec<ConflictEntry>> {
        let conn = self.reader()?;
        let (after_layer, after_id) = match &f.after {
            Some((l, id)) => (Some(l.as_str()), Some(id.to_string())),
            None => (None, None),
        };
        let mut stmt = conn.prepare_cached(
            "SELECT layer, entity_id, conflicts, authors, opened_us FROM sk_conflicts c \
             WHERE (?1 IS NULL OR layer = ?1) \
               AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(c.authors) a WHERE a.value = ?2)) \
               AND (?3 IS NULL OR opened_us >= ?3) \
               AND (?4 IS NULL OR (layer, entity_id) > (?4, ?5)) \
             ORDER BY layer, entity_id LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                f.layer,
                f.author,
                f.since.map(|t| t.as_microsecond()),
                after_layer,
                after_id,
                i64::try_from(f.limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (layer, id, conflicts, authors, opened) = row?;
            let corrupt = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("conflict index entry {layer}/{id}: {what}: {e}"))
            };
            out.push(ConflictEntry {
                entity: id.parse().map_err(|e| corrupt("entity id", &e))?,
                conflicts: u32::try_from(conflicts).map_err(|e| corrupt("count", &e))?,
                authors: serde_json::from_str(&authors).map_err(|e| corrupt("authors", &e))?,
                opened: jiff::Timestamp::from_microsecond(opened).map_err(|e| corrupt("opened", &e))?,
                layer,
            });
        }
        Ok(out)
    }
}

impl SyncBookkeepingTx for SqliteTx<'_> {
    fn put_sync_doc(&mut self, layer: &str, id: EntityId, version: i64, doc: &[u8]) -> Result<()> {
        let (conn, tx) = self.writer();
        conn.prepare_cached(
            "INSERT INTO sk_sync_docs (layer, entity_id, version, doc, tx) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (layer, entity_id) DO UPDATE SET version = excluded.version, doc = excluded.doc, tx = excluded.tx",
        )?
        .execute(params![layer, id.to_string(), version, doc, tx.0])?;
        self.wrote_other(); // the transaction has content even if no version was written
        Ok(())
    }

    fn put_conflicts(&mut self, layer: &str, id: EntityId, conflicts: u32, authors: &[String]) -> Result<()> {
        let (_, at) = crate::StoreTx::id(self);
        let (conn, tx) = self.writer();
        if conflicts == 0 {
            conn.prepare_cached("DELETE FROM sk_conflicts WHERE layer = ?1 AND entity_id = ?2")?
                .execute(params![layer, id.to_string()])?;
        } else {
            let mut authors = authors.to_vec();
            authors.sort();
            authors.dedup();
            conn.prepare_cached(
                "INSERT INTO sk_conflicts (layer, entity_id, conflicts, authors, opened_us, tx) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (layer, entity_id) DO UPDATE SET conflicts = excluded.conflicts, \
                 authors = excluded.authors, tx = excluded.tx",
            )?
            .execute(params![
                layer,
                id.to_string(),
                conflicts,
                serde_json::to_string(&authors).unwrap_or_else(|_| "[]".into()),
                at.as_microsecond(),
                tx.0
            ])?;
        }
        self.wrote_other();
        Ok(())
    }

    fn put_replica(&mut self, r: &ReplicaRecord) -> Result<()> {
        let (conn, _) = self.writer();
        conn.execute(
            "INSERT INTO sk_replicas (id, name, author, device, layers, area, created_tx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, layers = excluded.layers, area = excluded.area",
            params![
                r.id.to_string(),
                r.name,
                r.author,
                r.device,
                serde_json::to_string(&r.layers).unwrap_or_default(),
                r.area,
                r.created_tx.0
            ],
        )?;
        self.wrote_other();
        Ok(())
    }

    fn put_blob(&mut self, b: &BlobRecord) -> Result<()> {
        let (conn, tx) = self.writer();
        conn.execute(
            "INSERT OR IGNORE INTO sk_blobs (sha256, size, mime, evidence, uploaded_by, uploaded_tx) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                b.sha256,
                i64::try_from(b.size).unwrap_or(i64::MAX),
                b.mime,
                b.evidence.to_string(),
                b.uploaded_by,
                tx.0
            ],
        )?;
        self.wrote_other();
        Ok(())
    }
}

/// Records the attachments `f` references in `layer` (`sk_blob_refs`; see its migration).
pub(super) fn record_blob_refs(conn: &Connection, layer: &str, f: &Feature) -> Result<()> {
    for v in f.properties.values() {
        if let Value::Attachments(list) = v {
            let mut stmt = conn.prepare_cached("INSERT OR IGNORE INTO sk_blob_refs (sha256, layer) VALUES (?1, ?2)")?;
            for sha in list {
                stmt.execute(params![sha, layer])?;
            }
        }
    }
    Ok(())
}

/// Fills `sk_blob_refs` from what every layer already holds (current rows and history), once,
/// in the migration that creates it.
pub(super) fn backfill_blob_refs(conn: &Connection) -> rusqlite::Result<()> {
    let layers = super::layers::load_all(conn).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    for layer in layers {
        let name = layer.name();
        for field in layer.schema().fields.iter().filter(|f| f.ty == shikong_model::FieldType::Attachments) {
            let col = quote_ident(&field.name);
            let t = quote_ident(name);
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO sk_blob_refs (sha256, layer) \
                     SELECT DISTINCT j.value, ?1 FROM {t}, \
                     json_each(CASE WHEN json_valid({t}.{col}) THEN {t}.{col} ELSE '[]' END) j \
                     WHERE j.type = 'text'"
                ),
                [name],
            )?;
            let h = quote_ident(&hist_table(name));
            conn.execute(
                &format!(
                    "INSERT OR IGNORE INTO sk_blob_refs (sha256, layer) \
                     SELECT DISTINCT j.value, ?1 FROM {h}, json_each({h}.props, ?2) j WHERE j.type = 'text'"
                ),
                params![name, format!("$.\"{}\"", field.id)],
            )?;
        }
    }
    Ok(())
}
