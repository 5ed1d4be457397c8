//! Reads of the journal side of the store: transactions, one entity's history, diffs between
//! instants, the change feed and the versions current at a transaction. Apart from `read.rs`
//! (feature queries and single reads) because each half is a file of its own size.

use std::collections::HashMap;

use geo::Intersects;
use jiff::Timestamp;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use shikong_gpkg::quote_ident;
use shikong_model::feature::diff as feature_diff;
use shikong_model::{EntityId, Feature, Geometry, TxId};

use super::codec;
use super::layers::{self, hist_rtree, hist_table, rtree};
use super::read::*;
use crate::error::{Result, StoreError};
use crate::logic;
use crate::types::*;

/// A row of `sk_transactions` selected as [`TX_COLUMNS`].
fn decode_tx(r: &Row<'_>) -> Result<TxRecord> {
    let tx = TxId(r.get(0)?);
    let replica = r
        .get::<_, Option<String>>(6)?
        .map(|s| {
            s.parse::<ReplicaId>().map_err(|e| StoreError::Corrupt(format!("transaction {}: replica `{s}`: {e}", tx.0)))
        })
        .transpose()?;
    Ok(TxRecord {
        tx,
        time: codec::micros_to_ts(r.get(1)?),
        author: r.get(2)?,
        device: r.get(3)?,
        device_time: r.get(4)?,
        source: r.get(5)?,
        replica,
    })
}

fn tx_record(conn: &Connection, tx: TxId) -> Result<TxRecord> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx = ?1"))?;
    let mut rows = stmt.query([tx.0])?;
    match rows.next()? {
        Some(r) => decode_tx(r),
        None => Err(StoreError::Corrupt(format!("transaction {} is missing from the journal", tx.0))),
    }
}

pub(crate) fn history(conn: &Connection, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>> {
    let layer = layers::load(conn, layer)?;
    let Some(id) = resolve(conn, &layer, key)? else {
        return Err(StoreError::NotFound { layer: layer.name().to_owned(), key: key.to_string() });
    };
    logic::version_records(versions(conn, &layer, id)?, |tx| tx_record(conn, tx))
}

/// The diff between two instants over the entities changed in between with ids after `after`
/// (in id order), at most `limit` of them.
pub(crate) fn diff(
    conn: &Connection,
    layer: &str,
    from: Timestamp,
    to: Timestamp,
    after: Option<EntityId>,
    limit: usize,
) -> Result<DiffPage> {
    let layer = layers::load(conn, layer)?;
    if to < from {
        return Err(StoreError::InvalidArgument(format!("diff: `to` ({to}) is before `from` ({from})")));
    }
    let tx1 = tx_at(conn, from)?.unwrap_or(TxId(0));
    let tx2 = tx_at(conn, to)?.unwrap_or(TxId(0));
    let mut ids: Vec<String> = Vec::new();
    {
        // Entity ids are lowercase hyphenated UUIDs: text order is id order.
        let mut stmt = conn.prepare(&format!(
            "SELECT entity_id FROM {} WHERE entity_id > ?3 AND sk_tx > ?1 AND sk_tx <= ?2 \
             UNION SELECT entity_id FROM {} WHERE entity_id > ?3 AND tx_from > ?1 AND tx_from <= ?2 \
             ORDER BY 1 LIMIT ?4",
            quote_ident(layer.name()),
            quote_ident(&hist_table(layer.name()))
        ))?;
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        // One more than asked: whether another page follows.
        let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![tx1.0, tx2.0, after, take], |r| r.get::<_, String>(0))?;
        for r in rows {
            ids.push(r?);
        }
    }
    let more = ids.len() > limit;
    ids.truncate(limit);
    let mut times = TxTimes { conn, cache: HashMap::new() };
    let mut out = Diff::default();
    let mut last = None;
    for id in ids {
        crate::cancel::check()?;
        let id = entity_id(&layer, &id)?;
        last = Some(id);
        let vs = versions(conn, &layer, id)?;
        let stored = |times: &mut TxTimes<'_>,
                      (v, tx, f, dt): (i64, TxId, &Feature, Option<Timestamp>)|
         -> Result<StoredFeature> {
            Ok(StoredFeature { feature: f.clone(), version: v, tx, tx_time: times.get(tx)?, device_time: dt })
        };
        match (state_at(&vs, tx1), state_at(&vs, tx2)) {
            (None, Some(b)) => out.created.push(stored(&mut times, b)?),
            (Some(a), None) => out.deleted.push(stored(&mut times, a)?),
            (Some(a), Some(b)) => {
                let changes = feature_diff(a.2, b.2);
                if !changes.is_empty() {
                    out.modified.push(Modified {
                        id,
                        code: b.2.code.clone(),
                        from_version: a.0,
                        to_version: b.0,
                        changes,
                    });
                }
            }
            (None, None) => {}
        }
    }
    Ok(DiffPage { diff: out, next: if more { last } else { None } })
}

