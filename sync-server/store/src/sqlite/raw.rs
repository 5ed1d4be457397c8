//! The SQLite side of a store copy ([`crate::copy`]): every row out of one read snapshot, and
//! every row into an empty store in one `BEGIN IMMEDIATE` transaction on the writer connection,
//! with row keys (`fid`, `hid`, the documents' and outbox's rowids) kept as they were.
//!
//! The layers' GeoPackage R-tree triggers are dropped while their rows arrive and the R-trees
//! rebuilt once at the end (as a bulk load does); the history R-trees are written row by row.

use std::collections::HashMap;
use std::sync::MutexGuard;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params, params_from_iter};
use shikong_gpkg::quote_ident;
use shikong_model::{Bbox, TxId, ValidTime, gpkg_blob};

use super::SqliteStore;
use super::codec;
use super::group::WriterConn;
use super::layers::{self, hist_rtree, hist_table};
use super::read;
use crate::copy::*;
use crate::error::{Result, StoreError};
use crate::types::*;

fn count(conn: &Connection, table: &str) -> Result<u64> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote_ident(table)), [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Sends `rows` in batches of [`BATCH_ROWS`], each made by `wrap`.
struct Batcher<'a, T> {
    rows: Vec<T>,
    sink: &'a mut dyn FnMut(RawBatch) -> Result<()>,
}

impl<'a, T> Batcher<'a, T> {
    fn new(sink: &'a mut dyn FnMut(RawBatch) -> Result<()>) -> Self {
        Batcher { rows: Vec::with_capacity(BATCH_ROWS), sink }
    }

    fn push(&mut self, row: T, wrap: &dyn Fn(Vec<T>) -> RawBatch) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush(wrap)?;
        }
        Ok(())
    }

    fn flush(&mut self, wrap: &dyn Fn(Vec<T>) -> RawBatch) -> Result<()> {
        if !self.rows.is_empty() {
            let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(BATCH_ROWS));
            (self.sink)(wrap(rows))?;
        }
        Ok(())
    }
}

/// Streams the rows of `sql` (no parameters) through `decode` into batches made by `wrap`.
fn stream<T>(
    conn: &Connection,
    sql: &str,
    sink: &mut dyn FnMut(RawBatch) -> Result<()>,
    decode: &dyn Fn(&rusqlite::Row<'_>) -> Result<T>,
    wrap: &dyn Fn(Vec<T>) -> RawBatch,
) -> Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut b = Batcher::new(sink);
    while let Some(r) = rows.next()? {
        crate::cancel::check()?;
        b.push(decode(r)?, wrap)?;
    }
    b.flush(wrap)
}

fn uuid_of(what: &str, s: &str) -> Result<uuid::Uuid> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{what} `{s}`: {e}")))
}

