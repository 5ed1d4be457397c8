//! The SQLite side of backups: a page-for-page copy of one read snapshot (the online backup API),
//! a per-table digest of a snapshot, and the store's rows written after a transaction exported
//! to, and applied from, a separate SQLite file (an incremental backup).
//!
//! Why rows by transaction and not pages or the session extension: the store never rewrites a
//! version, and every row that changes carries the transaction that changed it (`sk_tx` of a
//! current row, `tx_from`/`tx_to` of a history row, `tx` of a document, `uploaded_tx` of a
//! blob), so "after transaction T" is an indexed selection that costs what changed, not the
//! size of the store; the session extension would have to live inside the server's writer.
//! Rows keep their row ids (`fid`, `hid`, a document's rowid): devices' change cursors name them.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};
use shikong_gpkg::quote_ident;

use crate::error::{BackupError, Result};
use crate::manifest::{SchemaEntry, StoreDigest, TableDigest};

/// Opens an existing SQLite file of a data folder (never creates one). Read-write, because a
/// reader of a WAL database may have to recover its index; nothing here writes to it.
pub(crate) fn open_existing(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(BackupError::sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(BackupError::sqlite(path))?;
    shikong_gpkg::register_functions(&conn).map_err(BackupError::sqlite(path))?;
    Ok(conn)
}

/// Starts a read transaction whose snapshot every later statement on `conn` sees until
/// [`end_snapshot`] (a deferred `BEGIN` takes its snapshot at the first read).
pub(crate) fn begin_snapshot(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;").map_err(BackupError::sqlite(path))
}

pub(crate) fn end_snapshot(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("COMMIT;").map_err(BackupError::sqlite(path))
}

/// Copies the database of `src` page for page into a new file `dst`, from the read transaction
/// `src` holds ([`begin_snapshot`]): writers go on meanwhile (WAL), and the copy is exactly that
/// snapshot (a step never restarts, since the source's snapshot does not move). `progress` gets
/// (bytes copied, bytes in all).
pub(crate) fn copy_snapshot(
    src: &Connection,
    src_path: &Path,
    dst: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let page_size: i64 = src.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(BackupError::sqlite(src_path))?;
    let page = u64::try_from(page_size).unwrap_or(4096);
    let mut out = Connection::open(dst).map_err(BackupError::sqlite(dst))?;
    {
        let backup = Backup::new(src, &mut out).map_err(BackupError::sqlite(dst))?;
        loop {
            let step = backup.step(2048).map_err(BackupError::sqlite(src_path))?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let left = u64::try_from(p.remaining).unwrap_or(0);
            progress((total - left.min(total)) * page, total * page);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    drop(out);
    std::fs::File::open(dst).and_then(|f| f.sync_all()).map_err(BackupError::io(dst))?;
    Ok(())
}

/// A schema object as `sqlite_master` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    pub kind: String,
    pub name: String,
    pub table: String,
    pub sql: String,
}

fn sha_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The schema of `schema` (`main` or an attached name) without what SQLite makes by itself: its
/// own tables and indexes, and the shadow tables of R-tree virtual tables.
pub(crate) fn objects(conn: &Connection, schema: &str, path: &Path) -> Result<Vec<Object>> {
    let sql = format!(
        "SELECT type, name, tbl_name, sql FROM {schema}.sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
    );
    let mut stmt = conn.prepare(&sql).map_err(BackupError::sqlite(path))?;
    let all: Vec<Object> = stmt
        .query_map([], |r| Ok(Object { kind: r.get(0)?, name: r.get(1)?, table: r.get(2)?, sql: r.get(3)? }))
        .and_then(|rows| rows.collect())
        .map_err(BackupError::sqlite(path))?;
    let virtual_tables: Vec<String> =
        all.iter().filter(|o| o.kind == "table" && is_virtual(&o.sql)).map(|o| o.name.clone()).collect();
    let shadow = |name: &str| {
        virtual_tables.iter().any(|v| ["_node", "_parent", "_rowid"].iter().any(|s| name == format!("{v}{s}")))
    };
    Ok(all.into_iter().filter(|o| !o.name.starts_with("sqlite_") && !shadow(&o.name)).collect())
}

pub(crate) fn is_virtual(sql: &str) -> bool {
    sql.trim_start().get(..20).is_some_and(|s| s.eq_ignore_ascii_case("CREATE VIRTUAL TABLE"))
}

/// Tables whose rows a backup carries: every table of [`objects`] plus `sqlite_sequence` (the
/// feature tables' `AUTOINCREMENT` counters: a restored store never reuses a fid).
pub(crate) fn data_tables(conn: &Connection, schema: &str, path: &Path) -> Result<Vec<Object>> {
    let mut tables: Vec<Object> = objects(conn, schema, path)?.into_iter().filter(|o| o.kind == "table").collect();
    let seq: Option<String> = conn
        .query_row(&format!("SELECT sql FROM {schema}.sqlite_master WHERE name = 'sqlite_sequence'"), [], |r| r.get(0))
        .optional()
        .map_err(BackupError::sqlite(path))?;
    if let Some(sql) = seq {
        tables.push(Object {
            kind: "table".into(),
            name: "sqlite_sequence".into(),
            table: "sqlite_sequence".into(),
            sql,
        });
    }
    Ok(tables)
}

/// Columns of a table, and whether its rows need their `rowid` carried besides (rowid tables
/// without an `INTEGER PRIMARY KEY` alias; virtual R-trees carry theirs as `id`).
pub(crate) fn columns(conn: &Connection, schema: &str, table: &Object, path: &Path) -> Result<(Vec<String>, bool)> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA {schema}.table_info({})", quote_ident(&table.name)))
        .map_err(BackupError::sqlite(path))?;
    let cols: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(5)?)))
        .and_then(|rows| rows.collect())
        .map_err(BackupError::sqlite(path))?;
    let pks: Vec<&(String, String, i64)> = cols.iter().filter(|c| c.2 > 0).collect();
    let int_pk = pks.len() == 1 && pks[0].1.eq_ignore_ascii_case("INTEGER");
    let without_rowid = table.sql.to_ascii_uppercase().contains("WITHOUT ROWID");
    let rowid = !int_pk && !without_rowid && !is_virtual(&table.sql);
    Ok((cols.into_iter().map(|c| c.0).collect(), rowid))
}

