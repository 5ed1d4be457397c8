//! Buffered inserts of a bulk load: one multi-row `INSERT` per batch instead of one round trip
//! per feature (an import into an empty layer otherwise spends its time waiting for the network),
//! and the rows written to the live table in **spatial order**.
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
//!
//! Why spatial order: rows in import order lie at random places, so the ~60 points of a city
//! block sit on ~60 different 8 KB heap pages and a bbox read fetches one page per row (at 10M
//! points the table is far beyond `shared_buffers`). A full batch therefore goes to a staging
//! table first ([`Pending::spill`]: `pg_temp."sk_stage_<layer>"`, `ON COMMIT DROP`, no WAL, no
//! index), its `fid` already drawn from the live table's identity sequence (so `fid` still follows
//! the insert calls); [`Pending::flush`] — whenever the table must show the rows — moves the
//! staged rows in with one `INSERT … SELECT … ORDER BY geom` (PostGIS sorts geometries on a
//! space-filling curve), so a city block is one or two heap pages. A load smaller than one batch
//! is written directly, as before. Nothing else changes: no lock beyond an insert's, no DDL on
//! the live table, the same rows and keys.

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
    /// The staging table exists (made by this transaction) and may hold rows.
    staged: bool,
}

/// The staging table of `layer` (in this session's temporary schema).
pub(super) fn stage(layer: &str) -> String {
    format!("pg_temp.{}", table(&format!("sk_stage_{layer}")))
}

/// `DROP` + `CREATE` of `layer`'s staging table: the live table's columns and defaults, dropped
/// at the commit.
pub(super) fn create_stage(layer: &str) -> String {
    format!(
        "DROP TABLE IF EXISTS {}; CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP;",
        stage(layer),
        table(&format!("sk_stage_{layer}")),
        table(layer)
    )
}

/// Moves `layer`'s staged rows into its live table in spatial order and empties the stage.
pub(super) fn move_staged(layer: &str) -> String {
    let st = stage(layer);
    format!("INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM {st} ORDER BY geom; TRUNCATE {st};", table(layer))
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

    /// Writes the waiting rows to the staging table (during a load, when a batch is full); they
    /// reach the live table, sorted, at the next [`Pending::flush`].
    pub(super) fn spill(&mut self, conn: &mut PgConn, layer: &str) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if !self.staged {
            // `fid` is drawn at the spill, in call order, as the live table would draw it.
            let seq: Option<String> =
                conn.query_one("SELECT pg_get_serial_sequence($1, 'fid')", &[&table(layer)])?.try_get(0)?;
            let seq = seq.unwrap_or_default().replace('\'', "''");
            // Made afresh (an earlier load of this transaction may have staged other columns).
            conn.batch(&format!(
                "{} ALTER TABLE {} ALTER COLUMN fid SET DEFAULT nextval('{seq}'::regclass);",
                create_stage(layer),
                stage(layer)
            ))?;
            self.staged = true;
        }
        self.write(conn, &stage(layer))
    }

    /// Writes every row of this load not in the live table yet: the staged ones moved in, in
    /// spatial order, with what waits in memory.
    pub(super) fn flush(&mut self, conn: &mut PgConn, layer: &str) -> Result<()> {
        if !self.staged {
            return self.write(conn, &table(layer));
        }
        self.spill(conn, layer)?;
        conn.batch(&move_staged(layer))
    }

    /// Writes the waiting rows into `target` (the live or the staging table).
    fn write(&mut self, conn: &mut PgConn, target: &str) -> Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let Some(first) = rows.first() else { return Ok(()) };
        let columns: Vec<String> = first.iter().map(|(c, _)| c.clone()).collect();
        let head = format!("INSERT INTO {target} ({}) VALUES ", columns.join(", "));
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
