//! The PostgreSQL side of a store copy ([`crate::copy`]): every row out of one `REPEATABLE READ`
//! snapshot, streamed; every row into an empty store in one transaction holding the writer lock
//! (so no server process writes in between, and a failed copy leaves nothing behind).
//!
//! Rows go in as one `INSERT … SELECT … FROM unnest($1::bigint[], …)` per batch: one statement
//! and one parameter per column for thousands of rows. Row keys are kept (`OVERRIDING SYSTEM
//! VALUE` for the identity columns `fid`, `hid`, `seq`), and the identity sequences are moved
//! past the largest copied key at the end, so new rows sort after every copied one in the change
//! feed.

use std::collections::HashMap;

use jiff::Timestamp;
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator;
use serde_json::Value as Json;
use shikong_model::{EntityId, FieldType, TxId, ValidTime, Value};

use super::codec::{self, Param};
use super::journal::{TX_COLUMNS, decode_tx};
use super::layers::{self, column, hist, table};
use super::pool::Pooled;
use super::{PgConn, PgStore};
use crate::copy::*;
use crate::error::{Result, StoreError};
use crate::types::*;

fn count(c: &mut PgConn, quoted: &str) -> Result<u64> {
    let n: i64 = c.query_one(&format!("SELECT count(*) FROM {quoted}"), &[])?.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Streams the rows of `sql` through `decode` into batches made by `wrap`.
fn stream<T>(
    c: &mut PgConn,
    sql: &str,
    sink: &mut dyn FnMut(RawBatch) -> Result<()>,
    decode: &dyn Fn(&Row) -> Result<T>,
    wrap: &dyn Fn(Vec<T>) -> RawBatch,
) -> Result<()> {
    let mut rows = c.stream(sql, &[])?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(r) = rows.next()? {
        batch.push(decode(&r)?);
        if batch.len() >= BATCH_ROWS {
            crate::cancel::check()?;
            sink(wrap(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS))))?;
        }
    }
    if !batch.is_empty() {
        sink(wrap(batch))?;
    }
    Ok(())
}