fn hash_value(h: &mut Sha256, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.update([0u8]),
        ValueRef::Integer(i) => {
            h.update([1u8]);
            h.update(i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            h.update([2u8]);
            h.update(f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            h.update([3u8]);
            h.update((t.len() as u64).to_le_bytes());
            h.update(t);
        }
        ValueRef::Blob(b) => {
            h.update([4u8]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// Row count and hash of every table's content and every schema object's SQL, read on `conn`
/// (inside a snapshot for a live store). Rows are hashed in rowid order with their rowid, so two
/// stores with equal digests answer every query, change cursor included, alike.
pub(crate) fn digest(conn: &Connection, path: &Path, progress: &mut dyn FnMut(&str)) -> Result<StoreDigest> {
    let schema = objects(conn, "main", path)?
        .into_iter()
        .map(|o| SchemaEntry { kind: o.kind, name: o.name, sql_sha256: sha_hex(o.sql.as_bytes()) })
        .collect();
    let mut tables = Vec::new();
    for t in data_tables(conn, "main", path)? {
        progress(&t.name);
        let without_rowid = t.sql.to_ascii_uppercase().contains("WITHOUT ROWID");
        let (cols, _) = columns(conn, "main", &t, path)?;
        let list: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
        let name = quote_ident(&t.name);
        let sql = if without_rowid {
            let order: Vec<String> = (1..=list.len()).map(|i| i.to_string()).collect();
            format!("SELECT {} FROM main.{name} ORDER BY {}", list.join(", "), order.join(", "))
        } else {
            format!("SELECT rowid, {} FROM main.{name} ORDER BY rowid", list.join(", "))
        };
        let mut stmt = conn.prepare(&sql).map_err(BackupError::sqlite(path))?;
        let width = stmt.column_count();
        let mut rows = stmt.query([]).map_err(BackupError::sqlite(path))?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(r) = rows.next().map_err(BackupError::sqlite(path))? {
            for i in 0..width {
                hash_value(&mut h, r.get_ref(i).map_err(BackupError::sqlite(path))?);
            }
            n += 1;
        }
        tables.push(TableDigest { name: t.name, rows: n, sha256: format!("{:x}", h.finalize()) });
    }
    Ok(StoreDigest { schema, tables })
}

/// The store's id (`sk_meta.store_id`), or why this is not a store.
pub(crate) fn store_id(conn: &Connection, path: &Path) -> Result<String> {
    let not = |reason: String| BackupError::NotADataFolder { path: path.display().to_string(), reason };
    conn.query_row("SELECT value FROM sk_meta WHERE key = 'store_id'", [], |r| r.get(0))
        .optional()
        .map_err(|e| not(format!("{} is not a shikong store: {e}", path.display())))?
        .ok_or_else(|| not(format!("{} has no store id", path.display())))
}

/// The newest transaction and its instant (microseconds), `(0, None)` in an empty store.
pub(crate) fn last_tx(conn: &Connection, path: &Path) -> Result<(i64, Option<i64>)> {
    conn.query_row("SELECT coalesce(max(tx), 0), max(time_us) FROM sk_transactions", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(BackupError::sqlite(path))
}

/// The instant (microseconds) of transaction `tx`, if the store has it.
pub(crate) fn tx_time_us(conn: &Connection, path: &Path, tx: i64) -> Result<Option<i64>> {
    conn.query_row("SELECT time_us FROM sk_transactions WHERE tx = ?1", [tx], |r| r.get(0))
        .optional()
        .map_err(BackupError::sqlite(path))
}

/// How an incremental backup carries a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every row (small tables, and tables new or redefined since the previous backup).
    Whole,
    /// The rows the filter selects (written after the previous backup's transaction); applied
    /// as inserts that replace rows with the same key.
    Since,
    /// A layer's current table: like `Since`, and first the current rows of every entity the
    /// delta touches are removed (updated, deleted or restored since).
    Current,
    /// Not carried: a feature table's GeoPackage R-tree, kept by its triggers at apply.
    Derived,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Whole => "whole",
            Mode::Since => "since",
            Mode::Current => "current",
            Mode::Derived => "derived",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        [Mode::Whole, Mode::Since, Mode::Current, Mode::Derived].into_iter().find(|m| m.name() == s)
    }
}

/// What an incremental export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeltaStats {
    pub rows: u64,
    pub tables: u64,
}

/// The selection of a table's rows written after transaction `after`, by what the table is.
fn classify(name: &str, layers: &[String], after: i64) -> (Mode, String) {
    let hist_filter = format!("tx_from > {after} OR tx_to > {after}");
    match name {
        "sk_transactions" | "sk_schema_history" | "sk_sync_docs" => return (Mode::Since, format!("tx > {after}")),
        "sk_blobs" => return (Mode::Since, format!("uploaded_tx > {after}")),
        _ => {}
    }
    for l in layers {
        if name == l {
            return (Mode::Current, format!("sk_tx > {after}"));
        }
        if name == format!("sk_hist_{l}") {
            return (Mode::Since, hist_filter);
        }
        if name == format!("sk_hist_{l}_rtree") {
            let h = quote_ident(&format!("sk_hist_{l}"));
            return (Mode::Since, format!("id IN (SELECT hid FROM main.{h} WHERE {hist_filter})"));
        }
        if name == shikong_gpkg::rtree_name(l, "geom") {
            return (Mode::Derived, String::new());
        }
    }
    (Mode::Whole, String::new())
}

/// Writes the rows of the store `conn` (inside its snapshot) written after transaction `after`
/// into the new SQLite file `delta`, with the snapshot's whole schema. `previous` is the digest
/// of the store at `after`: a table new or redefined since is carried whole.
pub(crate) fn export_delta(
    conn: &Connection,
    path: &Path,
    delta: &Path,
    after: i64,
    previous: &StoreDigest,
    progress: &mut dyn FnMut(&str),
) -> Result<DeltaStats> {
    let e = BackupError::sqlite(delta);
    let out = Connection::open(delta).map_err(e)?;
    let mut stats = DeltaStats::default();
    let layers: Vec<String> = {
        let mut stmt = conn.prepare("SELECT name FROM sk_layers ORDER BY name").map_err(BackupError::sqlite(path))?;
        stmt.query_map([], |r| r.get(0)).and_then(|r| r.collect()).map_err(BackupError::sqlite(path))?
    };
    out.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; BEGIN;
         CREATE TABLE bk_meta (key TEXT PRIMARY KEY, value);
         CREATE TABLE bk_schema (type TEXT NOT NULL, name TEXT NOT NULL, tbl_name TEXT NOT NULL, sql TEXT NOT NULL);
         CREATE TABLE bk_tables (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL,
                                 data TEXT NOT NULL, layer TEXT, with_rowid INTEGER NOT NULL, columns TEXT NOT NULL);",
    )
    .map_err(BackupError::sqlite(delta))?;
    out.execute("INSERT INTO bk_meta VALUES ('after_tx', ?1)", [after]).map_err(BackupError::sqlite(delta))?;
    for o in objects(conn, "main", path)? {
        out.execute("INSERT INTO bk_schema VALUES (?1, ?2, ?3, ?4)", params![o.kind, o.name, o.table, o.sql])
            .map_err(BackupError::sqlite(delta))?;
    }
    for (i, t) in data_tables(conn, "main", path)?.into_iter().enumerate() {
        progress(&t.name);
        let unchanged = t.name == "sqlite_sequence"
            || previous.schema_sql("table", &t.name).is_some_and(|h| h == sha_hex(t.sql.as_bytes()));
        let (mode, filter) = if unchanged { classify(&t.name, &layers, after) } else { (Mode::Whole, String::new()) };
        let layer = layers.iter().find(|l| **l == t.name || t.name == format!("sk_hist_{l}")).cloned();
        let (cols, with_rowid) = columns(conn, "main", &t, path)?;
        let data = format!("d{i}");
        out.execute(
            "INSERT INTO bk_tables VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i64::try_from(i).unwrap_or(i64::MAX),
                t.name,
                mode.name(),
                data,
                layer,
                with_rowid,
                serde_json::to_string(&cols).unwrap_or_default()
            ],
        )
        .map_err(BackupError::sqlite(delta))?;
        if mode == Mode::Derived {
            continue;
        }
        // Untyped columns: values go in and come out exactly as stored (no affinity applied).
        let mut dcols: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
        if with_rowid {
            dcols.insert(0, "bk_rowid".into());
        }
        out.execute_batch(&format!("CREATE TABLE {data} ({});", dcols.join(", ")))
            .map_err(BackupError::sqlite(delta))?;
        let mut select: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
        if with_rowid {
            select.insert(0, "rowid".into());
        }
        let wh = if filter.is_empty() { String::new() } else { format!(" WHERE {filter}") };
        let sql = format!("SELECT {} FROM main.{}{wh}", select.join(", "), quote_ident(&t.name));
        let marks: Vec<String> = (1..=select.len()).map(|i| format!("?{i}")).collect();
        let mut ins = out
            .prepare(&format!("INSERT INTO {data} VALUES ({})", marks.join(", ")))
            .map_err(BackupError::sqlite(delta))?;
        let mut stmt = conn.prepare(&sql).map_err(BackupError::sqlite(path))?;
        let mut rows = stmt.query([]).map_err(BackupError::sqlite(path))?;
        while let Some(r) = rows.next().map_err(BackupError::sqlite(path))? {
            let values: Vec<ToSqlOutput<'_>> = (0..select.len())
                .map(|i| r.get_ref(i).map(ToSqlOutput::Borrowed))
                .collect::<rusqlite::Result<_>>()
                .map_err(BackupError::sqlite(path))?;
            ins.execute(rusqlite::params_from_iter(values)).map_err(BackupError::sqlite(delta))?;
            stats.rows += 1;
        }
        stats.tables += 1;
    }
    out.execute_batch("COMMIT;").map_err(BackupError::sqlite(delta))?;
    drop(out);
    std::fs::File::open(delta).and_then(|f| f.sync_all()).map_err(BackupError::io(delta))?;
    Ok(stats)
}

struct Carried {
    name: String,
    mode: Mode,
    data: String,
    layer: Option<String>,
    with_rowid: bool,
    columns: Vec<String>,
}

/// Applies an incremental export to the store `conn` (the state of the previous backup), in one
/// transaction: schema first (new and redefined tables, indexes, triggers), then rows.
pub(crate) fn apply_delta(conn: &Connection, store: &Path, delta: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let text = delta.to_str().ok_or_else(|| BackupError::Unsupported {
        path: delta.display().to_string(),
        reason: "the path is not UTF-8".into(),
    })?;
    conn.execute_batch("PRAGMA foreign_keys = OFF;").map_err(BackupError::sqlite(store))?;
    conn.execute("ATTACH DATABASE ?1 AS bk", [text]).map_err(BackupError::sqlite(delta))?;
    let result = (|| {
        conn.execute_batch("BEGIN IMMEDIATE;").map_err(BackupError::sqlite(store))?;
        let applied = apply_attached(conn, store, delta, progress);
        match applied {
            Ok(()) => conn.execute_batch("COMMIT;").map_err(BackupError::sqlite(store)),
            Err(err) => {
                let _ = conn.execute_batch("ROLLBACK;");
                Err(err)
            }
        }
    })();
    let detached = conn.execute_batch("DETACH DATABASE bk;").map_err(BackupError::sqlite(store));
    result.and(detached)
}

fn apply_attached(conn: &Connection, store: &Path, delta: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let es = || BackupError::sqlite(store);
    let ed = || BackupError::sqlite(delta);
    let want: Vec<Object> = {
        let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM bk.bk_schema").map_err(ed())?;
        stmt.query_map([], |r| Ok(Object { kind: r.get(0)?, name: r.get(1)?, table: r.get(2)?, sql: r.get(3)? }))
            .and_then(|rows| rows.collect())
            .map_err(ed())?
    };
    let have = objects(conn, "main", store)?;
    let find = |list: &[Object], o: &Object| list.iter().find(|x| x.kind == o.kind && x.name == o.name).cloned();
    // Objects the new state does not have: dependents first, tables last.
    for kind in ["trigger", "view", "index", "table"] {
        for o in have.iter().filter(|o| o.kind == kind && find(&want, o).is_none()) {
            conn.execute_batch(&format!("DROP {} IF EXISTS {};", kind.to_ascii_uppercase(), quote_ident(&o.name)))
                .map_err(es())?;
        }
    }
    // Tables new or redefined since (a field added or renamed): recreated, carried whole.
    let mut recreated = Vec::new();
    for o in want.iter().filter(|o| o.kind == "table") {
        match find(&have, o) {
            Some(h) if h.sql == o.sql => {}
            old => {
                if old.is_some() {
                    conn.execute_batch(&format!("DROP TABLE {};", quote_ident(&o.name))).map_err(es())?;
                }
                conn.execute_batch(&o.sql).map_err(es())?;
                recreated.push(o.name.clone());
            }
        }
    }
    for kind in ["index", "view", "trigger"] {
        for o in want.iter().filter(|o| o.kind == kind) {
            let same = find(&have, o).is_some_and(|h| h.sql == o.sql) && !recreated.contains(&o.table);
            if !same {
                conn.execute_batch(&format!("DROP {} IF EXISTS {};", kind.to_ascii_uppercase(), quote_ident(&o.name)))
                    .map_err(es())?;
                conn.execute_batch(&o.sql).map_err(es())?;
            }
        }
    }
    let carried: Vec<Carried> = {
        let mut stmt = conn
            .prepare("SELECT name, mode, data, layer, with_rowid, columns FROM bk.bk_tables ORDER BY seq")
            .map_err(ed())?;
        let rows: Vec<(String, String, String, Option<String>, bool, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .and_then(|rows| rows.collect())
            .map_err(ed())?;
        let mut out = Vec::new();
        for (name, mode, data, layer, with_rowid, columns) in rows {
            let bad = |what: &str| BackupError::Damaged {
                path: delta.display().to_string(),
                file: delta.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                reason: format!("table `{name}`: {what}"),
            };
            let mode = Mode::parse(&mode).ok_or_else(|| bad("unknown mode"))?;
            let columns = serde_json::from_str(&columns).map_err(|_| bad("bad column list"))?;
            out.push(Carried { name, mode, data, layer, with_rowid, columns });
        }
        out
    };
    // Rows: deltas first, whole tables after (they hold counters the inserts move, such as
    // `sqlite_sequence` and `gpkg_contents`), `sqlite_sequence` last of all.
    let rank = |c: &Carried| match (c.mode, c.name.as_str()) {
        (_, "sqlite_sequence") => 3,
        (Mode::Whole, _) => 2,
        _ => 1,
    };
    let mut order: Vec<&Carried> = carried.iter().filter(|c| c.mode != Mode::Derived).collect();
    order.sort_by_key(|c| rank(c));
    for c in order {
        progress(&c.name);
        let t = quote_ident(&c.name);
        let cols: Vec<String> = c.columns.iter().map(|x| quote_ident(x)).collect();
        let (target, source) = if c.with_rowid {
            (format!("rowid, {}", cols.join(", ")), format!("bk_rowid, {}", cols.join(", ")))
        } else {
            (cols.join(", "), cols.join(", "))
        };
        match c.mode {
            Mode::Whole => {
                if let Some(layer) = c.layer.as_deref().filter(|l| *l == c.name) {
                    // The R-tree is rebuilt by the table's triggers as its rows go back in.
                    conn.execute_batch(&format!(
                        "DELETE FROM {};",
                        quote_ident(&shikong_gpkg::rtree_name(layer, "geom"))
                    ))
                    .map_err(es())?;
                }
                conn.execute_batch(&format!("DELETE FROM main.{t};")).map_err(es())?;
                conn.execute_batch(&format!("INSERT INTO main.{t} ({target}) SELECT {source} FROM bk.{};", c.data))
                    .map_err(es())?;
            }
            Mode::Current => {
                let hist = carried
                    .iter()
                    .find(|h| h.layer == c.layer && h.name != c.name && h.mode != Mode::Derived)
                    .map(|h| format!(" UNION SELECT entity_id FROM bk.{}", h.data))
                    .unwrap_or_default();
                conn.execute_batch(&format!(
                    "DELETE FROM main.{t} WHERE entity_id IN (SELECT entity_id FROM bk.{}{hist});",
                    c.data
                ))
                .map_err(es())?;
                conn.execute_batch(&format!("INSERT INTO main.{t} ({target}) SELECT {source} FROM bk.{};", c.data))
                    .map_err(es())?;
            }
            Mode::Since => {
                conn.execute_batch(&format!(
                    "INSERT OR REPLACE INTO main.{t} ({target}) SELECT {source} FROM bk.{};",
                    c.data
                ))
                .map_err(es())?;
            }
            Mode::Derived => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_carried_by_what_they_hold() {
        let layers = vec!["manhole".to_owned()];
        assert_eq!(classify("manhole", &layers, 7), (Mode::Current, "sk_tx > 7".into()));
        assert_eq!(classify("sk_hist_manhole", &layers, 7), (Mode::Since, "tx_from > 7 OR tx_to > 7".into()));
        assert_eq!(classify("rtree_manhole_geom", &layers, 7).0, Mode::Derived);
        assert!(classify("sk_hist_manhole_rtree", &layers, 7).1.contains("SELECT hid FROM main.\"sk_hist_manhole\""));
        assert_eq!(classify("sk_sync_docs", &layers, 7), (Mode::Since, "tx > 7".into()));
        assert_eq!(classify("sk_blobs", &layers, 7), (Mode::Since, "uploaded_tx > 7".into()));
        assert_eq!(classify("sk_replicas", &layers, 7).0, Mode::Whole);
        assert_eq!(classify("gpkg_contents", &layers, 7).0, Mode::Whole);
        assert_eq!(classify("street", &layers, 7).0, Mode::Whole);
    }
}
