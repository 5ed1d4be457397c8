//! The journal side on PostgreSQL: transactions, one entity's history, diffs, the change feed and
//! the versions current at a transaction. Every function runs inside the caller's snapshot
//! ([`super::PgStore::read`]).

use geo::Intersects;
use jiff::Timestamp;
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator;
use shikong_model::feature::diff as feature_diff;
use shikong_model::{EntityId, Geometry, TxId};

use super::PgConn;
use super::codec::{self, Args};
use super::layers::{self, hist, table};
use super::read::*;
use crate::error::{Result, StoreError};
use crate::logic;
use crate::types::*;

pub(crate) const TX_COLUMNS: &str = "tx, time_us, author, device, device_time, source, replica";

/// A row of `sk_transactions` selected as [`TX_COLUMNS`].
pub(crate) fn decode_tx(r: &Row) -> Result<TxRecord> {
    Ok(TxRecord {
        tx: TxId(r.try_get(0)?),
        time: codec::micros_to_ts(r.try_get(1)?),
        author: r.try_get(2)?,
        device: r.try_get(3)?,
        device_time: r.try_get(4)?,
        source: r.try_get(5)?,
        replica: r.try_get(6)?,
    })
}

fn tx_record(c: &mut PgConn, tx: TxId) -> Result<TxRecord> {
    match c.query_opt(&format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx = $1"), &[&tx.0])? {
        Some(r) => decode_tx(&r),
        None => Err(StoreError::Corrupt(format!("transaction {} is missing from the journal", tx.0))),
    }
}