fn export(c: &mut PgConn, sink: &mut dyn FnMut(RawBatch) -> Result<()>) -> Result<()> {
    let all = layers::load_all(c)?;
    let mut versions = 0;
    for l in &all {
        versions += count(c, &table(l.name()))? + count(c, &hist(l.name()))?;
    }
    let mut bookkeeping = 0;
    for t in ["sk_sync_docs", "sk_replicas", "sk_blobs", "sk_blob_refs", "sk_conflicts", "sk_audit_outbox"] {
        bookkeeping += count(c, t)?;
    }
    let transactions = count(c, "sk_transactions")?;
    sink(RawBatch::Start(CopyTotals { transactions, layers: all.len() as u64, versions, bookkeeping }))?;
    let meta = c
        .query("SELECT key, value FROM sk_meta WHERE key IN ('store_id', 'created_at') ORDER BY key", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    sink(RawBatch::Meta(meta))?;
    stream(
        c,
        &format!("SELECT {TX_COLUMNS} FROM sk_transactions ORDER BY tx"),
        sink,
        &decode_tx,
        &RawBatch::Transactions,
    )?;
    for layer in all {
        let name = layer.name().to_owned();
        let counters = c.query_one("SELECT next_field_id, next_code FROM sk_layers WHERE name = $1", &[&name])?;
        let schema_history = c
            .query("SELECT tx, schema FROM sk_schema_history WHERE layer = $1 ORDER BY tx", &[&name])?
            .iter()
            .map(|r| (TxId(r.get(0)), r.get(1)))
            .collect();
        sink(RawBatch::Layer(Box::new(RawLayer {
            def: layer.def.clone(),
            srs_id: layer.srs_id,
            created_tx: layer.created_tx,
            extent: layer.extent,
            next_field_id: counters.try_get(0)?,
            next_code: counters.try_get(1)?,
            schema_history,
        })))?;
        let mut cols: Vec<String> = vec!["fid".into(), "ST_AsBinary(geom)".into()];
        cols.extend(layers::SYSTEM_COLUMNS.iter().map(|c| (*c).to_owned()));
        cols.extend(layer.schema().fields.iter().map(column));
        let live = |r: &Row| -> Result<RawLive> {
            let fid: i64 = r.try_get(0)?;
            let geometry =
                codec::geometry(r, 1).map_err(|e| super::read::corrupt(&layer, format!("fid {fid}: {e}")))?;
            let mut properties = shikong_model::Properties::new();
            for (i, f) in layer.schema().fields.iter().enumerate() {
                let v = codec::value(r, 9 + i, f.ty)?;
                if !v.is_null() {
                    properties.insert(f.name.clone(), v);
                }
            }
            Ok(RawLive {
                fid,
                feature: shikong_model::Feature {
                    id: EntityId(r.try_get(2)?),
                    code: r.try_get(3)?,
                    geometry,
                    valid: ValidTime { from: r.try_get(4)?, to: r.try_get(5)? },
                    properties,
                },
                version: r.try_get(6)?,
                tx: TxId(r.try_get(7)?),
                device_time: r.try_get(8)?,
            })
        };
        let n = name.clone();
        let sql = format!("SELECT {} FROM {} ORDER BY fid", cols.join(", "), table(&name));
        stream(c, &sql, sink, &live, &move |rows| RawBatch::Live(n.clone(), rows))?;
        let hist_row = |r: &Row| -> Result<RawHist> {
            let hid: i64 = r.try_get(0)?;
            let op = match r.try_get::<_, String>(3)?.as_str() {
                "insert" => Op::Insert,
                "update" => Op::Update,
                _ => Op::Delete,
            };
            Ok(RawHist {
                hid,
                entity: EntityId(r.try_get(1)?),
                version: r.try_get(2)?,
                op,
                tx_from: TxId(r.try_get(4)?),
                tx_to: r.try_get::<_, Option<i64>>(5)?.map(TxId),
                code: r.try_get(6)?,
                geometry: codec::geometry(r, 7)
                    .map_err(|e| super::read::corrupt(&layer, format!("history row {hid}: {e}")))?,
                valid: ValidTime { from: r.try_get(8)?, to: r.try_get(9)? },
                device_time: r.try_get(10)?,
                props: r.try_get(11)?,
            })
        };
        let n = name.clone();
        let sql = format!(
            "SELECT hid, entity_id, version, op, tx_from, tx_to, code, ST_AsBinary(geom), valid_from, valid_to, \
             device_time, props::text FROM {} ORDER BY hid",
            hist(&name)
        );
        stream(c, &sql, sink, &hist_row, &move |rows| RawBatch::Hist(n.clone(), rows))?;
    }
    stream(
        c,
        "SELECT seq, layer, entity_id, version, doc, tx FROM sk_sync_docs ORDER BY seq",
        sink,
        &|r| {
            Ok(RawSyncDoc {
                seq: r.try_get(0)?,
                layer: r.try_get(1)?,
                entity: EntityId(r.try_get(2)?),
                version: r.try_get(3)?,
                doc: r.try_get(4)?,
                tx: TxId(r.try_get(5)?),
            })
        },
        &RawBatch::SyncDocs,
    )?;
    stream(
        c,
        "SELECT id, name, author, device, layers, area, created_tx FROM sk_replicas ORDER BY id",
        sink,
        &|r| {
            let id: uuid::Uuid = r.try_get(0)?;
            let layers: String = r.try_get(4)?;
            Ok(ReplicaRecord {
                id,
                name: r.try_get(1)?,
                author: r.try_get(2)?,
                device: r.try_get(3)?,
                layers: serde_json::from_str(&layers)
                    .map_err(|e| StoreError::Corrupt(format!("replica {id} layers: {e}")))?,
                area: r.try_get(5)?,
                created_tx: TxId(r.try_get(6)?),
            })
        },
        &RawBatch::Replicas,
    )?;
    stream(
        c,
        "SELECT sha256, size, mime, evidence, uploaded_by, uploaded_tx FROM sk_blobs ORDER BY sha256",
        sink,
        &|r| {
            let evidence: String = r.try_get(3)?;
            Ok(RawBlob {
                record: BlobRecord {
                    sha256: r.try_get(0)?,
                    size: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                    mime: r.try_get(2)?,
                    evidence: serde_json::from_str(&evidence).unwrap_or(Json::Null),
                    uploaded_by: r.try_get(4)?,
                },
                uploaded_tx: TxId(r.try_get(5)?),
            })
        },
        &RawBatch::Blobs,
    )?;
    stream(
        c,
        "SELECT sha256, layer FROM sk_blob_refs ORDER BY sha256, layer",
        sink,
        &|r| Ok((r.try_get(0)?, r.try_get(1)?)),
        &RawBatch::BlobRefs,
    )?;
    stream(
        c,
        "SELECT layer, entity_id, conflicts, authors, opened_us, tx FROM sk_conflicts ORDER BY layer, entity_id",
        sink,
        &|r| {
            let layer: String = r.try_get(0)?;
            let entity = EntityId(r.try_get(1)?);
            let corrupt = |what: &str, e: &dyn std::fmt::Display| {
                StoreError::Corrupt(format!("conflict index entry {layer}/{entity}: {what}: {e}"))
            };
            Ok(RawConflict {
                entry: ConflictEntry {
                    entity,
                    conflicts: u32::try_from(r.try_get::<_, i32>(2)?).map_err(|e| corrupt("count", &e))?,
                    authors: r.try_get(3)?,
                    opened: Timestamp::from_microsecond(r.try_get(4)?).map_err(|e| corrupt("opened", &e))?,
                    layer: layer.clone(),
                },
                tx: TxId(r.try_get(5)?),
            })
        },
        &RawBatch::Conflicts,
    )?;
    stream(
        c,
        "SELECT seq, id, tx, payload FROM sk_audit_outbox ORDER BY seq",
        sink,
        &|r| {
            Ok(RawOutbox {
                seq: r.try_get(0)?,
                entry: OutboxEntry { id: r.try_get(1)?, tx: TxId(r.try_get(2)?), payload: r.try_get(3)? },
            })
        },
        &RawBatch::Outbox,
    )
}

impl RawCopy for PgStore {
    fn raw_export(&self, sink: &mut dyn FnMut(RawBatch) -> Result<()>) -> Result<()> {
        self.read(|c| export(c, sink))
    }

    fn raw_import(&self) -> Result<Box<dyn RawWriter + '_>> {
        let mut conn = self.conn()?;
        conn.begin("BEGIN")?;
        conn.execute("SELECT pg_advisory_xact_lock($1)", &[&super::WRITER_LOCK])?;
        let mut counts = Vec::new();
        for (what, t) in [
            ("layers", "sk_layers"),
            ("transactions", "sk_transactions"),
            ("sync documents", "sk_sync_docs"),
            ("replicas", "sk_replicas"),
            ("attachment records", "sk_blobs"),
            ("outbox records", "sk_audit_outbox"),
            ("conflict entries", "sk_conflicts"),
        ] {
            counts.push((what, count(&mut conn, t)?));
        }
        let parts: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(w, n)| format!("{n} {w}")).collect();
        if !parts.is_empty() {
            // Dropping the connection rolls the (empty) transaction back.
            return Err(StoreError::DestinationNotEmpty { store: self.shown.clone(), holds: parts.join(", ") });
        }
        Ok(Box::new(PgRawWriter { conn, layers: HashMap::new() }))
    }
}

