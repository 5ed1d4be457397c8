//! GeoPackage files made by other tools (read) and exports (write). Column values are read and
//! written by the store's codec (`shikong_gpkg::value`), with each column's type taken from its
//! declared SQL type; columns of other types (BLOB …) are skipped.

use std::path::Path;

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use shikong_gpkg::{ColumnDef, FeatureTableDef, LayerInfo};
use shikong_model::{Crs, FieldDef, FieldType, Geometry, GeometryKind, Value, gpkg_blob};

use crate::error::{FormatError, Location, Result};
use crate::{Progress, RawValue, Record, Source, SourceOptions};

pub(crate) struct GpkgSource {
    name: String,
    conn: Connection,
    layer: LayerInfo,
    crs: Crs,
    progress: Progress,
}

fn field_type(decl: &str) -> Option<FieldType> {
    let base = decl.split('(').next().unwrap_or("").trim();
    Some(match base {
        "TEXT" => FieldType::Text,
        "INTEGER" | "INT" | "MEDIUMINT" | "SMALLINT" | "TINYINT" => FieldType::Integer,
        "REAL" | "DOUBLE" | "FLOAT" => FieldType::Real,
        "BOOLEAN" => FieldType::Bool,
        "DATE" => FieldType::Date,
        "DATETIME" => FieldType::DateTime,
        _ => return None, // BLOB and others are skipped
    })
}