fn export(conn: &Connection, sink: &mut dyn FnMut(RawBatch) -> Result<()>) -> Result<()> {
    let all = layers::load_all(conn)?;
    let mut versions = 0;
    for l in &all {
        versions += count(conn, l.name())? + count(conn, &hist_table(l.name()))?;
    }
    let mut bookkeeping = 0;
    for t in ["sk_sync_docs", "sk_replicas", "sk_blobs", "sk_blob_refs", "sk_conflicts", "sk_audit_outbox"] {
        bookkeeping += count(conn, t)?;
    }
    sink(RawBatch::Start(CopyTotals {
        transactions: count(conn, "sk_transactions")?,
        layers: all.len() as u64,
        versions,
        bookkeeping,
    }))?;
    let meta = conn
        .prepare("SELECT key, value FROM sk_meta WHERE key IN ('store_id', 'created_at') ORDER BY key")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    sink(RawBatch::Meta(meta))?;
    stream(
        conn,
        "SELECT tx, time_us, author, device, device_time, source, replica FROM sk_transactions ORDER BY tx",
        sink,
        &|r| {
            let tx = TxId(r.get(0)?);
            Ok(TxRecord {
                tx,
                time: codec::micros_to_ts(r.get(1)?),
                author: r.get(2)?,
                device: r.get(3)?,
                device_time: r.get(4)?,
                source: r.get(5)?,
                replica: r.get::<_, Option<String>>(6)?.map(|s| uuid_of("transaction replica", &s)).transpose()?,
            })
        },
        &RawBatch::Transactions,
    )?;
    for layer in all {
        let name = layer.name().to_owned();
        let (next_field_id, next_code): (i64, i64) =
            conn.query_row("SELECT next_field_id, next_code FROM sk_layers WHERE name = ?1", [&name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let schema_history = conn
            .prepare("SELECT tx, schema FROM sk_schema_history WHERE layer = ?1 ORDER BY tx")?
            .query_map([&name], |r| Ok((TxId(r.get(0)?), r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(TxId, String)>>>()?;
        sink(RawBatch::Layer(Box::new(RawLayer {
            def: layer.def.clone(),
            srs_id: layer.srs_id,
            created_tx: layer.created_tx,
            extent: layer.extent,
            next_field_id,
            next_code,
            schema_history,
        })))?;
        let live = |r: &rusqlite::Row<'_>| -> Result<RawLive> {
            let c = read::decode_current(&layer, r)?;
            Ok(RawLive { fid: c.fid, feature: c.feature, version: c.version, tx: c.tx, device_time: c.device_time })
        };
        let n = name.clone();
        stream(conn, &format!("{} ORDER BY t.fid", read::current_select(&layer, "")), sink, &live, &move |rows| {
            RawBatch::Live(n.clone(), rows)
        })?;
        let hist = |r: &rusqlite::Row<'_>| -> Result<RawHist> {
            let hid: i64 = r.get(0)?;
            let at = format!("history row {hid}");
            let time = |i: usize| -> Result<Option<jiff::Timestamp>> {
                codec::time_from_sql(r.get_ref(i)?).map_err(|e| read::corrupt(&layer, format!("{at}: {e}")))
            };
            let op = match r.get::<_, String>(3)?.as_str() {
                "insert" => Op::Insert,
                "update" => Op::Update,
                _ => Op::Delete,
            };
            Ok(RawHist {
                hid,
                entity: read::entity_id(&layer, &r.get::<_, String>(1)?)?,
                version: r.get(2)?,
                op,
                tx_from: TxId(r.get(4)?),
                tx_to: r.get::<_, Option<i64>>(5)?.map(TxId),
                code: r.get(6)?,
                geometry: read::geometry(&layer, r.get_ref(7)?, &at)?,
                valid: ValidTime { from: time(8)?, to: time(9)? },
                device_time: time(10)?,
                props: r.get(11)?,
            })
        };
        let n = name.clone();
        stream(
            conn,
            &format!(
                "SELECT hid, entity_id, version, op, tx_from, tx_to, code, geom, valid_from, valid_to, device_time, props \
                 FROM {} ORDER BY hid",
                quote_ident(&hist_table(&name))
            ),
            sink,
            &hist,
            &move |rows| RawBatch::Hist(n.clone(), rows),
        )?;
    }
    stream(
        conn,
        "SELECT rowid, layer, entity_id, version, doc, tx FROM sk_sync_docs ORDER BY rowid",
        sink,
        &|r| {
            Ok(RawSyncDoc {
                seq: r.get(0)?,
                layer: r.get(1)?,
                entity: EntityId(uuid_of("sync document entity", &r.get::<_, String>(2)?)?),
                version: r.get(3)?,
                doc: r.get(4)?,
                tx: TxId(r.get(5)?),
            })
        },
        &RawBatch::SyncDocs,
    )?;
    stream(
        conn,
        "SELECT id, name, author, device, layers, area, created_tx FROM sk_replicas ORDER BY id",
        sink,
        &|r| {
            let id = uuid_of("replica id", &r.get::<_, String>(0)?)?;
            let layers: String = r.get(4)?;
            Ok(ReplicaRecord {
                id,
                name: r.get(1)?,
                author: r.get(2)?,
                device: r.get(3)?,
                layers: serde_json::from_str(&layers)
                    .map_err(|e| StoreError::Corrupt(format!("replica {id} layers: {e}")))?,
                area: r.get(5)?,
                created_tx: TxId(r.get(6)?),
            })
        },
        &RawBatch::Replicas,
    )?;
    stream(
        conn,
        "SELECT sha256, size, mime, evidence, uploaded_by, uploaded_tx FROM sk_blobs ORDER BY sha256",
        sink,
        &|r| {
            let evidence: String = r.get(3)?;
            Ok(RawBlob {
                record: BlobRecord {
                    sha256: r.get(0)?,
                    size: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    mime: r.get(2)?,
                    evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null),
                    uploaded_by: r.get(4)?,
                },
                uploaded_tx: TxId(r.get(5)?),
            })
        },
        &RawBatch::Blobs,
    )?;
    stream(
        conn,
        "SELECT sha256, layer FROM sk_blob_refs ORDER BY sha256, layer",
        sink,
        &|r| Ok((r.get(0)?, r.get(1)?)),
        &RawBatch::BlobRefs,
    )?;
    stream(
        conn,
        "SELECT layer, entity_id, conflicts, authors, opened_us, tx FROM sk_conflicts ORDER BY layer, entity_id",
        sink,
        &|r| {
            let layer: String = r.get(0)?;
            let id: String = r.get(1)?;
            let authors: String = r.get(3)?;
            let corrupt = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("conflict index entry {layer}/{id}: {what}: {e}"))
            };
            Ok(RawConflict {
                entry: ConflictEntry {
                    entity: EntityId(uuid_of("conflict entity", &id)?),
                    conflicts: u32::try_from(r.get::<_, i64>(2)?).map_err(|e| corrupt("count", &e))?,
                    authors: serde_json::from_str(&authors).map_err(|e| corrupt("authors", &e))?,
                    opened: jiff::Timestamp::from_microsecond(r.get(4)?).map_err(|e| corrupt("opened", &e))?,
                    layer: layer.clone(),
                },
                tx: TxId(r.get(5)?),
            })
        },
        &RawBatch::Conflicts,
    )?;
    stream(
        conn,
        "SELECT rowid, id, tx, payload FROM sk_audit_outbox ORDER BY rowid",
        sink,
        &|r| {
            Ok(RawOutbox {
                seq: r.get(0)?,
                entry: OutboxEntry {
                    id: uuid_of("outbox record id", &r.get::<_, String>(1)?)?,
                    tx: TxId(r.get(2)?),
                    payload: r.get(3)?,
                },
            })
        },
        &RawBatch::Outbox,
    )
}

