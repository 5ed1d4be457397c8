//! Buffered inserts of a bulk load: one multi-row `INSERT` per batch instead of one round trip
//! per feature (an import into an empty layer otherwise spends its time waiting for the network).
//!
//! A layer is buffered only after `bulk_load` found both its live and its history table empty.
//! From then on, as long as this transaction only inserts into it, the ids and codes it inserted
//! are exactly what those tables hold (the writer lock keeps every other writer out), so a
//! duplicate id or code is refused from memory, at the `insert` call, as before. The transaction
//! writes the buffer before anything that could see the table (a read through the transaction,
//! an update, delete or restore, a savepoint, a schema change, the commit) and stops buffering
//! the layer on anything but reads (`PgTx::unbuffer`): read-your-writes and all-or-nothing hold
//! as without it. A rollback to a savepoint drops the buffer (the rows were inserted after the
//! savepoint, which flushed) and stops buffering, since the sets may name rolled-back rows.

use std::collections::HashSet;

use super::codec::{self, Args, Param};
use super::layers::table;
use super::pool::PgConn;
use crate::error::Result;

/// Rows per statement, at most (PostgreSQL binds at most 65,535 parameters).
const MAX_ROWS: usize = 1000;

/// The inserts of one layer not yet written, and what the layer's tables hold.
#[derive(Default)]
pub(super) struct Pending {
    /// Every entity id inserted into the layer by this transaction (written or not).
    pub(super) ids: HashSet<uuid::Uuid>,
    /// Every code inserted into the layer by this transaction (written or not).
    pub(super) codes: HashSet<String>,
    /// Rows waiting: the live table's columns and their values.
    rows: Vec<Vec<(String, Param)>>,
}

impl Pending {
    /// Queues a row of entity `id` with `code`.
    pub(super) fn push(&mut self, id: uuid::Uuid, code: &str, row: Vec<(String, Param)>) {
        self.ids.insert(id);
        self.codes.insert(code.to_owned());
        self.rows.push(row);
    }

    /// Enough rows for one statement are waiting.
    pub(super) fn is_full(&self) -> bool {
        self.rows.first().is_some_and(|r| self.rows.len() >= Self::batch(r.len()))
    }

    fn batch(columns: usize) -> usize {
        (60_000 / columns.max(1)).clamp(1, MAX_ROWS)
    }

    /// Writes the waiting rows into `layer`'s live table.
    pub(super) fn flush(&mut self, conn: &mut PgConn, layer: &str) -> Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let Some(first) = rows.first() else { return Ok(()) };
        let columns: Vec<String> = first.iter().map(|(c, _)| c.clone()).collect();
        let head = format!("INSERT INTO {} ({}) VALUES ", table(layer), columns.join(", "));
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut args = Args::default();
            let mut tuples = Vec::new();
            for row in rows.by_ref().take(Self::batch(columns.len())) {
                let marks: Vec<String> = row
                    .into_iter()
                    .map(|(col, p)| {
                        let mark = args.add_boxed(p);
                        if col == "geom" { codec::geom_in(&mark) } else { mark }
                    })
                    .collect();
                tuples.push(format!("({})", marks.join(", ")));
            }
            conn.execute(&format!("{head}{}", tuples.join(", ")), &args.refs())?;
        }
        Ok(())
    }
}
