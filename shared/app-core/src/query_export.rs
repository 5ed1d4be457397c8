//! Export of a query's result or of a selection (the desktop's attribute table, issue 16):
//! GeoJSON, CSV (UTF-8 with a BOM for Excel; WKT, plus lon/lat columns when asked) or
//! GeoPackage, written to the file the user chose.
//!
//! Streaming and bounded: the features come from the server a page at a time (the query's keyset
//! cursor; a selection in groups of ids) and each page is written before the next is asked for,
//! so exporting a 1M-feature layer never holds more than one page. The file is written beside the
//! target (`NAME.part`) and renamed into place at the end: a failed export leaves no half file.
//! Progress is reported after every page.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use shikong_formats::{CsvWriter, GeoJsonWriter, GpkgWriter};
use shikong_model::{FieldDef, FieldType, Geometry, GeometryKind, Value, geojson};
use shikong_protocol::api::Feature;
use shikong_sync_client::query::{ItemsQuery, cursor_of};

use crate::AppError;
use crate::dispatch::SyncClient;
use crate::query::{FieldKind, QueryField, id_filters};

/// Features per request while exporting.
pub const PAGE: u32 = 1000;
/// Ids per request when exporting a selection (the filter stays well under the server's 16 KiB).
pub const ID_GROUP: usize = 200;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Geojson,
    Csv,
    Gpkg,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Geojson => "geojson",
            ExportFormat::Csv => "csv",
            ExportFormat::Gpkg => "gpkg",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub layer: String,
    /// The layer's geometry type (`Point`, `LineString` …; for the GeoPackage table).
    #[serde(default)]
    pub geometry_type: Option<String>,
    /// The query's CQL2 text (ignored when `ids` is given).
    #[serde(default)]
    pub filter: Option<String>,
    /// The table's instant (transaction time), if it shows the past.
    #[serde(default)]
    pub as_of: Option<String>,
    /// The query's division, `COLLECTION/FEATURE` (the items `intersects` parameter; ignored
    /// when `ids` is given).
    #[serde(default)]
    pub intersects: Option<String>,
    /// Export these features (the selection) instead of the whole query result.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    pub format: ExportFormat,
    /// CSV: also `经度`/`纬度` columns (a point's coordinates).
    #[serde(default)]
    pub lon_lat: bool,
    /// The layer's fields (the table's columns, from the queryables), for typed GeoPackage columns.
    #[serde(default)]
    pub fields: Vec<QueryField>,
}

/// Progress after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportProgress {
    pub written: u64,
    /// Known for a selection and for counted answers.
    pub total: Option<u64>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    pub path: String,
    pub features: u64,
    pub bytes: u64,
}

/// The system properties every feature carries, first in CSV and GeoPackage.
const SYSTEM: [(&str, FieldType); 6] = [
    ("entity_id", FieldType::Text),
    ("code", FieldType::Text),
    ("valid_from", FieldType::DateTime),
    ("valid_to", FieldType::DateTime),
    ("version", FieldType::Integer),
    ("tx_time", FieldType::DateTime),
];

