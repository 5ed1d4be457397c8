//! The R-tree spatial index extension (`gpkg_rtree_index`) and its triggers.
//!
//! The triggers keep the index right when *any* program edits the table (QGIS on a replica, for
//! example). Bulk loads drop them, insert, rebuild the index in one statement and put them back,
//! which is what GDAL does too and is several times faster than per-row trigger maintenance.

use rusqlite::{Connection, params};

use crate::Result;
use crate::table::quote_ident;

/// `rtree_<table>_<column>`.
pub fn rtree_name(table: &str, column: &str) -> String {
    format!("rtree_{table}_{column}")
}

/// Creates the R-tree virtual table, registers the extension and creates the triggers.
pub fn create_rtree(conn: &Connection, table: &str, column: &str) -> Result<()> {
    let rt = quote_ident(&rtree_name(table, column));
    conn.execute_batch(&format!("CREATE VIRTUAL TABLE {rt} USING rtree(id, minx, maxx, miny, maxy);"))?;
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) \
         VALUES (?1, ?2, 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
        params![table, column],
    )?;
    create_rtree_triggers(conn, table, column)
}

const TRIGGER_SUFFIXES: [&str; 6] = ["insert", "update1", "update2", "update3", "update4", "delete"];

/// Creates the GeoPackage 1.3 R-tree triggers (Annex F.3) for `table.column`; the key is `fid`.
pub fn create_rtree_triggers(conn: &Connection, table: &str, column: &str) -> Result<()> {
    let t = quote_ident(table);
    let c = quote_ident(column);
    let rn = rtree_name(table, column);
    let rt = quote_ident(&rn);
    let trig = |suffix: &str| quote_ident(&format!("{rn}_{suffix}"));
    let values = format!("NEW.fid, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c})");
    conn.execute_batch(&format!(
        "CREATE TRIGGER {insert} AFTER INSERT ON {t} WHEN (new.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c}))
         BEGIN INSERT OR REPLACE INTO {rt} VALUES ({values}); END;
         CREATE TRIGGER {u1} AFTER UPDATE OF {c} ON {t}
           WHEN OLD.fid = NEW.fid AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))
         BEGIN INSERT OR REPLACE INTO {rt} VALUES ({values}); END;
         CREATE TRIGGER {u2} AFTER UPDATE OF {c} ON {t}
           WHEN OLD.fid = NEW.fid AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))
         BEGIN DELETE FROM {rt} WHERE id = OLD.fid; END;
         CREATE TRIGGER {u3} AFTER UPDATE OF {c} ON {t}
           WHEN OLD.fid != NEW.fid AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))
         BEGIN DELETE FROM {rt} WHERE id = OLD.fid; INSERT OR REPLACE INTO {rt} VALUES ({values}); END;
         CREATE TRIGGER {u4} AFTER UPDATE ON {t}
           WHEN OLD.fid != NEW.fid AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))
         BEGIN DELETE FROM {rt} WHERE id IN (OLD.fid, NEW.fid); END;
         CREATE TRIGGER {del} AFTER DELETE ON {t} WHEN old.{c} NOT NULL
         BEGIN DELETE FROM {rt} WHERE id = OLD.fid; END;",
        insert = trig("insert"),
        u1 = trig("update1"),
        u2 = trig("update2"),
        u3 = trig("update3"),
        u4 = trig("update4"),
        del = trig("delete"),
    ))?;
    Ok(())
}

/// Drops the triggers (before a bulk load; call [`rebuild_rtree`] and
/// [`create_rtree_triggers`] afterwards, in the same transaction).
pub fn drop_rtree_triggers(conn: &Connection, table: &str, column: &str) -> Result<()> {
    let rn = rtree_name(table, column);
    for suffix in TRIGGER_SUFFIXES {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", quote_ident(&format!("{rn}_{suffix}"))))?;
    }
    Ok(())
}

/// Refills the index from the table.
pub fn rebuild_rtree(conn: &Connection, table: &str, column: &str) -> Result<()> {
    let t = quote_ident(table);
    let c = quote_ident(column);
    let rt = quote_ident(&rtree_name(table, column));
    conn.execute_batch(&format!(
        "DELETE FROM {rt};
         INSERT INTO {rt} SELECT fid, ST_MinX({c}), ST_MaxX({c}), ST_MinY({c}), ST_MaxY({c}) FROM {t}
           WHERE {c} NOT NULL AND NOT ST_IsEmpty({c});"
    ))?;
    Ok(())
}
