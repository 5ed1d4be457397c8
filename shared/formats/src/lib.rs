//! The exchange formats users bring data in and take it away in: GeoJSON, CSV (WKT or lon/lat
//! columns), XLSX (a sheet read like a CSV), zipped Shapefile and GeoPackage.
//!
//! Readers turn a file into a stream of [`Record`]s (geometry + raw property values + where in the
//! file it came from) without knowing anything about layers or schemas; the importer decides types
//! and validates. Writers take features already in a layer's shape. Every error names the file and
//! the feature/row (and field where there is one), because that is what a user needs to fix it.

#![forbid(unsafe_code)]

mod bounded_json;
pub mod columns;
mod csv_io;
mod error;
mod geojson_io;
mod gpkg_io;
pub mod limits;
mod shp;
pub mod table;
mod text;
pub mod xlsx;
mod xlsx_io;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value as Json;
use shikong_model::{Crs, FieldType, Geometry, GeometryKind, Value};

pub use bounded_json::{BoundedJsonError, BoundedValue, parse_bounded};
pub use csv_io::CsvWriter;
pub use error::{FormatError, Location, Result, column_letters};
pub use geojson_io::GeoJsonWriter;
pub use gpkg_io::GpkgWriter;
pub use limits::Limits;
pub use text::DecodingReader;

/// A property value as the file holds it, before the importer types it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// From JSON (GeoJSON properties).
    Json(Json),
    /// Untyped text (CSV cells).
    Text(String),
    /// Already typed by the format (GeoPackage columns, DBF fields).
    Typed(Value),
}

/// One feature or row of a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub location: Location,
    pub geometry: Option<Geometry>,
    /// In the file's column/property order.
    pub properties: Vec<(String, RawValue)>,
}

/// How far a reader has got, for progress bars: `done` of `total` units (bytes or records).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub total: u64,
    done: Arc<AtomicU64>,
}

impl Progress {
    pub fn new(total: u64) -> Self {
        Progress { total, done: Arc::new(AtomicU64::new(0)) }
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }
}

/// Options for opening a source.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// The CRS of the coordinates, overriding what the file says (or for files that say nothing).
    pub crs: Option<Crs>,
    /// CSV/XLSX: the column holding WKT (default: a column named wkt, geometry, geom, the_geom or 几何).
    pub wkt_column: Option<String>,
    /// CSV/XLSX: longitude and latitude columns (default: lon/lng/longitude/x/经度 and lat/latitude/y/纬度).
    pub lon_column: Option<String>,
    pub lat_column: Option<String>,
    /// GeoPackage: which layer (default: the only one); XLSX: which sheet (default: the first).
    pub layer: Option<String>,
    /// CSV/DBF text encoding, e.g. `GBK` (default: UTF-8, falling back to GBK when the bytes are
    /// not UTF-8, which is what files from Chinese Excel and ArcGIS usually are).
    pub encoding: Option<String>,
    /// What the file may make the reader allocate (default: the constants of [`limits`]).
    pub limits: Limits,
}

/// A readable file.
pub trait Source {
    /// The file, for messages.
    fn name(&self) -> &str;
    /// The sheet read (XLSX), for messages: records' locations are rows of it.
    fn sheet(&self) -> Option<&str> {
        None
    }
    /// The CRS of the coordinates the records carry.
    fn crs(&self) -> Crs;
    /// Field types the format declares (GeoPackage, Shapefile); `None` (the default, for text
    /// formats) when types must be inferred.
    fn declared_fields(&self) -> Option<Vec<(String, FieldType)>> {
        None
    }
    /// The geometry kind the format declares, if any (by default none).
    fn declared_kind(&self) -> Option<GeometryKind> {
        None
    }
    /// Progress handle, valid across [`Source::read`] calls.
    fn progress(&self) -> Progress;
    /// Reads every record from the start (callable again for a second pass). Stops at the first
    /// error, from the file or from `on_record`.
    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()>;
}

/// Opens a file by its extension: `.geojson`/`.json`, `.csv`, `.xlsx`, `.zip`/`.shp`, `.gpkg`.
pub fn open(path: &Path, opts: &SourceOptions) -> Result<Box<dyn Source>> {
    let name = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    if !path.is_file() {
        return Err(FormatError::file(&name, "no such file"));
    }
    match ext.as_str() {
        "geojson" | "json" => Ok(Box::new(geojson_io::GeoJsonSource::open(path, opts)?)),
        "csv" | "txt" => Ok(Box::new(csv_io::CsvSource::open(path, opts)?)),
        "xlsx" => Ok(Box::new(xlsx_io::XlsxSource::open(path, opts)?)),
        "zip" | "shp" => Ok(Box::new(shp::ShapefileSource::open(path, opts)?)),
        "gpkg" => Ok(Box::new(gpkg_io::GpkgSource::open(path, opts)?)),
        _ => Err(FormatError::file(
            &name,
            format!("unknown format `.{ext}` (use .geojson, .json, .csv, .xlsx, .zip (Shapefile), .shp or .gpkg)"),
        )),
    }
}

/// The system fields a feature carries in exports (and that imports recognise).
pub const EXPORT_SYSTEM_FIELDS: &[&str] = &["entity_id", "code", "valid_from", "valid_to", "version", "tx_time"];
