//! The sync bookkeeping and the audit outbox on PostgreSQL: entities' CRDT documents
//! (`sk_sync_docs`, bytea), replicas (`sk_replicas`), attachments' records (`sk_blobs`; the bytes
//! stay in the data folder's blob directory, as with SQLite), their layer references
//! (`sk_blob_refs`), the conflict index (`sk_conflicts`) and `sk_audit_outbox` — in the store's
//! database, so that one transaction writes versions, documents and audit records together.

use std::collections::HashSet;

use super::PgStore;
use super::tx::PgTx;
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{Outbox, SyncBookkeeping, SyncBookkeepingTx};

impl SyncBookkeeping for PgStore {
    fn sync_doc(&self, layer: &str, id: EntityId) -> Result<Option<(i64, Vec<u8>)>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT version, doc FROM sk_sync_docs WHERE layer = $1 AND entity_id = $2",
                &[&layer, &id.0],
            )?
            .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn sync_docs(&self, layer: &str, ids: &[EntityId]) -> Result<std::collections::HashMap<EntityId, (i64, Vec<u8>)>> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        self.read(|c| {
            Ok(c.query(
                "SELECT entity_id, version, doc FROM sk_sync_docs WHERE layer = $1 AND entity_id = ANY ($2)",
                &[&layer, &ids],
            )?
            .iter()
            .map(|r| (EntityId(r.get(0)), (r.get(1), r.get(2))))
            .collect())
        })
    }

    fn sync_doc_ids(&self, layer: &str) -> Result<HashSet<EntityId>> {
        self.read(|c| {
            Ok(c.query("SELECT entity_id FROM sk_sync_docs WHERE layer = $1", &[&layer])?
                .iter()
                .map(|r| EntityId(r.get(0)))
                .collect())
        })
    }

    fn replica(&self, id: ReplicaId) -> Result<Option<ReplicaRecord>> {
        let row = self.read(|c| {
            c.query_opt("SELECT name, author, device, layers, area, created_tx FROM sk_replicas WHERE id = $1", &[&id])
        })?;
        let Some(r) = row else { return Ok(None) };
        let layers: String = r.try_get(3)?;
        let layers: Vec<String> =
            serde_json::from_str(&layers).map_err(|e| StoreError::Corrupt(format!("replica {id} layers: {e}")))?;
        Ok(Some(ReplicaRecord {
            id,
            name: r.try_get(0)?,
            author: r.try_get(1)?,
            device: r.try_get(2)?,
            layers,
            area: r.try_get(4)?,
            created_tx: TxId(r.try_get(5)?),
        }))
    }

    fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let row = self.read(|c| {
            c.query_opt("SELECT size, mime, evidence, uploaded_by FROM sk_blobs WHERE sha256 = $1", &[&sha256])
        })?;
        let Some(r) = row else { return Ok(None) };
        let evidence: String = r.try_get(2)?;
        Ok(Some(BlobRecord {
            sha256: sha256.to_owned(),
            size: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
            mime: r.try_get(1)?,
            evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null),
            uploaded_by: r.try_get(3)?,
        }))
    }

    fn blob_layers(&self, sha256: &str) -> Result<Vec<String>> {
        self.read(|c| {
            Ok(c.query("SELECT layer FROM sk_blob_refs WHERE sha256 = $1 ORDER BY layer", &[&sha256])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn open_conflicts(&self, f: &ConflictFilter) -> Result<Vec<ConflictEntry>> {
        let (after_layer, after_id) = match &f.after {
            Some((l, id)) => (Some(l.clone()), Some(id.0)),
            None => (None, None),
        };
        let rows = self.read(|c| {
            c.query(
                "SELECT layer, entity_id, conflicts, authors, opened_us FROM sk_conflicts \
                 WHERE ($1::text IS NULL OR layer = $1) \
                   AND ($2::text IS NULL OR $2 = ANY (authors)) \
                   AND ($3::bigint IS NULL OR opened_us >= $3) \
                   AND ($4::text IS NULL OR (layer, entity_id) > ($4, $5::uuid)) \
                 ORDER BY layer, entity_id LIMIT $6",
                &[
                    &f.layer,
                    &f.author,
                    &f.since.map(|t| t.as_microsecond()),
                    &after_layer,
                    &after_id,
                    &i64::try_from(f.limit).unwrap_or(i64::MAX),
                ],
            )
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let layer: String = r.try_get(0)?;
            let entity = EntityId(r.try_get(1)?);
            let corrupt = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("conflict index entry {layer}/{entity}: {what}: {e}"))
            };
            let conflicts: i32 = r.try_get(2)?;
            let opened: i64 = r.try_get(4)?;
            out.push(ConflictEntry {
                entity,
                conflicts: u32::try_from(conflicts).map_err(|e| corrupt("count", &e))?,
                authors: r.try_get(3)?,
                opened: jiff::Timestamp::from_microsecond(opened).map_err(|e| corrupt("opened", &e))?,
                layer,
            });
        }
        Ok(out)
    }
}

impl SyncBookkeepingTx for PgTx<'_> {
    fn put_sync_doc(&mut self, layer: &str, id: EntityId, version: i64, doc: &[u8]) -> Result<()> {
        // Queued (`deferred.rs`): written with the others of the batch.
        let r = self.bookkeeping(|b| b.put_doc(layer, id.0, version, doc));
        self.guard(r)?;
        self.wrote_other(); // the transaction has content even if no version was written
        Ok(())
    }

    fn put_conflicts(&mut self, layer: &str, id: EntityId, conflicts: u32, authors: &[String]) -> Result<()> {
        let count = i32::try_from(conflicts).unwrap_or(i32::MAX);
        let r = self.bookkeeping(|b| b.put_conflicts(layer, id.0, count, authors));
        self.guard(r)?;
        self.wrote_other();
        Ok(())
    }

    fn put_replica(&mut self, r: &ReplicaRecord) -> Result<()> {
        let res = self
            .writer()
            .and_then(|(c, _)| {
                c
            .execute(
                "INSERT INTO sk_replicas (id, name, author, device, layers, area, created_tx) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, layers = excluded.layers, area = excluded.area",
                &[
                    &r.id,
                    &r.name,
                    &r.author,
                    &r.device,
                    &serde_json::to_string(&r.layers).unwrap_or_default(),
                    &r.area,
                    &r.created_tx.0,
                ],
            )
            .map(|_| ())
            });
        self.guard(res)?;
        self.wrote_other();
        Ok(())
    }

    fn put_blob(&mut self, b: &BlobRecord) -> Result<()> {
        let r = self.writer().and_then(|(c, tx)| {
            c.execute(
                "INSERT INTO sk_blobs (sha256, size, mime, evidence, uploaded_by, uploaded_tx) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT DO NOTHING",
                &[
                    &b.sha256,
                    &i64::try_from(b.size).unwrap_or(i64::MAX),
                    &b.mime,
                    &b.evidence.to_string(),
                    &b.uploaded_by,
                    &tx.0,
                ],
            )
            .map(|_| ())
        });
        self.guard(r)?;
        self.wrote_other();
        Ok(())
    }
}

impl Outbox for PgStore {
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.read(|c| {
            c.query(
                "SELECT id, tx, payload FROM sk_audit_outbox ORDER BY tx, seq LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )?
            .iter()
            .map(|r| Ok(OutboxEntry { id: r.try_get(0)?, tx: TxId(r.try_get(1)?), payload: r.try_get(2)? }))
            .collect()
        })
    }

    fn outbox_delivered(&self, ids: &[uuid::Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // No writer lock: deleting delivered records orders nothing in the journal.
        let mut c = self.conn()?;
        c.execute("DELETE FROM sk_audit_outbox WHERE id = ANY ($1)", &[&ids])?;
        Ok(())
    }
}