impl GpkgSource {
    pub(crate) fn open(path: &Path, opts: &SourceOptions) -> Result<Self> {
        let name = path.display().to_string();
        let fail = |m: String| FormatError::file(&name, m);
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| fail(e.to_string()))?;
        if !shikong_gpkg::is_geopackage(&conn).map_err(|e| fail(format!("not a GeoPackage: {e}")))? {
            return Err(fail("not a GeoPackage (no GPKG application id or core tables)".into()));
        }
        let layers = shikong_gpkg::list_layers(&conn).map_err(|e| fail(e.to_string()))?;
        let layer = match &opts.layer {
            Some(l) => layers.iter().find(|x| &x.table == l).cloned().ok_or_else(|| {
                fail(format!(
                    "no layer `{l}` (layers: {})",
                    layers.iter().map(|x| x.table.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?,
            None => match layers.as_slice() {
                [one] => one.clone(),
                [] => return Err(fail("no feature or attribute layers".into())),
                many => {
                    return Err(fail(format!(
                        "{} layers ({}); choose one with --source-layer",
                        many.len(),
                        many.iter().map(|x| x.table.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
            },
        };
        let srs = layer.srs_id.unwrap_or(4490);
        let crs = match opts.crs {
            Some(c) => c,
            None => {
                let (org, code): (String, i64) = conn
                    .query_row(
                        "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?1",
                        [srs],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(|e| fail(format!("SRS {srs}: {e}")))?;
                match u32::try_from(code) {
                    Ok(c) if org.eq_ignore_ascii_case("EPSG") && Crs::is_supported_epsg(c) => Crs::Epsg(c),
                    _ if layer.geometry_column.is_none() => Crs::CGCS2000,
                    _ => {
                        return Err(fail(format!(
                            "layer `{}` uses SRS {org}:{code}, which shikong does not support; pass --crs",
                            layer.table
                        )));
                    }
                }
            }
        };
        let count: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {}", shikong_gpkg::quote_ident(&layer.table)), [], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?;
        Ok(GpkgSource { name, conn, layer, crs, progress: Progress::new(u64::try_from(count).unwrap_or(0)) })
    }
}

impl Source for GpkgSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn declared_fields(&self) -> Option<Vec<(String, FieldType)>> {
        Some(self.layer.attribute_columns().filter_map(|c| Some((c.name.clone(), field_type(&c.decl_type)?))).collect())
    }

    fn declared_kind(&self) -> Option<GeometryKind> {
        self.layer.geometry_type.as_deref().and_then(|t| t.parse().ok())
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let cols: Vec<(String, Option<FieldType>)> =
            self.layer.attribute_columns().map(|c| (c.name.clone(), field_type(&c.decl_type))).collect();
        let mut n = 0usize;
        let name = self.name.clone();
        let progress = self.progress.clone();
        let mut failure = None;
        let res = shikong_gpkg::read_layer(&self.conn, &self.layer, |_, geometry, values| {
            n += 1;
            let at = Location::Feature(n);
            let mut properties = Vec::with_capacity(cols.len());
            for ((col, ty), v) in cols.iter().zip(values) {
                let Some(ty) = ty else { continue };
                // A BLOB in a typed column (some tools write one) is left out, as BLOB columns are.
                if matches!(v, Sql::Blob(_)) {
                    continue;
                }
                let value = match shikong_gpkg::value::from_sql(ValueRef::from(&v), *ty) {
                    Ok(value) => value,
                    Err(e) => {
                        failure = Some(FormatError::at(&name, at, e.to_string()).field(col));
                        return Ok(false);
                    }
                };
                properties.push((col.clone(), RawValue::Typed(value)));
            }
            if let Err(e) = on_record(Record { location: at, geometry, properties }) {
                failure = Some(e);
                return Ok(false);
            }
            progress.set(n as u64);
            Ok(true)
        });
        if let Some(f) = failure {
            return Err(f);
        }
        res.map_err(|e| FormatError::file(&self.name, e.to_string()))
    }
}

/// Writes one feature layer into a new GeoPackage (exports).
#[derive(Debug)]
pub struct GpkgWriter {
    conn: Connection,
    table: String,
    srs_id: i32,
    insert: String,
}

impl GpkgWriter {
    /// Creates `path` (which must not exist) with one layer. `columns` are the attribute columns in
    /// order (system fields first, as the exporter chooses).
    pub fn create(
        path: &Path,
        table: &str,
        title: &str,
        kind: GeometryKind,
        has_z: bool,
        srs_id: i32,
        columns: &[FieldDef],
    ) -> Result<Self> {
        let name = path.display().to_string();
        let fail = |e: String| FormatError::file(&name, e);
        if path.exists() {
            return Err(fail("already exists; choose another name or delete it first".into()));
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; BEGIN;")
            .map_err(|e| fail(e.to_string()))?;
        shikong_gpkg::init(&conn).map_err(|e| fail(e.to_string()))?;
        let cols: Vec<ColumnDef> = columns.iter().map(|f| ColumnDef::new(&f.name, f.ty.sql_type())).collect();
        shikong_gpkg::create_feature_table(
            &conn,
            &FeatureTableDef {
                table,
                identifier: title,
                description: "",
                geometry_column: "geom",
                kind,
                has_z,
                srs_id,
                columns: &cols,
            },
        )
        .map_err(|e| fail(e.to_string()))?;
        shikong_gpkg::drop_rtree_triggers(&conn, table, "geom").map_err(|e| fail(e.to_string()))?;
        let mut names = vec!["geom".to_owned()];
        names.extend(columns.iter().map(|f| shikong_gpkg::quote_ident(&f.name)));
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            shikong_gpkg::quote_ident(table),
            names.join(", "),
            marks.join(", ")
        );
        Ok(GpkgWriter { conn, table: table.to_owned(), srs_id, insert })
    }

    /// Writes one feature; `values` in column order.
    pub fn write(&mut self, geometry: Option<&Geometry>, values: &[Value]) -> Result<()> {
        let mut row = Vec::with_capacity(values.len() + 1);
        row.push(geometry.map_or(Sql::Null, |g| Sql::Blob(gpkg_blob::encode(g, self.srs_id))));
        row.extend(values.iter().map(shikong_gpkg::value::to_sql));
        self.conn
            .prepare_cached(&self.insert)
            .and_then(|mut s| s.execute(params_from_iter(row)))
            .map_err(|e| FormatError::file(&self.table, e.to_string()))?;
        Ok(())
    }

    /// Builds the spatial index, records the extent and commits.
    pub fn finish(self) -> Result<()> {
        let fail = |e: String| FormatError::file(&self.table, e);
        shikong_gpkg::rebuild_rtree(&self.conn, &self.table, "geom").map_err(|e| fail(e.to_string()))?;
        shikong_gpkg::create_rtree_triggers(&self.conn, &self.table, "geom").map_err(|e| fail(e.to_string()))?;
        shikong_gpkg::update_extent(&self.conn, &self.table, "geom").map_err(|e| fail(e.to_string()))?;
        self.conn.execute_batch("COMMIT;").map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::Coord;

    #[test]
    fn written_packages_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.gpkg");
        let cols = vec![
            FieldDef::new("名称", FieldType::Text),
            FieldDef::new("depth", FieldType::Real),
            FieldDef::new("ok", FieldType::Bool),
        ];
        let mut w = GpkgWriter::create(&p, "manhole", "井盖", GeometryKind::Point, false, 4490, &cols).unwrap();
        w.write(
            Some(&Geometry::Point(Coord::xy(114.3, 30.5))),
            &[Value::from("井盖一"), Value::Real(1.5), Value::Bool(true)],
        )
        .unwrap();
        w.finish().unwrap();
        let mut src = GpkgSource::open(&p, &SourceOptions::default()).unwrap();
        assert_eq!(src.crs(), Crs::CGCS2000);
        assert_eq!(src.declared_kind(), Some(GeometryKind::Point));
        let mut recs = vec![];
        src.read(&mut |r| {
            recs.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].properties[0].1, RawValue::Typed(Value::from("井盖一")));
        assert_eq!(recs[0].properties[2].1, RawValue::Typed(Value::Bool(true)));
        assert!(
            GpkgWriter::create(&p, "x", "x", GeometryKind::Point, false, 4490, &cols)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
    }

    fn read_all(p: &Path) -> Result<Vec<Record>> {
        let mut src = GpkgSource::open(p, &SourceOptions::default())?;
        let mut recs = vec![];
        src.read(&mut |r| {
            recs.push(r);
            Ok(())
        })?;
        Ok(recs)
    }

    #[test]
    fn dates_and_instants_read_back_typed_and_bad_cells_name_feature_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dates.gpkg");
        let cols = vec![FieldDef::new("建成日期", FieldType::Date), FieldDef::new("巡查时间", FieldType::DateTime)];
        let day = Value::Date(jiff::civil::date(2025, 6, 1));
        let instant = Value::DateTime("2025-06-01T00:00:00.123Z".parse().unwrap());
        let mut w = GpkgWriter::create(&p, "t", "t", GeometryKind::Point, false, 4490, &cols).unwrap();
        w.write(None, &[day.clone(), instant.clone()]).unwrap();
        w.write(None, &[Value::Null, Value::Null]).unwrap();
        w.finish().unwrap();
        let recs = read_all(&p).unwrap();
        assert_eq!(recs[0].properties[0].1, RawValue::Typed(day));
        assert_eq!(recs[0].properties[1].1, RawValue::Typed(instant));
        assert_eq!(recs[1].properties[0].1, RawValue::Typed(Value::Null));

        let conn = Connection::open(&p).unwrap();
        shikong_gpkg::register_functions(&conn).unwrap();
        conn.execute("UPDATE t SET \"巡查时间\" = 'yesterday' WHERE fid = 2", []).unwrap();
        drop(conn);
        let e = read_all(&p).unwrap_err();
        assert_eq!((e.location, e.field.as_deref()), (Some(Location::Feature(2)), Some("巡查时间")));
        assert!(e.message.contains("yesterday"), "{e}");
    }
}
