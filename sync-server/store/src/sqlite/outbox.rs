//! The audit outbox on SQLite (`sk_audit_outbox`, migration 6): records written in a store
//! transaction for delivery to another database after the commit. Writing them in the store's
//! own transaction is what makes a write and its audit record durable together; the receiver
//! deletes a record only after it has recorded it (idempotently, by id), so a crash anywhere in
//! between delivers it again and never loses it.

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::Outbox;
use crate::error::{Result, StoreError};
use crate::types::{OutboxEntry, TxId};

pub(super) fn put(conn: &Connection, tx: TxId, id: uuid::Uuid, payload: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO sk_audit_outbox (id, tx, payload) VALUES (?1, ?2, ?3)")?.execute(params![
        id.to_string(),
        tx.0,
        payload
    ])?;
    Ok(())
}

impl Outbox for SqliteStore {
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let conn = self.reader()?;
        let mut st = conn.prepare_cached("SELECT id, tx, payload FROM sk_audit_outbox ORDER BY tx, rowid LIMIT ?1")?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tx, payload) = row?;
            let id = id.parse().map_err(|e| StoreError::Corrupt(format!("outbox record id `{id}`: {e}")))?;
            out.push(OutboxEntry { id, tx: TxId(tx), payload });
        }
        Ok(out)
    }

    fn outbox_delivered(&self, ids: &[uuid::Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Joins the open group commit without waiting for it: a deletion lost in a crash only
        // delivers a record again, which the receiver ignores by its id.
        let mut w = self.writer_grouped();
        self.durability.join(&mut w)?;
        let deleted = (|| {
            let mut st = w.prepare_cached("DELETE FROM sk_audit_outbox WHERE id = ?1")?;
            for id in ids {
                st.execute([id.to_string()])?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        match deleted {
            Ok(()) => {
                self.durability.release(&mut w)?;
            }
            Err(e) => {
                self.durability.abandon(&mut w);
                return Err(e.into());
            }
        }
        Ok(())
    }
}
