//! Deferred updates: a transaction's updates of one layer are written by one statement per batch
//! (the superseded versions into history and the live rows replaced, as one data-modifying
//! `WITH`) instead of one round trip each.
//!
//! An update still reads the current row and checks the patch at the call, so its answer and its
//! errors are unchanged; only the write waits. The transaction writes the waiting updates before
//! anything that could see them: a read of a key they touch (its id, or a code one of them had or
//! takes), a code check, any other write to the layer, a read through the transaction, a
//! savepoint sent to the server, a schema change and the commit. A savepoint is sent only when
//! a statement follows it (`tx.rs`, lazy savepoints): updates queued before it are then written
//! first, those after it stay queued; a rollback to it drops those queued after it.

use std::collections::HashSet;

use postgres::types::private::BytesMut;
use postgres::types::{IsNull, Kind, ToSql, Type};

use super::codec::{self, Param};
use super::layers::{column, hist, table};
use super::pool::PgConn;
use super::read::{self, CurrentRow};
use crate::error::Result;
use crate::types::{FeatureKey, Layer};

/// Updates waiting, at most, before they are written (one statement whatever the count: the
/// values travel as one array per column). Above a push batch's size
/// (`shikong_protocol::MAX_PUSH_ENTITIES`), so a sync push writes its updates once.
pub(super) const MAX_ITEMS: usize = 2000;

struct Item {
    /// Values of `v`'s columns: `archive`, `geom_changed`, the superseded version, the new row.
    values: Vec<Param>,
    /// The entity, and the codes it had and takes (what [`Updates::touches`] answers from).
    id: uuid::Uuid,
    codes: [String; 2],
}

/// The updates of one layer not yet written.
#[derive(Default)]
pub(super) struct Updates {
    items: Vec<Item>,
    ids: HashSet<uuid::Uuid>,
    codes: HashSet<String>,
}

impl Updates {
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn clear(&mut self) {
        *self = Updates::default();
    }

    /// Updates waiting (a savepoint's mark).
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops the updates queued after the first `at` (a rollback to a savepoint taken then).
    pub(super) fn truncate(&mut self, at: usize) {
        self.items.truncate(at);
        self.reindex();
    }

    /// Takes the updates queued after the first `at`, leaving those before: a savepoint sent
    /// late writes the earlier ones before it and keeps the later ones waiting.
    pub(super) fn split_off(&mut self, at: usize) -> Updates {
        let mut tail = Updates { items: self.items.split_off(at.min(self.items.len())), ..Updates::default() };
        tail.reindex();
        self.reindex();
        tail
    }

    fn reindex(&mut self) {
        self.ids = self.items.iter().map(|i| i.id).collect();
        self.codes = self.items.iter().flat_map(|i| i.codes.iter().cloned()).collect();
    }

    /// A read by `key` could see a state these updates change.
    pub(super) fn touches(&self, key: &FeatureKey) -> bool {
        match key {
            FeatureKey::Id(id) => self.ids.contains(&id.0),
            FeatureKey::Code(code) => self.codes.contains(code),
        }
    }

    pub(super) fn has_entity(&self, id: uuid::Uuid) -> bool {
        self.ids.contains(&id)
    }

    /// Queues the update of `cur` to `row` (the live table's columns, as `PgTx::row` makes
    /// them); `archive`: `cur` was written by an earlier transaction and goes into history.
    pub(super) fn push(
        &mut self,
        layer: &Layer,
        cur: &CurrentRow,
        archive: bool,
        next_code: &str,
        row: Vec<(String, Param)>,
        geom_changed: bool,
    ) {
        let f = &cur.feature;
        let op = if cur.version == 1 { "insert" } else { "update" };
        let mut values: Vec<Param> = vec![
            Box::new(archive),
            Box::new(geom_changed),
            Box::new(cur.version),
            Box::new(op),
            Box::new(cur.tx.0),
            Box::new(f.code.clone()),
            codec::geom_param(f.geometry.as_ref()),
            Box::new(f.valid.from),
            Box::new(f.valid.to),
            Box::new(read::props_json(layer, &f.properties)),
            Box::new(cur.device_time),
        ];
        values.extend(row.into_iter().map(|(_, p)| p));
        self.ids.insert(f.id.0);
        self.codes.insert(f.code.clone());
        self.codes.insert(next_code.to_owned());
        self.items.push(Item { values, id: f.id.0, codes: [f.code.clone(), next_code.to_owned()] });
    }

    pub(super) fn is_full(&self) -> bool {
        self.items.len() >= MAX_ITEMS
    }

