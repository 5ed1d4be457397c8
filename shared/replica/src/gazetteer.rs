//! The gazetteer subset a replica carries (地名地址 offline): the address engine's snapshot for
//! the counties of the replica's area, stored as opaque bytes so this crate stays independent of
//! the engine. The table is optional: replicas cut without a gazetteer have none, and readers of
//! format 1 that predate it ignore it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::replica::Replica;
use crate::writer::ReplicaWriter;

/// The one-row table holding the snapshot (created on first write).
pub(crate) const DDL: &str = "CREATE TABLE IF NOT EXISTS sk_gazetteer (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  edition TEXT NOT NULL,
  tag TEXT NOT NULL,
  snapshot BLOB NOT NULL,
  updated_at TEXT NOT NULL
)";

/// A stored gazetteer snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GazetteerSnapshot {
    /// Which edition of the reference data it was built from.
    pub edition: String,
    /// The server's tag of this state of its gazetteer (an HTTP entity tag): a device asks for a
    /// new subset only when the server's differs.
    pub tag: String,
    pub bytes: Vec<u8>,
}

fn put(conn: &Connection, g: &GazetteerSnapshot) -> Result<()> {
    conn.execute_batch(DDL)?;
    conn.execute(
        "INSERT INTO sk_gazetteer (id, edition, tag, snapshot, updated_at) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET edition = excluded.edition, tag = excluded.tag, snapshot = excluded.snapshot,
         updated_at = excluded.updated_at",
        params![g.edition, g.tag, g.bytes, shikong_model::time::gpkg_datetime(jiff::Timestamp::now())],
    )?;
    Ok(())
}

impl ReplicaWriter {
    /// Stores the gazetteer subset of the replica's area.
    pub fn set_gazetteer(&mut self, g: &GazetteerSnapshot) -> Result<()> {
        put(&self.conn, g)
    }
}

impl Replica {
    /// The gazetteer subset this replica carries, if any.
    pub fn gazetteer(&self) -> Result<Option<GazetteerSnapshot>> {
        let has = self
            .conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sk_gazetteer'", [], |_| Ok(()))
            .optional()?
            .is_some();
        if !has {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row("SELECT edition, tag, snapshot FROM sk_gazetteer WHERE id = 1", [], |r| {
                Ok(GazetteerSnapshot { edition: r.get(0)?, tag: r.get(1)?, bytes: r.get(2)? })
            })
            .optional()?)
    }

    /// Replaces the gazetteer subset (a refreshed one from the server).
    pub fn set_gazetteer(&self, g: &GazetteerSnapshot) -> Result<()> {
        put(&self.conn, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_then_stored_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.gpkg");
        let info = crate::ReplicaInfo {
            id: uuid::Uuid::now_v7(),
            name: None,
            server_url: "http://127.0.0.1:1".into(),
            user: "u".into(),
            device: None,
            area: None,
            created_at: jiff::Timestamp::now(),
        };
        let w = ReplicaWriter::create(&path, &info, &[]).unwrap();
        w.finish("0").unwrap();
        let r = Replica::open(&path).unwrap();
        assert_eq!(r.gazetteer().unwrap(), None);
        let snap =
            |e: &str, t: &str, b: &[u8]| GazetteerSnapshot { edition: e.into(), tag: t.into(), bytes: b.to_vec() };
        r.set_gazetteer(&snap("2023", "1", b"abc")).unwrap();
        r.set_gazetteer(&snap("2024", "2", b"defg")).unwrap();
        assert_eq!(r.gazetteer().unwrap().unwrap(), snap("2024", "2", b"defg"));
        // GDAL still reads the file: the table is not registered and breaks nothing.
        let mut w = ReplicaWriter::create(dir.path().join("s.gpkg"), &info, &[]).unwrap();
        w.set_gazetteer(&snap("2023", "1", b"xyz")).unwrap();
        let p = w.finish("0").unwrap();
        assert_eq!(Replica::open(p).unwrap().gazetteer().unwrap().unwrap().bytes, b"xyz");
    }
}
