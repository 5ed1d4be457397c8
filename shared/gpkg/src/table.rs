//! Feature tables: creation and registration in the GeoPackage metadata.

use rusqlite::{Connection, params};
use shikong_model::GeometryKind;

use crate::srs::{ensure_srs, srs_for_epsg};
use crate::{GpkgError, Result, rtree};

/// Quotes an SQL identifier (table or column name), doubling embedded quotes. Names may be
/// Chinese; SQLite and GeoPackage readers handle UTF-8 identifiers.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A non-geometry column of a feature table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// A GeoPackage data type: TEXT, INTEGER, REAL, BOOLEAN, DATE, DATETIME, BLOB…
    pub sql_type: String,
    pub not_null: bool,
    pub unique: bool,
}

impl ColumnDef {
    pub fn new(name: impl Into<String>, sql_type: impl Into<String>) -> Self {
        ColumnDef { name: name.into(), sql_type: sql_type.into(), not_null: false, unique: false }
    }

    pub fn sql(&self) -> String {
        let mut s = format!("{} {}", quote_ident(&self.name), self.sql_type);
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        if self.unique {
            s.push_str(" UNIQUE");
        }
        s
    }
}

/// Everything needed to create and register a feature table.
#[derive(Debug, Clone)]
pub struct FeatureTableDef<'a> {
    pub table: &'a str,
    /// Human-readable name (`gpkg_contents.identifier`), e.g. the Chinese title; unique.
    pub identifier: &'a str,
    pub description: &'a str,
    pub geometry_column: &'a str,
    pub kind: GeometryKind,
    pub has_z: bool,
    pub srs_id: i32,
    pub columns: &'a [ColumnDef],
}

/// Creates the table (integer primary key `fid`), registers it, and creates its R-tree index
/// with triggers.
pub fn create_feature_table(conn: &Connection, def: &FeatureTableDef<'_>) -> Result<()> {
    let srs = srs_for_epsg(def.srs_id).ok_or(GpkgError::UnknownSrs(def.srs_id))?;
    ensure_srs(conn, &srs)?;
    let mut cols = vec![
        "fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL".to_owned(),
        format!("{} {}", quote_ident(def.geometry_column), def.kind.name()),
    ];
    cols.extend(def.columns.iter().map(ColumnDef::sql));
    conn.execute_batch(&format!("CREATE TABLE {} (\n  {}\n);", quote_ident(def.table), cols.join(",\n  ")))?;
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES (?1, 'features', ?2, ?3, ?4)",
        params![def.table, def.identifier, def.description, def.srs_id],
    )?;
    conn.execute(
        "INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, srs_id, z, m) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
        params![def.table, def.geometry_column, def.kind.name(), def.srs_id, i32::from(def.has_z) * 2],
    )?;
    rtree::create_rtree(conn, def.table, def.geometry_column)?;
    Ok(())
}

/// Updates `gpkg_contents.last_change` (readers use it to notice edits).
pub fn touch_contents(conn: &Connection, table: &str) -> Result<()> {
    conn.execute(
        "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = ?1",
        [table],
    )?;
    Ok(())
}

/// Recomputes the extent in `gpkg_contents` from the table's R-tree.
pub fn update_extent(conn: &Connection, table: &str, geometry_column: &str) -> Result<()> {
    let rt = quote_ident(&rtree::rtree_name(table, geometry_column));
    conn.execute(
        &format!(
            "UPDATE gpkg_contents SET (min_x, max_x, min_y, max_y) = (SELECT min(minx), max(maxx), min(miny), max(maxy) FROM {rt}), \
             last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = ?1"
        ),
        [table],
    )?;
    Ok(())
}