    /// Writes the waiting updates of `layer` as transaction `tx`.
    pub(super) fn flush(&mut self, conn: &mut PgConn, layer: &Layer, tx: i64) -> Result<()> {
        let items = std::mem::take(&mut self.items);
        self.clear();
        if items.is_empty() {
            return Ok(());
        }
        // `v`'s columns: flags and the superseded version (`a_*`), then the new row in the
        // order `PgTx::row` makes it.
        let mut types: Vec<&str> = vec![
            "boolean",
            "boolean",
            "bigint",
            "text",
            "bigint",
            "text",
            "bytea",
            "timestamptz",
            "timestamptz",
            "jsonb",
            "timestamptz",
        ];
        let mut row_cols: Vec<String> = ["geom", "entity_id", "code", "valid_from", "valid_to", "sk_version", "sk_tx"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        row_cols.push("sk_device_time".into());
        types.extend(["bytea", "uuid", "text", "timestamptz", "timestamptz", "bigint", "bigint", "timestamptz"]);
        for f in &layer.schema().fields {
            row_cols.push(column(f));
            types.push(codec::column_type(f.ty));
        }
        let names: Vec<String> = (0..types.len()).map(|i| format!("n{i}")).collect();
        const A: usize = 11; // where the new row starts
        let n = |col: &str| names[A + row_cols.iter().position(|c| c == col).unwrap_or(0)].clone();
        let sets: Vec<String> = row_cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_str() != "entity_id")
            .map(|(i, c)| {
                let v = format!("v.{}", names[A + i]);
                if c == "geom" {
                    format!("geom = CASE WHEN v.n1 THEN {} ELSE t.geom END", codec::geom_in(&v))
                } else {
                    format!("{c} = {v}")
                }
            })
            .collect();
        // One array per column (`unnest` turns them back into rows) and the transaction as the
        // last parameter: the text depends on the layer's columns alone, so each connection
        // parses and plans it once, however many updates a batch holds.
        let arrays: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}[]", i + 1)).collect();
        let sql = format!(
            "WITH v ({names}) AS (SELECT * FROM unnest({arrays})), \
             sk_archived AS (INSERT INTO {h} (entity_id, version, op, tx_from, tx_to, code, geom, valid_from, \
             valid_to, props, device_time) SELECT v.{id}, v.n2, v.n3, v.n4, ${tx}::bigint, v.n5, {geom}, v.n7, v.n8, \
             v.n9, v.n10 FROM v WHERE v.n0) UPDATE {t} AS t SET {sets} FROM v WHERE t.entity_id = v.{id}",
            names = names.join(", "),
            arrays = arrays.join(", "),
            h = hist(layer.name()),
            id = n("entity_id"),
            tx = types.len() + 1,
            geom = codec::geom_in("v.n6"),
            t = table(layer.name()),
            sets = sets.join(", "),
        );
        let mut columns: Vec<Column> = (0..types.len()).map(|_| Column(Vec::with_capacity(items.len()))).collect();
        for item in items {
            for (column, p) in columns.iter_mut().zip(item.values) {
                column.0.push(p);
            }
        }
        let mut params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        params.push(&tx);
        conn.execute(&sql, &params)?;
        Ok(())
    }
}

/// One column of the waiting updates, sent as one array parameter (`$n::type[]`): each value
/// encoded as the array's element type, as it would be as a parameter of its own.
#[derive(Debug)]
struct Column(Vec<Param>);

impl ToSql for Column {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let Kind::Array(member) = ty.kind() else {
            return Err(format!("an update column is sent as an array, not as {ty}").into());
        };
        let be = |v: i32| v.to_be_bytes();
        // Binary array: dimensions, a null flag (patched below), element type, length, lower bound.
        out.extend_from_slice(&be(1));
        let flag_at = out.len();
        out.extend_from_slice(&be(0));
        out.extend_from_slice(&member.oid().to_be_bytes());
        out.extend_from_slice(&be(i32::try_from(self.0.len())?));
        out.extend_from_slice(&be(1));
        let mut nulls = false;
        for p in &self.0 {
            let len_at = out.len();
            out.extend_from_slice(&be(0));
            let len = match p.to_sql_checked(member, out)? {
                IsNull::Yes => {
                    nulls = true;
                    -1
                }
                IsNull::No => i32::try_from(out.len() - len_at - 4)?,
            };
            out[len_at..len_at + 4].copy_from_slice(&be(len));
        }
        out[flag_at..flag_at + 4].copy_from_slice(&be(i32::from(nulls)));
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    postgres::types::to_sql_checked!();
}