pub(crate) fn entities_created_by(conn: &Connection, layer: &str, author: &str) -> Result<Vec<EntityId>> {
    let layer = layers::load(conn, layer)?;
    // Version 1 is the live row until superseded, then a history row; both halves are looked up
    // by transaction through their `sk_tx` / `tx_from` indexes, the transactions through
    // `sk_idx_transactions_author`.
    let sql = format!(
        "WITH mine(tx) AS (SELECT tx FROM sk_transactions WHERE author = ?1) \
         SELECT entity_id, tx FROM ( \
           SELECT t.entity_id AS entity_id, t.sk_tx AS tx FROM {} AS t WHERE t.sk_tx IN mine AND t.sk_version = 1 \
           UNION ALL \
           SELECT h.entity_id, h.tx_from FROM {} AS h WHERE h.tx_from IN mine AND h.version = 1 \
         ) ORDER BY tx, entity_id",
        quote_ident(layer.name()),
        quote_ident(&hist_table(layer.name()))
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([author], |r| r.get::<_, String>(0))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in rows {
        let id = entity_id(&layer, &r?)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

pub(crate) fn transactions(conn: &Connection, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx > ?1 ORDER BY tx LIMIT ?2"))?;
    let mut rows = stmt.query(params![after.map_or(0, |t| t.0), i64::try_from(limit).unwrap_or(i64::MAX)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode_tx(r)?);
    }
    Ok(out)
}

pub(crate) fn changes_since(conn: &Connection, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage> {
    let layer = layers::load(conn, layer)?;
    let wanted = limit.max(1);
    // One row more than asked tells whether another page follows.
    let limit = i64::try_from(wanted).unwrap_or(i64::MAX - 1) + 1;
    let mut out = Vec::new();
    let mut times = TxTimes { conn, cache: HashMap::new() };
    // Live rows (kind 0) and tombstones (kind 1) whose version came after the cursor, merged in
    // (tx, kind, key) order. A restored entity's old tombstone is closed (tx_to set), so it is not
    // listed again.
    let live_sql = format!(
        "{} AND (t.sk_tx, 0, t.fid) > (?1, ?2, ?3) ORDER BY t.sk_tx, t.fid LIMIT ?4",
        current_select(&layer, "1 = 1")
    );
    let mut stmt = conn.prepare_cached(&live_sql)?;
    let mut rows = stmt.query(params![cursor.tx, cursor.kind, cursor.key, limit])?;
    while let Some(r) = rows.next()? {
        let c = decode_current(&layer, r)?;
        let position = ChangeCursor { tx: c.tx.0, kind: 0, key: c.fid };
        let tx_time = times.get(c.tx)?;
        out.push(ChangedEntity {
            id: c.feature.id,
            version: c.version,
            tx: c.tx,
            state: Some(StoredFeature {
                feature: c.feature,
                version: c.version,
                tx: c.tx,
                tx_time,
                device_time: c.device_time,
            }),
            position,
        });
    }
    drop(rows);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT hid, entity_id, version, tx_from FROM {} WHERE op = 'delete' AND tx_to IS NULL AND (tx_from, 1, hid) > (?1, ?2, ?3) \
         ORDER BY tx_from, hid LIMIT ?4",
        quote_ident(&hist_table(layer.name()))
    ))?;
    let mut rows = stmt.query(params![cursor.tx, cursor.kind, cursor.key, limit])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(1)?;
        let tx = TxId(r.get(3)?);
        out.push(ChangedEntity {
            id: entity_id(&layer, &id)?,
            version: r.get(2)?,
            tx,
            state: None,
            position: ChangeCursor { tx: tx.0, kind: 1, key: r.get(0)? },
        });
    }
    drop(rows);
    // Documents rewritten without a new version of their own (kind 2): a resolution that kept the
    // visible value, an edit that lost to a deletion. Entities whose version moved in the same
    // transaction are already listed.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.rowid, d.entity_id, d.tx FROM sk_sync_docs d WHERE d.layer = ?5 AND (d.tx, 2, d.rowid) > (?1, ?2, ?3) \
           AND NOT EXISTS (SELECT 1 FROM {t} t WHERE t.entity_id = d.entity_id AND t.sk_tx = d.tx) \
           AND NOT EXISTS (SELECT 1 FROM {h} h WHERE h.entity_id = d.entity_id AND h.tx_from = d.tx) \
         ORDER BY d.tx, d.rowid LIMIT ?4",
        t = quote_ident(layer.name()),
        h = quote_ident(&hist_table(layer.name()))
    ))?;
    let docs: Vec<(i64, String, i64)> = stmt
        .query_map(params![cursor.tx, cursor.kind, cursor.key, limit, layer.name()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (rowid, id, tx) in docs {
        let id = entity_id(&layer, &id)?;
        let position = ChangeCursor { tx, kind: 2, key: rowid };
        let live = current_row(conn, &layer, &FeatureKey::Id(id))?;
        let (version, state) = match live {
            Some(c) => {
                let tx_time = times.get(c.tx)?;
                (
                    c.version,
                    Some(StoredFeature {
                        feature: c.feature,
                        version: c.version,
                        tx: c.tx,
                        tx_time,
                        device_time: c.device_time,
                    }),
                )
            }
            None => {
                let v: Option<i64> = conn
                    .query_row(
                        &format!(
                            "SELECT max(version) FROM {} WHERE entity_id = ?1",
                            quote_ident(&hist_table(layer.name()))
                        ),
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                (v.unwrap_or(0), None)
            }
        };
        out.push(ChangedEntity { id, version, tx: TxId(tx), state, position });
    }
    logic::change_page(out, wanted, cursor, || {
        let newest: Option<i64> = conn.query_row("SELECT max(tx) FROM sk_transactions", [], |r| r.get(0))?;
        Ok(TxId(newest.unwrap_or(0)))
    })
}

/// `(entity, version)` of every entity live in `layer` as of transaction `tx` whose geometry meets
/// `area` (every entity when there is none): what a replica of that area holds after a pull
/// complete through `tx`. Decodes no properties, and geometry only when there is an area.
pub(crate) fn versions_at(
    conn: &Connection,
    layer: &str,
    tx: TxId,
    area: Option<&Geometry>,
    sink: &mut dyn FnMut(EntityId, i64),
) -> Result<()> {
    let layer = layers::load(conn, layer)?;
    let shape = area.map(Geometry::to_geo);
    let env = area.and_then(Geometry::bbox);
    // (alias, key, R-tree, table, version column, conditions, how many bind `tx`)
    let halves = [
        ("t", "fid", rtree(layer.name()), layer.name().to_owned(), "t.sk_version", vec!["t.sk_tx <= ?".to_owned()], 1),
        (
            "h",
            "hid",
            hist_rtree(layer.name()),
            hist_table(layer.name()),
            "h.version",
            vec!["h.tx_from <= ?".to_owned(), "(h.tx_to IS NULL OR h.tx_to > ?)".into(), "h.op <> 'delete'".into()],
            2,
        ),
    ];
    for (alias, key, rtree_table, table, version, mut where_, binds) in halves {
        let mut params = vec![Sql::Integer(tx.0); binds];
        if let Some(b) = &env {
            rtree_sql(alias, key, &rtree_table, b, &mut where_, &mut params);
        }
        let geom = if shape.is_some() { format!(", {alias}.geom") } else { String::new() };
        let sql = format!(
            "SELECT {alias}.entity_id, {version}{geom} FROM {} AS {alias} WHERE {}",
            quote_ident(&table),
            where_.join(" AND ")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(a) = &shape {
                let g = geometry(&layer, r.get_ref(2)?, &format!("entity {id}"))?;
                if !g.is_some_and(|g| a.intersects(&g.to_geo())) {
                    continue;
                }
            }
            sink(entity_id(&layer, &id)?, r.get(1)?);
        }
    }
    Ok(())
}