/// One column of a batch, as a typed array parameter.
enum Col {
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Date(Vec<Option<jiff::civil::Date>>),
    Time(Vec<Option<Timestamp>>),
    Json(Vec<Option<Json>>),
}

impl Col {
    fn of(ty: FieldType) -> Col {
        match ty {
            FieldType::Text | FieldType::Code => Col::Text(Vec::new()),
            FieldType::Integer => Col::Int(Vec::new()),
            FieldType::Real => Col::Real(Vec::new()),
            FieldType::Bool => Col::Bool(Vec::new()),
            FieldType::Date => Col::Date(Vec::new()),
            FieldType::DateTime => Col::Time(Vec::new()),
            FieldType::Attachments => Col::Json(Vec::new()),
        }
    }

    /// A value as [`codec::param`] binds it to a column of this type.
    fn push(&mut self, v: Option<&Value>) {
        let v = v.unwrap_or(&Value::Null);
        match self {
            Col::Text(c) => c.push(match shikong_query::sql_param(v) {
                shikong_query::SqlParam::Null => None,
                shikong_query::SqlParam::Text(s) => Some(s),
                shikong_query::SqlParam::Integer(i) => Some(i.to_string()),
                shikong_query::SqlParam::Real(f) => Some(f.to_string()),
            }),
            Col::Int(c) => c.push(match v {
                Value::Integer(i) => Some(*i),
                Value::Bool(b) => Some(i64::from(*b)),
                _ => None,
            }),
            Col::Real(c) => c.push(match v {
                Value::Real(f) => Some(*f),
                #[allow(clippy::cast_precision_loss)]
                Value::Integer(i) => Some(*i as f64),
                _ => None,
            }),
            Col::Bool(c) => c.push(match v {
                Value::Bool(b) => Some(*b),
                Value::Integer(i) => Some(*i != 0),
                _ => None,
            }),
            Col::Date(c) => c.push(match v {
                Value::Date(d) => Some(*d),
                _ => None,
            }),
            Col::Time(c) => c.push(match v {
                Value::DateTime(t) => Some(*t),
                _ => None,
            }),
            Col::Json(c) => c.push(match v {
                Value::Attachments(a) => Some(Json::Array(a.iter().cloned().map(Json::String).collect())),
                _ => None,
            }),
        }
    }