/// A feature's property as a CSV cell: text as is, arrays `;`-joined, null empty.
fn cell(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

fn system_json(f: &Feature) -> [Json; 6] {
    let p = &f.properties;
    let opt = |s: &Option<String>| s.clone().map_or(Json::Null, Json::String);
    [
        Json::String(p.entity_id.clone()),
        Json::String(p.code.clone()),
        opt(&p.valid_from),
        opt(&p.valid_to),
        Json::from(p.version),
        Json::String(p.tx_time.clone()),
    ]
}

fn field_type(kind: FieldKind) -> FieldType {
    match kind {
        FieldKind::Integer => FieldType::Integer,
        FieldKind::Number => FieldType::Real,
        FieldKind::Boolean => FieldType::Bool,
        FieldKind::Date => FieldType::Date,
        FieldKind::DateTime => FieldType::DateTime,
        FieldKind::Text | FieldKind::Geometry => FieldType::Text,
    }
}

enum Sink {
    Json(GeoJsonWriter<File>),
    Csv { w: CsvWriter<BufWriter<File>>, columns: Option<Vec<String>>, lon_lat: bool },
    Gpkg { w: GpkgWriter, defs: Vec<FieldDef> },
}

/// One feature's geometry as the model's.
fn geometry(f: &Feature, what: &str) -> Result<Option<Geometry>, AppError> {
    f.geometry
        .as_ref()
        .filter(|g| !g.is_null())
        .map(geojson::from_json)
        .transpose()
        .map_err(|e| AppError::Input { field: what.to_owned(), message: format!("feature {}: {e}", f.id) })
}

impl Sink {
    fn write(&mut self, f: &Feature, file: &Path) -> Result<(), AppError> {
        let io = |e: std::io::Error| AppError::Io { path: file.to_owned(), source: e };
        let what = file.display().to_string();
        match self {
            Sink::Json(w) => w.write(&serde_json::to_value(f).map_err(|e| io(e.into()))?).map_err(io),
            Sink::Csv { w, columns, lon_lat } => {
                let cols = columns.get_or_insert_with(|| f.properties.fields.keys().cloned().collect());
                let g = geometry(f, &what)?;
                let mut cells: Vec<String> = system_json(f).iter().map(cell).collect();
                cells.extend(cols.iter().map(|c| f.properties.fields.get(c).map(cell).unwrap_or_default()));
                if *lon_lat {
                    match &g {
                        Some(Geometry::Point(c)) => cells.extend([c.x.to_string(), c.y.to_string()]),
                        _ => cells.extend([String::new(), String::new()]),
                    }
                }
                w.write(&cells, g.as_ref()).map_err(io)
            }
            Sink::Gpkg { w, defs } => {
                let g = geometry(f, &what)?;
                let sys = system_json(f);
                let mut values = Vec::with_capacity(defs.len());
                for (i, d) in defs.iter().enumerate() {
                    let j = if i < SYSTEM.len() {
                        sys[i].clone()
                    } else {
                        f.properties.fields.get(&d.name).cloned().unwrap_or(Json::Null)
                    };
                    values.push(d.coerce_json(&j).unwrap_or_else(|_| Value::Text(cell(&j))));
                }
                w.write(g.as_ref(), &values)
                    .map_err(|e| AppError::Input { field: what.clone(), message: e.to_string() })
            }
        }
    }

    fn finish(self, file: &Path) -> Result<(), AppError> {
        let io = |e: std::io::Error| AppError::Io { path: file.to_owned(), source: e };
        match self {
            Sink::Json(w) => w.finish().map(drop).map_err(io),
            Sink::Csv { w, .. } => w.finish().and_then(|mut b| std::io::Write::flush(&mut b)).map_err(io),
            Sink::Gpkg { w, .. } => {
                w.finish().map_err(|e| AppError::Input { field: file.display().to_string(), message: e.to_string() })
            }
        }
    }
}

fn open_sink(req: &ExportRequest, part: &Path) -> Result<Sink, AppError> {
    let io = |e: std::io::Error| AppError::Io { path: part.to_owned(), source: e };
    let create = || File::create(part).map_err(io);
    Ok(match req.format {
        ExportFormat::Geojson => Sink::Json(GeoJsonWriter::new(create()?, &req.layer).map_err(io)?),
        ExportFormat::Csv => {
            // The columns are the fields of the table (schema order); without them, the first
            // feature's (the server writes every field of the layer, null when unset).
            let fields: Vec<String> = req
                .fields
                .iter()
                .filter(|f| f.kind != FieldKind::Geometry && !SYSTEM.iter().any(|(s, _)| *s == f.name))
                .map(|f| f.name.clone())
                .collect();
            let mut header: Vec<String> = SYSTEM.iter().map(|(s, _)| (*s).to_owned()).collect();
            if fields.is_empty() && req.fields.is_empty() {
                return Err(AppError::Input {
                    field: "fields".into(),
                    message: "the layer's fields are needed for the CSV header".into(),
                });
            }
            header.extend(fields.iter().cloned());
            if req.lon_lat {
                header.extend(["经度".to_owned(), "纬度".to_owned()]);
            }
            let w = CsvWriter::new(BufWriter::with_capacity(1 << 20, create()?), &header).map_err(io)?;
            Sink::Csv { w, columns: Some(fields), lon_lat: req.lon_lat }
        }
        ExportFormat::Gpkg => {
            let kind = req
                .geometry_type
                .as_deref()
                .and_then(|t| t.parse::<GeometryKind>().ok())
                .unwrap_or(GeometryKind::Geometry);
            let mut defs: Vec<FieldDef> = SYSTEM.iter().map(|(n, t)| FieldDef::new(*n, *t)).collect();
            defs.extend(
                req.fields
                    .iter()
                    .filter(|f| f.kind != FieldKind::Geometry && !SYSTEM.iter().any(|(s, _)| *s == f.name))
                    .map(|f| FieldDef::new(f.name.clone(), field_type(f.kind))),
            );
            if part.exists() {
                std::fs::remove_file(part).map_err(io)?;
            }
            let w = GpkgWriter::create(part, &req.layer, &req.layer, kind, false, 4490, &defs)
                .map_err(|e| AppError::Input { field: part.display().to_string(), message: e.to_string() })?;
            Sink::Gpkg { w, defs }
        }
    })
}

/// Exports `req` to `path` (replaced if it exists), reporting progress after every page.
pub fn export(
    client: &SyncClient,
    req: &ExportRequest,
    path: &Path,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ExportReport, AppError> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(AppError::Input {
            field: "path".into(), message: "choose a file name / 请填写文件名".into()
        });
    }
    let mut part = PathBuf::from(path);
    part.as_mut_os_string().push(".part");
    let mut sink = open_sink(req, &part)?;
    let mut written = 0u64;
    let result = (|| -> Result<(), AppError> {
        let base = ItemsQuery {
            layer: req.layer.clone(),
            as_of: req.as_of.clone(),
            intersects: if req.ids.is_some() { None } else { req.intersects.clone() },
            limit: Some(PAGE),
            ..ItemsQuery::default()
        };
        // A selection: its ids in groups; a query: its pages by cursor.
        let filters: Vec<Option<String>> = match &req.ids {
            Some(ids) => id_filters(ids, ID_GROUP).into_iter().map(Some).collect(),
            None => vec![req.filter.clone()],
        };
        let total = req.ids.as_ref().map(|i| i.len() as u64);
        for filter in filters {
            let mut q = ItemsQuery { filter, ..base.clone() };
            loop {
                let page = client.items(&q)?;
                for f in &page.features {
                    sink.write(f, &part)?;
                    written += 1;
                }
                progress(ExportProgress { written, total: total.or(page.number_matched) });
                match page.next().and_then(cursor_of) {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(())
    })();
    let done = result.and_then(|()| sink.finish(&part));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, path).map_err(|e| AppError::Io { path: path.to_owned(), source: e })?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(ExportReport { path: path.display().to_string(), features: written, bytes })
}

/// A default file for an export: `DOCUMENTS/shikong/LAYER-YYYYMMDD-HHMMSS.EXT` (the user's
/// documents folder when there is one, else the home folder).
pub fn default_path(documents: Option<&Path>, layer: &str, format: ExportFormat, now: jiff::Timestamp) -> PathBuf {
    let stamp = now.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).strftime("%Y%m%d-%H%M%S").to_string();
    let safe: String =
        layer.chars().map(|c| if c.is_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    documents
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("shikong")
        .join(format!("{safe}-{stamp}.{}", format.extension()))
}

/// [`default_path`] now.
pub fn default_path_now(documents: Option<&Path>, layer: &str, format: ExportFormat) -> PathBuf {
    default_path(documents, layer, format, jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feature(id: &str, name: &str, x: f64) -> Feature {
        serde_json::from_value(json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [x, 30.5]},
            "properties": {"entity_id": id, "code": format!("C-{id}"), "valid_from": null, "valid_to": null, "version": 1,
            "tx_time": "2026-12-06T20:00:00+08:00", "名称": name, "埋深": 1.5}}))
        .unwrap()
    }

    fn fields() -> Vec<QueryField> {
        vec![
            QueryField {
                name: "名称".into(), title: "名称".into(), kind: FieldKind::Text, codes: vec![], ops: vec![]
            },
            QueryField {
                name: "埋深".into(),
                title: "埋深".into(),
                kind: FieldKind::Number,
                codes: vec![],
                ops: vec![],
            },
        ]
    }

    fn req(format: ExportFormat) -> ExportRequest {
        ExportRequest {
            layer: "manhole".into(),
            geometry_type: Some("Point".into()),
            filter: None,
            as_of: None,
            intersects: None,
            ids: None,
            format,
            lon_lat: true,
            fields: fields(),
        }
    }

    #[test]
    fn sinks_write_every_format() {
        let dir = tempfile::tempdir().unwrap();
        for format in [ExportFormat::Geojson, ExportFormat::Csv, ExportFormat::Gpkg] {
            let path = dir.path().join(format!("out.{}", format.extension()));
            let mut s = open_sink(&req(format), &path).unwrap();
            s.write(&feature("a", "珞喻路1号, \"井\"", 114.1), &path).unwrap();
            s.write(&feature("b", "关山大道", 114.2), &path).unwrap();
            s.finish(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            match format {
                ExportFormat::Geojson => {
                    let v: Json = serde_json::from_slice(&bytes).unwrap();
                    assert_eq!(v["features"][1], serde_json::to_value(feature("b", "关山大道", 114.2)).unwrap());
                }
                ExportFormat::Csv => {
                    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM for Excel");
                    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
                    let mut lines = text.lines();
                    assert_eq!(
                        lines.next().unwrap(),
                        "entity_id,code,valid_from,valid_to,version,tx_time,名称,埋深,经度,纬度,wkt"
                    );
                    let first = lines.next().unwrap();
                    assert!(first.contains("\"珞喻路1号, \"\"井\"\"\",1.5,114.1,30.5,POINT"), "{first}");
                }
                ExportFormat::Gpkg => {
                    let conn = rusqlite::Connection::open(&path).unwrap();
                    let (n, name, depth): (i64, String, f64) = conn
                        .query_row("SELECT count(*), max(\"名称\"), max(\"埋深\") FROM manhole", [], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .unwrap();
                    assert_eq!((n, name.as_str(), depth), (2, "珞喻路1号, \"井\"", 1.5));
                }
            }
        }
    }

    #[test]
    fn default_paths_are_named_by_layer_and_time() {
        let t: jiff::Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let p = default_path(Some(Path::new("/home/u/Documents")), "井盖/x", ExportFormat::Csv, t);
        assert_eq!(p, PathBuf::from("/home/u/Documents/shikong/井盖_x-20261206-200000.csv"));
    }
}
