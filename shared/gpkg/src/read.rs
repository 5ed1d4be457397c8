//! Reading any GeoPackage's layers (files written by GDAL, QGIS or shikong itself).

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use shikong_model::{Geometry, gpkg_blob};

use crate::table::quote_ident;
use crate::{GpkgError, Result};

/// A column as declared in the table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    /// Declared type, upper-cased (`TEXT`, `INTEGER`, `BOOLEAN`, `DATETIME`, `TEXT(20)`…).
    pub decl_type: String,
    pub primary_key: bool,
}

/// A layer registered in `gpkg_contents`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    pub table: String,
    /// `features`, `attributes` or `tiles`.
    pub data_type: String,
    pub identifier: Option<String>,
    pub description: Option<String>,
    pub srs_id: Option<i32>,
    pub geometry_column: Option<String>,
    pub geometry_type: Option<String>,
    pub has_z: bool,
    pub columns: Vec<ColumnInfo>,
}

impl LayerInfo {
    /// The integer primary key column (`fid` in files GDAL writes).
    pub fn pk(&self) -> Option<&str> {
        self.columns.iter().find(|c| c.primary_key).map(|c| c.name.as_str())
    }

    /// Attribute columns: everything but the key and the geometry.
    pub fn attribute_columns(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.columns.iter().filter(move |c| !c.primary_key && Some(c.name.as_str()) != self.geometry_column.as_deref())
    }
}

/// Lists the feature and attribute layers of a GeoPackage.
pub fn list_layers(conn: &Connection) -> Result<Vec<LayerInfo>> {
    let mut stmt = conn.prepare(
        "SELECT c.table_name, c.data_type, c.identifier, c.description, c.srs_id, g.column_name, g.geometry_type_name, g.z \
         FROM gpkg_contents c LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name \
         WHERE c.data_type IN ('features', 'attributes') ORDER BY c.table_name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(LayerInfo {
            table: r.get(0)?,
            data_type: r.get(1)?,
            identifier: r.get(2)?,
            description: r.get(3)?,
            srs_id: r.get(4)?,
            geometry_column: r.get(5)?,
            geometry_type: r.get(6)?,
            has_z: r.get::<_, Option<i64>>(7)?.unwrap_or(0) != 0,
            columns: Vec::new(),
        })
    })?;
    let mut layers = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for l in &mut layers {
        let mut info = conn.prepare(&format!("PRAGMA table_info({})", quote_ident(&l.table)))?;
        l.columns = info
            .query_map([], |r| {
                Ok(ColumnInfo {
                    name: r.get(1)?,
                    decl_type: r.get::<_, String>(2)?.to_ascii_uppercase(),
                    primary_key: r.get::<_, i64>(5)? != 0,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(layers)
}

/// Calls `row` for every feature of `layer` in key order with its key, geometry (decoded; `None`
/// when null or empty) and attribute values in [`LayerInfo::attribute_columns`] order. `row`
/// returns `false` to stop early.
pub fn read_layer(
    conn: &Connection,
    layer: &LayerInfo,
    mut row: impl FnMut(i64, Option<Geometry>, Vec<SqlValue>) -> Result<bool>,
) -> Result<()> {
    let attrs: Vec<&ColumnInfo> = layer.attribute_columns().collect();
    let pk = layer.pk().map_or_else(|| "rowid".to_owned(), quote_ident);
    let geom = layer.geometry_column.as_deref().map_or_else(|| "NULL".to_owned(), quote_ident);
    let mut select = vec![pk.clone(), geom];
    select.extend(attrs.iter().map(|c| quote_ident(&c.name)));
    let sql = format!("SELECT {} FROM {} ORDER BY {pk}", select.join(", "), quote_ident(&layer.table));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let fid: i64 = r.get(0)?;
        let geometry = match r.get_ref(1)? {
            rusqlite::types::ValueRef::Blob(b) => {
                gpkg_blob::decode(b)
                    .map_err(|e| GpkgError::BadValue {
                        layer: layer.table.clone(),
                        fid,
                        column: layer.geometry_column.clone().unwrap_or_default(),
                        message: e.to_string(),
                    })?
                    .1
            }
            _ => None,
        };
        let values = (0..attrs.len()).map(|i| r.get::<_, SqlValue>(i + 2)).collect::<rusqlite::Result<Vec<_>>>()?;
        if !row(fid, geometry, values)? {
            break;
        }
    }
    Ok(())
}