/// What a store already holds, in words (`None` when empty).
pub(super) fn holdings(counts: &[(&str, u64)]) -> Option<String> {
    let parts: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(what, n)| format!("{n} {what}")).collect();
    if parts.is_empty() { None } else { Some(parts.join(", ")) }
}

fn check_empty(conn: &Connection, shown: &str) -> Result<()> {
    let counts = [
        ("layers", count(conn, "sk_layers")?),
        ("transactions", count(conn, "sk_transactions")?),
        ("sync documents", count(conn, "sk_sync_docs")?),
        ("replicas", count(conn, "sk_replicas")?),
        ("attachment records", count(conn, "sk_blobs")?),
        ("outbox records", count(conn, "sk_audit_outbox")?),
        ("conflict entries", count(conn, "sk_conflicts")?),
    ];
    match holdings(&counts) {
        None => Ok(()),
        Some(holds) => Err(StoreError::DestinationNotEmpty { store: shown.to_owned(), holds }),
    }
}

impl RawCopy for SqliteStore {
    fn raw_export(&self, sink: &mut dyn FnMut(RawBatch) -> Result<()>) -> Result<()> {
        let reader = self.reader()?;
        // One read transaction: every row from one WAL snapshot.
        let snapshot = reader.unchecked_transaction()?;
        export(&snapshot, sink)?;
        snapshot.commit()?;
        Ok(())
    }

    fn raw_import(&self) -> Result<Box<dyn RawWriter + '_>> {
        let conn = self.writer();
        conn.execute_batch("BEGIN IMMEDIATE;")?;
        let w = SqliteRawWriter { conn, layers: HashMap::new(), open: true };
        check_empty(&w.conn, &self.path.display().to_string())?;
        Ok(Box::new(w))
    }
}

struct SqliteRawWriter<'s> {
    conn: MutexGuard<'s, WriterConn>,
    /// Layers written so far, with their live table's insert statement.
    layers: HashMap<String, (Layer, String)>,
    open: bool,
}

