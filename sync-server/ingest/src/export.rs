//! Exporting a layer, current or as of an instant, to GeoJSON, GeoPackage or CSV.
//!
//! Every export carries the system attributes (`entity_id`, `code`, `valid_from`, `valid_to`,
//! `version`, `tx_time`) before the layer's fields, so that re-importing an export keeps identities
//! and codes.

use std::fs::File;
use std::path::Path;

use jiff::Timestamp;
use shikong_formats::{CsvWriter, GeoJsonWriter, GpkgWriter};
use shikong_model::{FieldDef, FieldType, Value, time};
use shikong_store::{FeatureStore, Query, StoredFeature};

use crate::json;

/// Why an export failed; a failed export leaves no file behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: already exists; choose another name or delete it first")]
    Exists(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] shikong_store::StoreError),
    #[error(transparent)]
    Format(#[from] shikong_formats::FormatError),
}

/// The file formats a layer exports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Geojson,
    Gpkg,
    Csv,
}

fn system_values(f: &StoredFeature) -> Vec<Value> {
    vec![
        Value::Text(f.feature.id.to_string()),
        Value::Text(f.feature.code.clone()),
        f.feature.valid.from.map_or(Value::Null, Value::DateTime),
        f.feature.valid.to.map_or(Value::Null, Value::DateTime),
        Value::Integer(f.version),
        Value::DateTime(f.tx_time),
    ]
}

fn system_fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("entity_id", FieldType::Text),
        FieldDef::new("code", FieldType::Text),
        FieldDef::new("valid_from", FieldType::DateTime),
        FieldDef::new("valid_to", FieldType::DateTime),
        FieldDef::new("version", FieldType::Integer),
        FieldDef::new("tx_time", FieldType::DateTime),
    ]
}

/// Counts a written feature, or keeps the first failure and stops the query (returns false).
fn tally<E: Into<ExportError>>(written: Result<(), E>, n: &mut u64, failure: &mut Option<ExportError>) -> bool {
    match written {
        Ok(()) => {
            *n += 1;
            true
        }
        Err(e) => {
            *failure = Some(e.into());
            false
        }
    }
}

/// Writes the layer to `out`; returns the number of features written.
pub fn export(
    store: &dyn FeatureStore,
    layer: &str,
    as_of: Option<Timestamp>,
    format: Format,
    out: &Path,
) -> Result<u64, ExportError> {
    let l = store.layer(layer)?;
    if out.exists() {
        return Err(ExportError::Exists(out.display().to_string()));
    }
    let io = |source| ExportError::Io { path: out.display().to_string(), source };
    let q = Query { as_of, ..Query::layer(layer) };
    let mut n = 0u64;
    let mut failure: Option<ExportError> = None;
    match format {
        Format::Geojson => {
            let file =
                File::create(out).map_err(|source| ExportError::Io { path: out.display().to_string(), source })?;
            let mut w = GeoJsonWriter::new(file, l.display_name()).map_err(io)?;
            store.query(&q, &mut |f| tally(w.write(&json::feature(&l, &f)).map_err(io), &mut n, &mut failure))?;
            w.finish().map_err(io)?;
        }
        Format::Csv => {
            let file =
                File::create(out).map_err(|source| ExportError::Io { path: out.display().to_string(), source })?;
            let mut columns: Vec<String> = system_fields().into_iter().map(|f| f.name).collect();
            columns.extend(l.schema().fields.iter().map(|f| f.name.clone()));
            let mut w = CsvWriter::new(file, &columns).map_err(io)?;
            store.query(&q, &mut |f| {
                let mut cells: Vec<String> = system_values(&f)
                    .iter()
                    .map(|v| match v {
                        Value::DateTime(t) => time::beijing(*t),
                        other => other.to_text(),
                    })
                    .collect();
                cells.extend(
                    l.schema()
                        .fields
                        .iter()
                        .map(|fd| f.feature.properties.get(&fd.name).map(Value::to_text).unwrap_or_default()),
                );
                tally(w.write(&cells, f.feature.geometry.as_ref()).map_err(io), &mut n, &mut failure)
            })?;
            w.finish().map_err(io)?;
        }
        Format::Gpkg => {
            let mut columns = system_fields();
            columns.extend(l.schema().fields.iter().map(|f| FieldDef::new(f.name.clone(), f.ty)));
            let mut w = GpkgWriter::create(
                out,
                l.name(),
                l.display_name(),
                l.def.geometry_kind,
                l.def.has_z,
                l.srs_id,
                &columns,
            )?;
            store.query(&q, &mut |f| {
                let mut values = system_values(&f);
                values.extend(
                    l.schema()
                        .fields
                        .iter()
                        .map(|fd| f.feature.properties.get(&fd.name).cloned().unwrap_or(Value::Null)),
                );
                tally(w.write(f.feature.geometry.as_ref(), &values), &mut n, &mut failure)
            })?;
            if failure.is_none() {
                w.finish()?;
            }
        }
    }
    if let Some(e) = failure {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(n)
}