    fn param(self) -> Param {
        match self {
            Col::Int(v) => Box::new(v),
            Col::Real(v) => Box::new(v),
            Col::Bool(v) => Box::new(v),
            Col::Text(v) => Box::new(v),
            Col::Date(v) => Box::new(v),
            Col::Time(v) => Box::new(v),
            Col::Json(v) => Box::new(v),
        }
    }
}

/// `INSERT INTO <t> (<cols>) OVERRIDING SYSTEM VALUE SELECT <exprs> FROM unnest(<typed arrays>)`:
/// `cols` are `(column, array type, expression of u.cN)`.
fn unnest_insert(quoted_table: &str, cols: &[(String, String, String)]) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    let arrays: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("${}::{}[]", i + 1, c.1)).collect();
    let aliases: Vec<String> = (0..cols.len()).map(|i| format!("c{i}")).collect();
    let exprs: Vec<String> = cols.iter().enumerate().map(|(i, c)| c.2.replace("{}", &format!("u.c{i}"))).collect();
    format!(
        "INSERT INTO {quoted_table} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM unnest({}) AS u({})",
        names.join(", "),
        exprs.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    )
}

/// One column of `rows` as an array parameter.
fn array<R, T: postgres::types::ToSql + Sync + Send + 'static>(rows: &[R], f: impl Fn(&R) -> T) -> Param {
    Box::new(rows.iter().map(f).collect::<Vec<T>>())
}

fn col(name: &str, ty: &str) -> (String, String, String) {
    (name.to_owned(), ty.to_owned(), "{}".to_owned())
}

struct PgRawWriter<'s> {
    conn: Pooled<'s>,
    /// Layers written so far, with their live table's insert statement.
    layers: HashMap<String, (Layer, String)>,
}