pub(crate) fn history(c: &mut PgConn, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>> {
    let layer = layers::load(c, layer)?;
    let Some(id) = resolve(c, &layer, key)? else {
        return Err(StoreError::NotFound { layer: layer.name().to_owned(), key: key.to_string() });
    };
    let versions = versions(c, &layer, id)?.into_iter().map(|v| logic::Version {
        version: v.version,
        op: v.op,
        tx: v.tx,
        state: v.state,
        device_time: v.device_time,
    });
    logic::version_records(versions, |tx| tx_record(c, tx))
}

/// The diff between two instants over the entities changed in between with ids after `after`
/// (in id order), at most `limit` of them.
pub(crate) fn diff(
    c: &mut PgConn,
    layer: &str,
    from: Timestamp,
    to: Timestamp,
    after: Option<EntityId>,
    limit: usize,
) -> Result<DiffPage> {
    let layer = layers::load(c, layer)?;
    if to < from {
        return Err(StoreError::InvalidArgument(format!("diff: `to` ({to}) is before `from` ({from})")));
    }
    let tx1 = tx_at(c, from)?.unwrap_or(TxId(0));
    let tx2 = tx_at(c, to)?.unwrap_or(TxId(0));
    // One more than asked: whether another page follows.
    let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let after = after.map_or(uuid::Uuid::nil(), |a| a.0);
    let rows = c.query(
        &format!(
            "SELECT entity_id FROM {} WHERE entity_id > $3 AND sk_tx > $1 AND sk_tx <= $2 \
             UNION SELECT entity_id FROM {} WHERE entity_id > $3 AND tx_from > $1 AND tx_from <= $2 \
             ORDER BY 1 LIMIT $4",
            table(layer.name()),
            hist(layer.name())
        ),
        &[&tx1.0, &tx2.0, &after, &take],
    )?;
    let mut ids: Vec<EntityId> = rows.iter().map(|r| EntityId(r.get(0))).collect();
    let more = ids.len() > limit;
    ids.truncate(limit);
    let mut out = Diff::default();
    let mut last = None;
    for id in ids {
        crate::cancel::check()?;
        last = Some(id);
        let vs = versions(c, &layer, id)?;
        match (state_at(&vs, tx1), state_at(&vs, tx2)) {
            (None, Some(b)) => out.created.push(b),
            (Some(a), None) => out.deleted.push(a),
            (Some(a), Some(b)) => {
                let changes = feature_diff(&a.feature, &b.feature);
                if !changes.is_empty() {
                    out.modified.push(Modified {
                        id,
                        code: b.feature.code.clone(),
                        from_version: a.version,
                        to_version: b.version,
                        changes,
                    });
                }
            }
            (None, None) => {}
        }
    }
    Ok(DiffPage { diff: out, next: if more { last } else { None } })
}

pub(crate) fn entities_created_by(c: &mut PgConn, layer: &str, author: &str) -> Result<Vec<EntityId>> {
    let layer = layers::load(c, layer)?;
    // Version 1 is the live row until superseded, then a history row; both halves are looked up
    // by transaction (`sk_tx` / `tx_from` indexes), the transactions by author.
    let sql = format!(
        "WITH mine AS (SELECT tx FROM sk_transactions WHERE author = $1) \
         SELECT entity_id, tx FROM ( \
           SELECT t.entity_id AS entity_id, t.sk_tx AS tx FROM {} AS t WHERE t.sk_tx IN (SELECT tx FROM mine) AND t.sk_version = 1 \
           UNION ALL \
           SELECT h.entity_id, h.tx_from FROM {} AS h WHERE h.tx_from IN (SELECT tx FROM mine) AND h.version = 1 \
         ) v ORDER BY tx, entity_id",
        table(layer.name()),
        hist(layer.name())
    );
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in c.query(&sql, &[&author])? {
        let id = EntityId(r.try_get(0)?);
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

pub(crate) fn transactions(c: &mut PgConn, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>> {
    let rows = c.query(
        &format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx > $1 ORDER BY tx LIMIT $2"),
        &[&after.map_or(0, |t| t.0), &i64::try_from(limit).unwrap_or(i64::MAX)],
    )?;
    rows.iter().map(decode_tx).collect()
}

pub(crate) fn changes_since(c: &mut PgConn, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage> {
    let layer = layers::load(c, layer)?;
    let wanted = limit.max(1);
    // One row more than asked tells whether another page follows.
    let take = i64::try_from(wanted).unwrap_or(i64::MAX - 1) + 1;
    let mut out = Vec::new();
    // Live rows (kind 0) and tombstones (kind 1) whose version came after the cursor, merged in
    // (tx, kind, key) order. A restored entity's old tombstone is closed (tx_to set). The plain
    // `>= $1` lets the planner range-scan the transaction index (a row comparison with a
    // constant inside does not match it).
    let live_sql = format!(
        "{} WHERE t.sk_tx >= $1 AND (t.sk_tx, 0::bigint, t.fid) > ($1, $2, $3) ORDER BY t.sk_tx, t.fid LIMIT $4",
        current_select(&layer, "")
    );
    for r in c.query(&live_sql, &[&cursor.tx, &cursor.kind, &cursor.key, &take])? {
        let cur = decode_current(&layer, &r)?;
        let position = ChangeCursor { tx: cur.tx.0, kind: 0, key: cur.fid };
        out.push(ChangedEntity {
            id: cur.feature.id,
            version: cur.version,
            tx: cur.tx,
            state: Some(cur.stored()),
            position,
        });
    }
    let tomb_sql = format!(
        "SELECT hid, entity_id, version, tx_from FROM {} WHERE op = 'delete' AND tx_to IS NULL \
         AND tx_from >= $1 AND (tx_from, 1::bigint, hid) > ($1, $2, $3) ORDER BY tx_from, hid LIMIT $4",
        hist(layer.name())
    );
    for r in c.query(&tomb_sql, &[&cursor.tx, &cursor.kind, &cursor.key, &take])? {
        let tx = TxId(r.try_get(3)?);
        out.push(ChangedEntity {
            id: EntityId(r.try_get(1)?),
            version: r.try_get(2)?,
            tx,
            state: None,
            position: ChangeCursor { tx: tx.0, kind: 1, key: r.try_get(0)? },
        });
    }
    // Documents rewritten without a new version of their own (kind 2). Entities whose version
    // moved in the same transaction are already listed.
    let docs_sql = format!(
        "SELECT d.seq, d.entity_id, d.tx FROM sk_sync_docs d WHERE d.layer = $5 AND d.tx >= $1 AND (d.tx, 2::bigint, d.seq) > ($1, $2, $3) \
           AND NOT EXISTS (SELECT 1 FROM {t} t WHERE t.entity_id = d.entity_id AND t.sk_tx = d.tx) \
           AND NOT EXISTS (SELECT 1 FROM {h} h WHERE h.entity_id = d.entity_id AND h.tx_from = d.tx) \
         ORDER BY d.tx, d.seq LIMIT $4",
        t = table(layer.name()),
        h = hist(layer.name())
    );
    let docs: Vec<(i64, EntityId, i64)> = c
        .query(&docs_sql, &[&cursor.tx, &cursor.kind, &cursor.key, &take, &layer.name()])?
        .iter()
        .map(|r| Ok((r.try_get(0)?, EntityId(r.try_get(1)?), r.try_get(2)?)))
        .collect::<Result<_>>()?;
    for (seq, id, tx) in docs {
        let position = ChangeCursor { tx, kind: 2, key: seq };
        let (version, state) = match current_row(c, &layer, &FeatureKey::Id(id))? {
            Some(cur) => (cur.version, Some(cur.stored())),
            None => {
                let v: Option<i64> = c
                    .query_one(
                        &format!("SELECT max(version) FROM {} WHERE entity_id = $1", hist(layer.name())),
                        &[&id.0],
                    )?
                    .get(0);
                (v.unwrap_or(0), None)
            }
        };
        out.push(ChangedEntity { id, version, tx: TxId(tx), state, position });
    }
    logic::change_page(out, wanted, cursor, || latest_tx(c))
}

/// `(entity, version)` of every entity live in `layer` as of transaction `tx` whose geometry meets
/// `area` (every entity when there is none). Decodes no properties, and geometry only when there
/// is an area.
pub(crate) fn versions_at(
    c: &mut PgConn,
    layer: &str,
    tx: TxId,
    area: Option<&Geometry>,
    sink: &mut dyn FnMut(EntityId, i64),
) -> Result<()> {
    let layer = layers::load(c, layer)?;
    let shape = area.map(Geometry::to_geo);
    let env = area.and_then(Geometry::bbox);
    for live in [true, false] {
        let mut args = Args::default();
        let (alias, t, version, mut where_) = if live {
            ("t", table(layer.name()), "t.sk_version", vec![format!("t.sk_tx <= {}", args.add(tx.0))])
        } else {
            let from = args.add(tx.0);
            let to = args.add(tx.0);
            (
                "h",
                hist(layer.name()),
                "h.version",
                vec![
                    format!("h.tx_from <= {from}"),
                    format!("(h.tx_to IS NULL OR h.tx_to > {to})"),
                    "h.op <> 'delete'".into(),
                ],
            )
        };
        if let Some(b) = &env {
            where_.push(format!("{alias}.geom && {}", codec::envelope(&mut args, b)));
        }
        let geom = if shape.is_some() { format!(", ST_AsBinary({alias}.geom)") } else { String::new() };
        let sql =
            format!("SELECT {alias}.entity_id, {version}{geom} FROM {t} AS {alias} WHERE {}", where_.join(" AND "));
        let params = args.refs();
        let mut rows = c.stream(&sql, &params)?;
        let mut n = 0usize;
        while let Some(r) = rows.next()? {
            n += 1;
            if n.is_multiple_of(1024) {
                crate::cancel::check()?;
            }
            let id = EntityId(r.try_get(0)?);
            if let Some(a) = &shape {
                let g = codec::geometry(&r, 2).map_err(|e| corrupt(&layer, format!("entity {id}: {e}")))?;
                if !g.is_some_and(|g| a.intersects(&g.to_geo())) {
                    continue;
                }
            }
            sink(id, r.try_get(1)?);
        }
    }
    Ok(())
}