impl Drop for SqliteRawWriter<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK;");
        }
    }
}

fn time(t: Option<jiff::Timestamp>) -> Sql {
    codec::time_to_sql(t)
}

impl SqliteRawWriter<'_> {
    fn layer(&mut self, raw: RawLayer) -> Result<()> {
        let conn: &Connection = &self.conn;
        let name = raw.def.name.clone();
        let layer = layers::create(conn, raw.def, raw.created_tx)?;
        conn.execute(
            "UPDATE sk_layers SET next_field_id = ?2, next_code = ?3, srs_id = ?4 WHERE name = ?1",
            params![name, raw.next_field_id, raw.next_code, raw.srs_id],
        )?;
        conn.execute("DELETE FROM sk_schema_history WHERE layer = ?1", [&name])?;
        let mut st = conn.prepare_cached("INSERT INTO sk_schema_history (layer, tx, schema) VALUES (?1, ?2, ?3)")?;
        for (tx, schema) in &raw.schema_history {
            st.execute(params![name, tx.0, schema])?;
        }
        if let Some(Bbox { min_x, min_y, max_x, max_y }) = raw.extent {
            conn.execute(
                "UPDATE gpkg_contents SET min_x = ?2, min_y = ?3, max_x = ?4, max_y = ?5 WHERE table_name = ?1",
                params![name, min_x, min_y, max_x, max_y],
            )?;
        }
        // The R-tree is rebuilt once at the end instead of by a trigger per row.
        shikong_gpkg::drop_rtree_triggers(conn, &name, "geom")?;
        let mut cols = vec!["fid".to_owned(), "geom".to_owned()];
        cols.extend(layers::SYSTEM_COLUMNS.iter().map(|c| (*c).to_owned()));
        cols.extend(layer.schema().fields.iter().map(|f| quote_ident(&f.name)));
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", quote_ident(&name), cols.join(", "), marks.join(", "));
        self.layers.insert(name, (Layer { srs_id: raw.srs_id, ..layer }, sql));
        Ok(())
    }

    fn known(&self, name: &str) -> Result<&(Layer, String)> {
        self.layers
            .get(name)
            .ok_or_else(|| StoreError::Corrupt(format!("copy: rows of layer `{name}` before the layer")))
    }

    fn live(&self, name: &str, rows: Vec<RawLive>) -> Result<()> {
        let (layer, sql) = self.known(name)?;
        let mut st = self.conn.prepare_cached(sql)?;
        for r in rows {
            let f = &r.feature;
            let mut v = Vec::with_capacity(9 + layer.schema().fields.len());
            v.push(Sql::Integer(r.fid));
            v.push(f.geometry.as_ref().map_or(Sql::Null, |g| Sql::Blob(gpkg_blob::encode(g, layer.srs_id))));
            v.push(Sql::Text(f.id.to_string()));
            v.push(Sql::Text(f.code.clone()));
            v.push(time(f.valid.from));
            v.push(time(f.valid.to));
            v.push(Sql::Integer(r.version));
            v.push(Sql::Integer(r.tx.0));
            v.push(time(r.device_time));
            for field in &layer.schema().fields {
                v.push(f.properties.get(&field.name).map_or(Sql::Null, codec::to_sql));
            }
            st.execute(params_from_iter(v))?;
        }
        Ok(())
    }

    fn hist(&self, name: &str, rows: Vec<RawHist>) -> Result<()> {
        let (layer, _) = self.known(name)?;
        let mut st = self.conn.prepare_cached(&format!(
            "INSERT INTO {} (hid, entity_id, version, op, tx_from, tx_to, code, geom, valid_from, valid_to, device_time, props) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            quote_ident(&hist_table(name))
        ))?;
        let mut rt = self
            .conn
            .prepare_cached(&format!("INSERT INTO {} VALUES (?1, ?2, ?3, ?4, ?5)", quote_ident(&hist_rtree(name))))?;
        for r in rows {
            st.execute(params![
                r.hid,
                r.entity.to_string(),
                r.version,
                r.op.as_str(),
                r.tx_from.0,
                r.tx_to.map(|t| t.0),
                r.code,
                r.geometry.as_ref().map(|g| gpkg_blob::encode(g, layer.srs_id)),
                time(r.valid.from),
                time(r.valid.to),
                time(r.device_time),
                r.props
            ])?;
            if let Some(b) = r.geometry.as_ref().and_then(shikong_model::Geometry::bbox) {
                rt.execute(params![r.hid, b.min_x, b.max_x, b.min_y, b.max_y])?;
            }
        }
        Ok(())
    }
}