impl PgRawWriter<'_> {
    fn run(&mut self, sql: &str, params: Vec<Param>) -> Result<()> {
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|b| b.as_ref() as &(dyn postgres::types::ToSql + Sync)).collect();
        self.conn.execute(sql, &refs)?;
        Ok(())
    }

    fn layer(&mut self, raw: RawLayer) -> Result<()> {
        let name = raw.def.name.clone();
        let layer = layers::create(&mut self.conn, raw.def, raw.created_tx)?;
        let (min_x, min_y, max_x, max_y) = match raw.extent {
            Some(b) => (Some(b.min_x), Some(b.min_y), Some(b.max_x), Some(b.max_y)),
            None => (None, None, None, None),
        };
        self.conn.execute(
            "UPDATE sk_layers SET next_field_id = $2, next_code = $3, srs_id = $4, min_x = $5, min_y = $6, \
             max_x = $7, max_y = $8 WHERE name = $1",
            &[&name, &raw.next_field_id, &raw.next_code, &raw.srs_id, &min_x, &min_y, &max_x, &max_y],
        )?;
        self.conn.execute("DELETE FROM sk_schema_history WHERE layer = $1", &[&name])?;
        let (txs, schemas): (Vec<i64>, Vec<String>) = raw.schema_history.iter().map(|(t, s)| (t.0, s.clone())).unzip();
        self.conn.execute(
            "INSERT INTO sk_schema_history (layer, tx, schema) SELECT $1, u.tx, u.schema FROM unnest($2::bigint[], $3::text[]) AS u(tx, schema)",
            &[&name, &txs, &schemas],
        )?;
        let mut cols = vec![
            col("fid", "bigint"),
            ("geom".into(), "bytea".into(), "ST_GeomFromWKB({}, 4490)".into()),
            col("entity_id", "uuid"),
            col("code", "text"),
            col("valid_from", "timestamptz"),
            col("valid_to", "timestamptz"),
            col("sk_version", "bigint"),
            col("sk_tx", "bigint"),
            col("sk_device_time", "timestamptz"),
        ];
        cols.extend(layer.schema().fields.iter().map(|f| col(&column(f), codec::column_type(f.ty))));
        // Live rows are staged and moved in sorted on the geometry at the end (`bulk.rs`: a
        // city block on one or two heap pages), their `fid`s kept.
        self.conn.batch(&super::bulk::create_stage(&name))?;
        let sql = unnest_insert(&super::bulk::stage(&name), &cols);
        self.layers.insert(name, (Layer { srs_id: raw.srs_id, ..layer }, sql));
        Ok(())
    }

    fn known(&self, name: &str) -> Result<(Layer, String)> {
        self.layers
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("copy: rows of layer `{name}` before the layer")))
    }

    fn live(&mut self, name: &str, rows: Vec<RawLive>) -> Result<()> {
        let (layer, sql) = self.known(name)?;
        let n = rows.len();
        let (mut fid, mut geom, mut id, mut code) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut from, mut to, mut version, mut tx, mut device) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut fields: Vec<Col> = layer.schema().fields.iter().map(|f| Col::of(f.ty)).collect();
        for r in rows {
            fid.push(r.fid);
            geom.push(r.feature.geometry.as_ref().map(shikong_model::wkb::to_vec));
            id.push(r.feature.id.0);
            from.push(r.feature.valid.from);
            to.push(r.feature.valid.to);
            version.push(r.version);
            tx.push(r.tx.0);
            device.push(r.device_time);
            for (c, f) in fields.iter_mut().zip(&layer.schema().fields) {
                c.push(r.feature.properties.get(&f.name));
            }
            code.push(r.feature.code);
        }
        let mut params: Vec<Param> = vec![
            Box::new(fid),
            Box::new(geom),
            Box::new(id),
            Box::new(code),
            Box::new(from),
            Box::new(to),
            Box::new(version),
            Box::new(tx),
            Box::new(device),
        ];
        params.extend(fields.into_iter().map(Col::param));
        self.run(&sql, params)
    }

    fn hist(&mut self, name: &str, rows: Vec<RawHist>) -> Result<()> {
        self.known(name)?;
        let cols = [
            col("hid", "bigint"),
            col("entity_id", "uuid"),
            col("version", "bigint"),
            col("op", "text"),
            col("tx_from", "bigint"),
            col("tx_to", "bigint"),
            col("code", "text"),
            ("geom".into(), "bytea".into(), "ST_GeomFromWKB({}, 4490)".into()),
            col("valid_from", "timestamptz"),
            col("valid_to", "timestamptz"),
            col("device_time", "timestamptz"),
            ("props".into(), "text".into(), "{}::jsonb".into()),
        ];
        let sql = unnest_insert(&hist(name), &cols);
        let params: Vec<Param> = vec![
            array(&rows, |r| r.hid),
            array(&rows, |r| r.entity.0),
            array(&rows, |r| r.version),
            array(&rows, |r| r.op.as_str().to_owned()),
            array(&rows, |r| r.tx_from.0),
            array(&rows, |r| r.tx_to.map(|t| t.0)),
            array(&rows, |r| r.code.clone()),
            array(&rows, |r| r.geometry.as_ref().map(shikong_model::wkb::to_vec)),
            array(&rows, |r| r.valid.from),
            array(&rows, |r| r.valid.to),
            array(&rows, |r| r.device_time),
            array(&rows, |r| r.props.clone()),
        ];
        self.run(&sql, params)
    }

    /// Moves an identity column's sequence past the largest copied key.
    fn reseed(&mut self, quoted_table: &str, column: &str) -> Result<()> {
        self.conn.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max({column}) FROM {quoted_table}), 0) + 1, false)"
            ),
            &[&quoted_table, &column],
        )?;
        Ok(())
    }
}

