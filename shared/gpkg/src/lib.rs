//! The GeoPackage container (OGC 12-128r17, GeoPackage 1.3), shared by the central store and the
//! device replicas: both are GeoPackages so that GDAL and QGIS open them as they are.
//!
//! This crate knows the *container*: core metadata tables, spatial reference systems, feature
//! tables registered in `gpkg_contents`/`gpkg_geometry_columns`, the R-tree spatial index extension
//! with the triggers the standard prescribes, and the SQL functions (`ST_MinX` …) those triggers
//! call (GeoPackage 1.3), and how a field value sits in an attribute column ([`value`]). It does
//! not know shikong's history or sync tables; those are built on top by their owners.

#![forbid(unsafe_code)]

mod error;
mod functions;
mod read;
mod rtree;
mod srs;
mod table;
pub mod value;

pub use error::{GpkgError, Result};
pub use functions::register_functions;
pub use read::{ColumnInfo, LayerInfo, list_layers, read_layer};
pub use rtree::{create_rtree, create_rtree_triggers, drop_rtree_triggers, rebuild_rtree, rtree_name};
pub use srs::{SrsDef, ensure_srs, srs_for_epsg};
pub use table::{ColumnDef, FeatureTableDef, create_feature_table, quote_ident, touch_contents, update_extent};
pub use value::ValueError;

use rusqlite::Connection;

/// `application_id` of a GeoPackage: ASCII "GPKG".
pub const APPLICATION_ID: i32 = 0x4750_4B47;
/// `user_version` for GeoPackage 1.3.0: what GDAL 3.6 (Debian bookworm) reads without warnings.
pub const USER_VERSION: i32 = 10300;

/// Makes `conn` a GeoPackage: sets the header fields, creates the core tables when missing and
/// registers the required spatial reference systems (-1, 0, EPSG:4326, and CGCS2000 EPSG:4490).
/// Idempotent.
pub fn init(conn: &Connection) -> Result<()> {
    register_functions(conn)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    let uv: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if uv < USER_VERSION {
        conn.pragma_update(None, "user_version", USER_VERSION)?;
    }
    conn.execute_batch(CORE_DDL)?;
    for srs in [srs::undefined_cartesian(), srs::undefined_geographic()] {
        ensure_srs(conn, &srs)?;
    }
    for code in [4326, 4490] {
        if let Some(s) = srs_for_epsg(code) {
            ensure_srs(conn, &s)?;
        }
    }
    Ok(())
}

/// Whether `conn` holds a GeoPackage (header and core tables).
pub fn is_geopackage(conn: &Connection) -> Result<bool> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let has: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('gpkg_contents', 'gpkg_spatial_ref_sys')",
        [],
        |r| r.get(0),
    )?;
    Ok(app == APPLICATION_ID && has == 2)
}

const CORE_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition TEXT NOT NULL,
  description TEXT
);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
);
CREATE TABLE IF NOT EXISTS gpkg_tile_matrix_set (
  table_name TEXT NOT NULL PRIMARY KEY,
  srs_id INTEGER NOT NULL,
  min_x DOUBLE NOT NULL, min_y DOUBLE NOT NULL, max_x DOUBLE NOT NULL, max_y DOUBLE NOT NULL,
  CONSTRAINT fk_gtms_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gtms_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_tile_matrix (
  table_name TEXT NOT NULL,
  zoom_level INTEGER NOT NULL,
  matrix_width INTEGER NOT NULL,
  matrix_height INTEGER NOT NULL,
  tile_width INTEGER NOT NULL,
  tile_height INTEGER NOT NULL,
  pixel_x_size DOUBLE NOT NULL,
  pixel_y_size DOUBLE NOT NULL,
  CONSTRAINT pk_ttm PRIMARY KEY (table_name, zoom_level),
  CONSTRAINT fk_tmm_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name)
);
"#;

#[cfg(test)]
mod tests;