impl RawWriter for SqliteRawWriter<'_> {
    fn write(&mut self, batch: RawBatch) -> Result<()> {
        crate::cancel::check()?;
        let conn: &Connection = &self.conn;
        match batch {
            RawBatch::Start(_) => {}
            RawBatch::Meta(entries) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?;
                for (k, v) in entries.iter().filter(|(k, _)| k != "schema_version") {
                    st.execute(params![k, v])?;
                }
            }
            RawBatch::Transactions(txs) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_transactions (tx, time_us, author, device, device_time, source, replica) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for t in txs {
                    st.execute(params![
                        t.tx.0,
                        t.time.as_microsecond(),
                        t.author,
                        t.device,
                        t.device_time,
                        t.source,
                        t.replica.map(|r| r.to_string())
                    ])?;
                }
            }
            RawBatch::Layer(raw) => self.layer(*raw)?,
            RawBatch::Live(name, rows) => self.live(&name, rows)?,
            RawBatch::Hist(name, rows) => self.hist(&name, rows)?,
            RawBatch::SyncDocs(docs) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_sync_docs (rowid, layer, entity_id, version, doc, tx) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for d in docs {
                    st.execute(params![d.seq, d.layer, d.entity.to_string(), d.version, d.doc, d.tx.0])?;
                }
            }
            RawBatch::Replicas(rs) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_replicas (id, name, author, device, layers, area, created_tx) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for r in rs {
                    st.execute(params![
                        r.id.to_string(),
                        r.name,
                        r.author,
                        r.device,
                        serde_json::to_string(&r.layers).unwrap_or_default(),
                        r.area,
                        r.created_tx.0
                    ])?;
                }
            }
            RawBatch::Blobs(bs) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_blobs (sha256, size, mime, evidence, uploaded_by, uploaded_tx) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for b in bs {
                    let r = &b.record;
                    st.execute(params![
                        r.sha256,
                        i64::try_from(r.size).unwrap_or(i64::MAX),
                        r.mime,
                        r.evidence.to_string(),
                        r.uploaded_by,
                        b.uploaded_tx.0
                    ])?;
                }
            }
            RawBatch::BlobRefs(refs) => {
                let mut st =
                    conn.prepare_cached("INSERT OR IGNORE INTO sk_blob_refs (sha256, layer) VALUES (?1, ?2)")?;
                for (sha, layer) in refs {
                    st.execute(params![sha, layer])?;
                }
            }
            RawBatch::Conflicts(cs) => {
                let mut st = conn.prepare_cached(
                    "INSERT INTO sk_conflicts (layer, entity_id, conflicts, authors, opened_us, tx) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for c in cs {
                    let e = &c.entry;
                    st.execute(params![
                        e.layer,
                        e.entity.to_string(),
                        e.conflicts,
                        serde_json::to_string(&e.authors).unwrap_or_else(|_| "[]".into()),
                        e.opened.as_microsecond(),
                        c.tx.0
                    ])?;
                }
            }
            RawBatch::Outbox(es) => {
                let mut st = conn
                    .prepare_cached("INSERT INTO sk_audit_outbox (rowid, id, tx, payload) VALUES (?1, ?2, ?3, ?4)")?;
                for o in es {
                    st.execute(params![o.seq, o.entry.id.to_string(), o.entry.tx.0, o.entry.payload])?;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        for name in self.layers.keys() {
            shikong_gpkg::rebuild_rtree(&self.conn, name, "geom")?;
            shikong_gpkg::create_rtree_triggers(&self.conn, name, "geom")?;
        }
        self.open = false;
        if let Err(e) = self.conn.execute_batch("COMMIT;") {
            let _ = self.conn.execute_batch("ROLLBACK;");
            return Err(e.into());
        }
        Ok(())
    }
}