impl RawWriter for PgRawWriter<'_> {
    fn write(&mut self, batch: RawBatch) -> Result<()> {
        crate::cancel::check()?;
        match batch {
            RawBatch::Start(_) => {}
            RawBatch::Meta(entries) => {
                for (k, v) in entries.iter().filter(|(k, _)| k != "schema_version") {
                    self.conn.execute(
                        "INSERT INTO sk_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        &[k, v],
                    )?;
                }
            }
            RawBatch::Transactions(txs) => {
                let tx: Vec<i64> = txs.iter().map(|t| t.tx.0).collect();
                let us: Vec<i64> = txs.iter().map(|t| t.time.as_microsecond()).collect();
                let author: Vec<&str> = txs.iter().map(|t| t.author.as_str()).collect();
                let device: Vec<Option<&str>> = txs.iter().map(|t| t.device.as_deref()).collect();
                let device_time: Vec<Option<&str>> = txs.iter().map(|t| t.device_time.as_deref()).collect();
                let source: Vec<Option<&str>> = txs.iter().map(|t| t.source.as_deref()).collect();
                let replica: Vec<Option<uuid::Uuid>> = txs.iter().map(|t| t.replica).collect();
                self.conn.execute(
                    "INSERT INTO sk_transactions (tx, time_us, author, device, device_time, source, replica) \
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[])",
                    &[&tx, &us, &author, &device, &device_time, &source, &replica],
                )?;
            }
            RawBatch::Layer(raw) => self.layer(*raw)?,
            RawBatch::Live(name, rows) => self.live(&name, rows)?,
            RawBatch::Hist(name, rows) => self.hist(&name, rows)?,
            RawBatch::SyncDocs(docs) => {
                let seq: Vec<i64> = docs.iter().map(|d| d.seq).collect();
                let layer: Vec<&str> = docs.iter().map(|d| d.layer.as_str()).collect();
                let entity: Vec<uuid::Uuid> = docs.iter().map(|d| d.entity.0).collect();
                let version: Vec<i64> = docs.iter().map(|d| d.version).collect();
                let doc: Vec<&[u8]> = docs.iter().map(|d| d.doc.as_slice()).collect();
                let tx: Vec<i64> = docs.iter().map(|d| d.tx.0).collect();
                self.conn.execute(
                    "INSERT INTO sk_sync_docs (seq, layer, entity_id, version, doc, tx) OVERRIDING SYSTEM VALUE \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::bigint[], $5::bytea[], $6::bigint[])",
                    &[&seq, &layer, &entity, &version, &doc, &tx],
                )?;
            }
            RawBatch::Replicas(rs) => {
                for r in rs {
                    self.conn.execute(
                        "INSERT INTO sk_replicas (id, name, author, device, layers, area, created_tx) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &r.id,
                            &r.name,
                            &r.author,
                            &r.device,
                            &serde_json::to_string(&r.layers).unwrap_or_default(),
                            &r.area,
                            &r.created_tx.0,
                        ],
                    )?;
                }
            }
            RawBatch::Blobs(bs) => {
                for b in bs {
                    let r = &b.record;
                    self.conn.execute(
                        "INSERT INTO sk_blobs (sha256, size, mime, evidence, uploaded_by, uploaded_tx) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &r.sha256,
                            &i64::try_from(r.size).unwrap_or(i64::MAX),
                            &r.mime,
                            &r.evidence.to_string(),
                            &r.uploaded_by,
                            &b.uploaded_tx.0,
                        ],
                    )?;
                }
            }
            RawBatch::BlobRefs(refs) => {
                let (shas, layers): (Vec<String>, Vec<String>) = refs.into_iter().unzip();
                self.conn.execute(
                    "INSERT INTO sk_blob_refs (sha256, layer) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                    &[&shas, &layers],
                )?;
            }
            RawBatch::Conflicts(cs) => {
                for c in cs {
                    let e = &c.entry;
                    self.conn.execute(
                        "INSERT INTO sk_conflicts (layer, entity_id, conflicts, authors, opened_us, tx) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &e.layer,
                            &e.entity.0,
                            &i32::try_from(e.conflicts).unwrap_or(i32::MAX),
                            &e.authors,
                            &e.opened.as_microsecond(),
                            &c.tx.0,
                        ],
                    )?;
                }
            }
            RawBatch::Outbox(es) => {
                for o in es {
                    self.conn.execute(
                        "INSERT INTO sk_audit_outbox (seq, id, tx, payload) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4)",
                        &[&o.seq, &o.entry.id, &o.entry.tx.0, &o.entry.payload],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let names: Vec<String> = self.layers.keys().cloned().collect();
        for name in names {
            self.conn.batch(&super::bulk::move_staged(&name))?;
            self.reseed(&table(&name), "fid")?;
            self.reseed(&hist(&name), "hid")?;
        }
        self.reseed("sk_sync_docs", "seq")?;
        self.reseed("sk_audit_outbox", "seq")?;
        // Fresh statistics for the planner: the tables went from empty to full in one go.
        self.conn.finish("COMMIT")?;
        let mut analyze = String::new();
        for name in self.layers.keys() {
            analyze.push_str(&format!("ANALYZE {}; ANALYZE {};", table(name), hist(name)));
        }
        analyze.push_str("ANALYZE sk_transactions; ANALYZE sk_sync_docs;");
        self.conn.batch(&analyze)
    }
}
