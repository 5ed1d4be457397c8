//! Import into and export from an offline area's layer (the desktop's 导入/导出, issue 16).
//!
//! An import runs in two steps so that nothing is written until the user has seen what will be:
//! [`Device::stage_import`] reads the file (GeoJSON, GeoPackage, zipped Shapefile, CSV or an XLSX
//! sheet with WKT or lon/lat columns — `shikong-formats`' readers with their limits; an XLSX keeps
//! its cells' types), or sends a CSV/XLSX table with an address column to the server's batch
//! geocoder, and maps every record onto the layer's schema (columns matched by field name or
//! title through `shikong_formats::columns`, values typed and checked as the server will); any
//! problem names the file (and sheet), row and field and stages nothing. Rows geocoded with a
//! score below the threshold (or not matched) wait for a review — keep, fix the address (geocoded
//! again), or drop — and [`Device::commit_import`] then writes every kept row in one replica
//! transaction (all or nothing), for the next sync to send. [`Device::export_layer`] writes a
//! layer to GeoJSON, GeoPackage, zipped Shapefile or CSV.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value as Json, json};
use shikong_formats::{EXPORT_SYSTEM_FIELDS, FormatError, Location, RawValue, Record, SourceOptions, columns, limits};
use shikong_model::{Bbox, Coord, FieldDef, FieldType, Geometry, GeometryKind, Properties, Value, geojson};
use shikong_protocol::api::GeocodeStatus;
use shikong_replica::{NewFeature, ReplicaLayer};

use crate::{AppError, Device};

#[cfg(test)]
mod files_tests;
mod shp;

/// Rows geocoded with a lower score wait for review (the server scores 0–1).
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// Problems listed in one refusal (the rest are counted).
const MAX_LISTED: usize = 20;

/// The columns the server's batch geocoder appends to each row (not the user's data).
pub use shikong_formats::columns::GEOCODER_COLUMNS;

/// How to read the file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct ImportOptions {
    /// CSV/XLSX: the WKT column, or the longitude/latitude columns (default: recognised by name).
    #[serde(default)]
    pub wkt_column: Option<String>,
    #[serde(default)]
    pub lon_column: Option<String>,
    #[serde(default)]
    pub lat_column: Option<String>,
    /// CSV/XLSX: the address column to geocode on the server (then no coordinates are read).
    #[serde(default)]
    pub address_column: Option<String>,
    /// Review threshold on the geocoding score ([`DEFAULT_THRESHOLD`] when absent).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// GeoPackage: the layer to read (default: the only one); XLSX: the sheet (default: the first).
    #[serde(default)]
    pub source_layer: Option<String>,
}

/// One problem of a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportProblem {
    pub file: String,
    /// `row 3`, `feature 12`, `sheet `测点`, row 3, column B`.
    pub location: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = &self.location {
            write!(f, ", {l}")?;
        }
        if let Some(x) = &self.field {
            write!(f, ", field `{x}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl From<FormatError> for ImportProblem {
    fn from(e: FormatError) -> Self {
        let place = e.place();
        ImportProblem {
            file: e.file.clone(),
            location: (!place.is_empty()).then_some(place),
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }
}

/// The refusal of a file: every problem (up to [`MAX_LISTED`]) on its own line.
fn refusal(problems: &[ImportProblem]) -> AppError {
    let mut lines: Vec<String> = problems.iter().take(MAX_LISTED).map(ToString::to_string).collect();
    if problems.len() > MAX_LISTED {
        lines.push(format!("… {} more problems", problems.len() - MAX_LISTED));
    }
    AppError::input("import", format!("nothing was imported:\n{}", lines.join("\n")))
}

/// A row's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Imported.
    Keep,
    /// Waits for the user (geocoded below the threshold).
    Review,
    /// Left out.
    Drop,
}

/// A row mapped onto the layer.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedRow {
    /// Where it is in the file (`row 3`).
    pub location: String,
    pub geometry: Option<Geometry>,
    pub properties: Properties,
    /// Address mode: the address, the geocoder's status, score and standard address.
    pub address: Option<String>,
    pub status: Option<String>,
    pub score: Option<f64>,
    pub standard: Option<String>,
    pub decision: Decision,
    /// Held for review when read (it stays in the review table once decided).
    pub flagged: bool,
}

/// A row as the review table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRow {
    pub index: usize,
    pub location: String,
    pub address: String,
    pub standard: String,
    pub status: String,
    pub score: Option<f64>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub decision: Decision,
}

/// A file read and mapped, waiting for review and commit.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedImport {
    pub area: String,
    pub layer: String,
    pub file: String,
    pub threshold: f64,
    pub rows: Vec<StagedRow>,
    /// Columns of the file that match no field of the layer (not imported).
    pub ignored: Vec<String>,
}

/// What the view shows of a staged import.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagedSummary {
    pub file: String,
    pub layer: String,
    pub rows: usize,
    pub keep: usize,
    pub review: usize,
    pub dropped: usize,
    pub threshold: f64,
    pub ignored: Vec<String>,
    /// The rows that were or are under review (score below the threshold), in file order.
    pub review_rows: Vec<ReviewRow>,
}

impl StagedImport {
    fn count(&self, d: Decision) -> usize {
        self.rows.iter().filter(|r| r.decision == d).count()
    }

    pub fn summary(&self) -> StagedSummary {
        let review_rows = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.flagged || r.decision != Decision::Keep)
            .map(|(index, r)| {
                let p = match &r.geometry {
                    Some(Geometry::Point(c)) => Some((c.x, c.y)),
                    _ => None,
                };
                ReviewRow {
                    index,
                    location: r.location.clone(),
                    address: r.address.clone().unwrap_or_default(),
                    standard: r.standard.clone().unwrap_or_default(),
                    status: r.status.clone().unwrap_or_default(),
                    score: r.score,
                    lon: p.map(|p| p.0),
                    lat: p.map(|p| p.1),
                    decision: r.decision,
                }
            })
            .collect();
        StagedSummary {
            file: self.file.clone(),
            layer: self.layer.clone(),
            rows: self.rows.len(),
            keep: self.count(Decision::Keep),
            review: self.count(Decision::Review),
            dropped: self.count(Decision::Drop),
            threshold: self.threshold,
            ignored: self.ignored.clone(),
            review_rows,
        }
    }

    /// Keeps or drops row `index` (a row without a point cannot be kept).
    pub fn decide(&mut self, index: usize, decision: Decision) -> Result<(), AppError> {
        let row = self.rows.get_mut(index).ok_or_else(|| AppError::input("row", format!("no row {index}")))?;
        if decision == Decision::Keep && row.geometry.is_none() && row.address.is_some() {
            return Err(AppError::input(
                "row",
                format!(
                    "{}: the address `{}` has no point; fix it or drop the row",
                    row.location,
                    row.address.as_deref().unwrap_or("")
                ),
            ));
        }
        row.decision = decision;
        Ok(())
    }

    /// Row `index` geocoded again with a corrected address: its point, score and status; it is
    /// kept when the new score reaches the threshold, else still waits.
    pub fn fixed(
        &mut self,
        index: usize,
        address: &str,
        point: Option<(f64, f64)>,
        score: f64,
        status: &str,
        standard: &str,
    ) -> Result<(), AppError> {
        let threshold = self.threshold;
        let row = self.rows.get_mut(index).ok_or_else(|| AppError::input("row", format!("no row {index}")))?;
        row.address = Some(address.to_owned());
        row.geometry = point.map(|(x, y)| Geometry::Point(Coord::xy(x, y)));
        row.score = Some(score);
        row.status = Some(status.to_owned());
        row.standard = Some(standard.to_owned());
        row.decision = if needs_review(Some(status), Some(score), row.geometry.is_some(), threshold) {
            Decision::Review
        } else {
            Decision::Keep
        };
        Ok(())
    }
}

/// Whether a geocoded row waits for review: not matched, no point, or a score below the threshold.
/// Rows not geocoded (coordinates in the file) never do.
pub fn needs_review(status: Option<&str>, score: Option<f64>, has_point: bool, threshold: f64) -> bool {
    match (status, score) {
        (None, None) => false,
        _ => status != Some("match") || !has_point || score.is_none_or(|s| s < threshold),
    }
}

/// Maps a record's columns onto the layer's fields (by name, else by title; matched as
/// `shikong_formats::columns` matches headers: BOM, spaces and case ignored), typed and checked;
/// `ignored` collects columns that match no field. Every problem of the record at once.
pub fn map_record(
    layer: &ReplicaLayer,
    file: &str,
    location: &str,
    record: &[(String, RawValue)],
    skip: &[&str],
    ignored: &mut BTreeSet<String>,
) -> Result<Properties, Vec<ImportProblem>> {
    let norm = columns::normalize;
    let problem = |field: Option<&str>, message: String| ImportProblem {
        file: file.to_owned(),
        location: Some(location.to_owned()),
        field: field.map(str::to_owned),
        message,
    };
    let fields: Vec<&FieldDef> = layer.schema.fields.iter().filter(|f| !f.retired).collect();
    let mut props = Properties::new();
    let mut problems = Vec::new();
    for (column, raw) in record {
        let c = norm(column);
        if skip.iter().any(|s| norm(s) == c) || EXPORT_SYSTEM_FIELDS.contains(&c.as_str()) || c == "id" {
            continue;
        }
        let Some(f) = fields
            .iter()
            .find(|f| norm(&f.name) == c)
            .or_else(|| fields.iter().find(|f| f.title.as_deref().is_some_and(|t| norm(t) == c)))
        else {
            ignored.insert(column.clone());
            continue;
        };
        if f.ty == FieldType::Attachments {
            ignored.insert(column.clone());
            continue;
        }
        match coerce(f, raw) {
            Ok(Value::Null) => {}
            Ok(v) => {
                props.insert(f.name.clone(), v);
            }
            Err(m) => problems.push(problem(Some(column), m)),
        }
    }
    for f in fields.iter().filter(|f| f.required && f.ty != FieldType::Attachments) {
        if !props.contains_key(&f.name) && !problems.iter().any(|p| p.field.as_deref() == Some(f.name.as_str())) {
            problems.push(problem(Some(&f.name), "required, but the file has no value".into()));
        }
    }
    if problems.is_empty()
        && let Err(e) = layer.schema.validate(&props)
    {
        problems.push(problem(Some(&e.field), e.message.clone()));
    }
    if problems.is_empty() { Ok(props) } else { Err(problems) }
}

/// A file's value as the field's type.
fn coerce(field: &FieldDef, v: &RawValue) -> Result<Value, String> {
    let r = match v {
        RawValue::Json(Json::String(s)) | RawValue::Text(s) if s.trim().is_empty() => Ok(Value::Null),
        RawValue::Json(j) => field.coerce_json(j),
        RawValue::Text(t) => field.coerce_text(t.trim()),
        RawValue::Typed(v) => match (field.ty, v) {
            (_, Value::Null) => Ok(Value::Null),
            (FieldType::Integer, Value::Real(f)) if f.fract() == 0.0 => Ok(Value::Integer(*f as i64)),
            (FieldType::Real, Value::Integer(i)) => Ok(Value::Real(*i as f64)),
            (FieldType::Text | FieldType::Code, other) => Ok(Value::Text(other.to_text())),
            (_, other) if field.check(other).is_ok() => Ok(other.clone()),
            (_, other) => field.coerce_text(&other.to_text()),
        },
    };
    let v = r.map_err(|e| e.message)?;
    field.check(&v).map_err(|e| e.message)?;
    Ok(v)
}

fn text_of(raw: Option<&RawValue>) -> Option<String> {
    match raw? {
        RawValue::Json(Json::String(s)) | RawValue::Text(s) => Some(s.trim().to_owned()),
        RawValue::Json(Json::Null) | RawValue::Typed(Value::Null) => None,
        RawValue::Json(j) => Some(j.to_string()),
        RawValue::Typed(v) => Some(v.to_text()),
    }
}

/// A record's place for the user: CSV rows keep their line, an XLSX's its sheet and row; the
/// geocoder's result features are the table's data rows (the header is row 1).
fn where_in(location: &Location, geocoded: bool, sheet: Option<&str>) -> String {
    let at = match (location, geocoded) {
        (Location::Feature(n), true) => format!("row {}", n + 1),
        (l, _) => l.to_string(),
    };
    match sheet {
        Some(s) => format!("sheet `{s}`, {at}"),
        None => at,
    }
}

/// Steps of an import or export, for the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ImportStep {
    /// Reading the file: `done` of `total` bytes.
    Reading { done: u64, total: u64 },
    /// The server geocoding: `done` of `total` rows.
    Geocoding { done: u64, total: u64 },
    /// Writing into the replica (or the export file): `done` of `total` features.
    Writing { done: u64, total: u64 },
}

impl Device {
    /// Reads `path` and maps it onto `layer` of area `area` (see the module documentation).
    pub fn stage_import(
        &self,
        area: &str,
        layer: &str,
        path: &Path,
        opts: &ImportOptions,
        progress: &mut dyn FnMut(ImportStep),
    ) -> Result<StagedImport, AppError> {
        let replica = self.open_replica(area)?;
        let l = replica.layer(layer)?.clone();
        drop(replica);
        let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        let problem =
            |m: String| refusal(&[ImportProblem { file: file.clone(), location: None, field: None, message: m }]);
        let geocoded = opts.address_column.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let (source_path, _tmp) = match geocoded {
            Some(column) => {
                if !matches!(ext.as_str(), "csv" | "txt" | "xlsx") {
                    return Err(problem(format!("addresses are geocoded from a CSV or XLSX table, not `.{ext}`")));
                }
                let size = std::fs::metadata(path).map_err(AppError::io(path))?.len();
                if size > limits::MAX_XLSX_BYTES {
                    return Err(problem(format!(
                        "{size} bytes; a table to geocode may have at most {}",
                        limits::MAX_XLSX_BYTES
                    )));
                }
                let bytes = std::fs::read(path).map_err(AppError::io(path))?;
                if !self.online() {
                    return Err(AppError::Offline);
                }
                let result = self
                    .client()?
                    .geocode_table(bytes, column, &mut |done, total| progress(ImportStep::Geocoding { done, total }))
                    .map_err(|e| problem(format!("batch geocoding: {e}")))?;
                let tmp = tempfile_in(&self.dir.join("tmp"), "geocoded.geojson", &result)?;
                (tmp.clone(), Some(TempFile(tmp)))
            }
            None => (path.to_owned(), None),
        };
        let source_opts = SourceOptions {
            wkt_column: opts.wkt_column.clone().filter(|s| !s.trim().is_empty()),
            lon_column: opts.lon_column.clone().filter(|s| !s.trim().is_empty()),
            lat_column: opts.lat_column.clone().filter(|s| !s.trim().is_empty()),
            layer: opts.source_layer.clone().filter(|s| !s.trim().is_empty()),
            ..SourceOptions::default()
        };
        let mut source = shikong_formats::open(&source_path, &source_opts).map_err(|e| {
            let mut p = ImportProblem::from(e);
            p.file = file.clone();
            refusal(&[p])
        })?;
        let reading = source.progress();
        let sheet = source.sheet().map(str::to_owned);
        let skip: Vec<&str> = if geocoded.is_some() { GEOCODER_COLUMNS.to_vec() } else { Vec::new() };
        let threshold = opts.threshold.unwrap_or(DEFAULT_THRESHOLD);
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut ignored = BTreeSet::new();
        let mut n = 0u64;
        let read = source.read(&mut |rec: Record| {
            n += 1;
            if n.is_multiple_of(256) {
                progress(ImportStep::Reading { done: reading.done(), total: reading.total });
            }
            let location = where_in(&rec.location, geocoded.is_some(), sheet.as_deref());
            let find = |name: &str| rec.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            match map_record(&l, &file, &location, &rec.properties, &skip, &mut ignored) {
                Ok(properties) => {
                    let (address, status, score, standard) = match geocoded {
                        Some(col) => (
                            text_of(find(col)),
                            text_of(find("status")),
                            text_of(find("score")).and_then(|s| s.parse::<f64>().ok()),
                            text_of(find("standard_address")),
                        ),
                        None => (None, None, None, None),
                    };
                    let has_point = rec.geometry.is_some();
                    let decision = if needs_review(status.as_deref(), score, has_point, threshold) {
                        Decision::Review
                    } else {
                        Decision::Keep
                    };
                    let flagged = decision == Decision::Review;
                    rows.push(StagedRow {
                        location,
                        geometry: rec.geometry,
                        properties,
                        address,
                        status,
                        score,
                        standard,
                        decision,
                        flagged,
                    });
                }
                Err(mut p) => problems.append(&mut p),
            }
            if problems.len() > MAX_LISTED {
                return Err(FormatError::file(&file, "too many problems; stopped reading"));
            }
            Ok(())
        });
        if let Err(e) = read {
            let mut p = ImportProblem::from(e);
            p.file = file.clone();
            problems.push(p);
        }
        if !problems.is_empty() {
            return Err(refusal(&problems));
        }
        if rows.is_empty() {
            return Err(problem("no rows".into()));
        }
        // Rows of a file with coordinates must fit the layer's geometry type now, not at commit.
        for r in &rows {
            if geocoded.is_none()
                && let Some(g) = &r.geometry
                && !kind_fits(l.geometry_kind, g)
            {
                problems.push(ImportProblem {
                    file: file.clone(),
                    location: Some(r.location.clone()),
                    field: Some("geometry".into()),
                    message: format!(
                        "a {} does not fit layer `{}` ({})",
                        g.kind().name(),
                        l.name,
                        l.geometry_kind.name()
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(refusal(&problems));
        }
        progress(ImportStep::Reading { done: reading.total, total: reading.total });
        // The user's address column is ignored as a field only when no field holds it.
        let ignored = ignored.into_iter().filter(|c| Some(c.as_str()) != geocoded).collect();
        Ok(StagedImport { area: area.to_owned(), layer: layer.to_owned(), file, threshold, rows, ignored })
    }

    /// Geocodes row `index`'s corrected address (one query) and records the answer.
    pub fn fix_import_row(&self, staged: &mut StagedImport, index: usize, address: &str) -> Result<(), AppError> {
        if !self.online() {
            return Err(AppError::Offline);
        }
        let r = self.client()?.geocode(address.trim())?;
        let point = r.point.as_ref().map(|p| (p.lon, p.lat));
        let status = match r.status {
            GeocodeStatus::Match => "match",
            GeocodeStatus::Ambiguous => "ambiguous",
            GeocodeStatus::NoMatch => "nomatch",
        };
        staged.fixed(index, address.trim(), point, r.score, status, &r.standard_address)
    }

    /// Writes the staged rows kept into the replica, in one transaction: all or nothing (a row
    /// the replica refuses names its place in the file). Refused while rows wait for review.
    pub fn commit_import(&self, staged: &StagedImport, progress: &mut dyn FnMut(ImportStep)) -> Result<u64, AppError> {
        let waiting: Vec<&str> =
            staged.rows.iter().filter(|r| r.decision == Decision::Review).map(|r| r.location.as_str()).collect();
        if !waiting.is_empty() {
            return Err(AppError::input(
                "review",
                format!("{} rows wait for review ({}…): keep, fix or drop them first", waiting.len(), waiting[0]),
            ));
        }
        let mut r = self.open_replica(&staged.area)?;
        let meta = self.meta();
        let kept: Vec<&StagedRow> = staged.rows.iter().filter(|r| r.decision == Decision::Keep).collect();
        let total = kept.len() as u64;
        let mut failed: Option<ImportProblem> = None;
        let written = r.batch(|rep| {
            for (i, row) in kept.iter().enumerate() {
                let new = NewFeature {
                    geometry: row.geometry.clone(),
                    properties: row.properties.clone(),
                    ..NewFeature::default()
                };
                if let Err(e) = rep.create_feature(&staged.layer, new, &meta) {
                    failed = Some(ImportProblem {
                        file: staged.file.clone(),
                        location: Some(row.location.clone()),
                        field: None,
                        message: e.to_string(),
                    });
                    return Err(e);
                }
                if i.is_multiple_of(100) {
                    progress(ImportStep::Writing { done: i as u64, total });
                }
            }
            Ok(total)
        });
        let written = match (written, failed) {
            (Ok(n), _) => n,
            (Err(_), Some(p)) => return Err(refusal(&[p])),
            (Err(e), None) => return Err(e.into()),
        };
        progress(ImportStep::Writing { done: total, total });
        self.refresh_replica(&r);
        Ok(written)
    }

    /// Writes `layer` of area `area` to `path`: `.geojson`/`.json`, `.gpkg`, `.zip` (Shapefile)
    /// or `.csv` (WKT geometry, UTF-8 with BOM); columns `entity_id`, `code`, then the layer's
    /// fields. Answers the features written.
    pub fn export_layer(
        &self,
        area: &str,
        layer: &str,
        path: &Path,
        progress: &mut dyn FnMut(ImportStep),
    ) -> Result<u64, AppError> {
        let r = self.open_replica(area)?;
        let l = r.layer(layer)?.clone();
        let world = Bbox { min_x: -180.0, min_y: -90.0, max_x: 180.0, max_y: 90.0 };
        let features = r.query_bbox(layer, &world)?;
        let total = features.len() as u64;
        let fields: Vec<&FieldDef> = l.schema.fields.iter().filter(|f| !f.retired).collect();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        let name = path.display().to_string();
        let fail = |m: String| AppError::input("export", format!("{name}: {m}"));
        if path.exists() {
            return Err(fail("already exists; choose another name".into()));
        }
        let tick = |i: usize, progress: &mut dyn FnMut(ImportStep)| {
            if i.is_multiple_of(200) {
                progress(ImportStep::Writing { done: i as u64, total });
            }
        };
        match ext.as_str() {
            "geojson" | "json" => {
                let out = std::fs::File::create(path).map_err(AppError::io(path))?;
                let mut w = shikong_formats::GeoJsonWriter::new(out, layer).map_err(AppError::io(path))?;
                for (i, f) in features.iter().enumerate() {
                    let mut props = serde_json::Map::new();
                    props.insert("entity_id".into(), json!(f.feature.id.to_string()));
                    props.insert("code".into(), json!(f.feature.code));
                    for fd in &fields {
                        props.insert(
                            fd.name.clone(),
                            f.feature.properties.get(&fd.name).map_or(Json::Null, Value::to_json),
                        );
                    }
                    let g = f.feature.geometry.as_ref().map_or(Json::Null, geojson::to_json);
                    w.write(&json!({"type": "Feature", "geometry": g, "properties": props}))
                        .map_err(AppError::io(path))?;
                    tick(i, progress);
                }
                w.finish().map_err(AppError::io(path))?;
            }
            "csv" => {
                let out = std::fs::File::create(path).map_err(AppError::io(path))?;
                let mut cols = vec!["entity_id".to_owned(), "code".to_owned()];
                cols.extend(fields.iter().map(|f| f.name.clone()));
                let mut w = shikong_formats::CsvWriter::new(out, &cols).map_err(AppError::io(path))?;
                for (i, f) in features.iter().enumerate() {
                    let mut cells = vec![f.feature.id.to_string(), f.feature.code.clone()];
                    cells.extend(
                        fields
                            .iter()
                            .map(|fd| f.feature.properties.get(&fd.name).map(Value::to_text).unwrap_or_default()),
                    );
                    w.write(&cells, f.feature.geometry.as_ref()).map_err(AppError::io(path))?;
                    tick(i, progress);
                }
                w.finish().map_err(AppError::io(path))?;
            }
            "gpkg" => {
                let mut cols =
                    vec![FieldDef::new("entity_id", FieldType::Text), FieldDef::new("code", FieldType::Text)];
                cols.extend(fields.iter().map(|f| {
                    let mut c = FieldDef::new(
                        f.name.clone(),
                        if f.ty == FieldType::Attachments { FieldType::Text } else { f.ty },
                    );
                    c.title = f.title.clone();
                    c
                }));
                let title = l.display_name().to_owned();
                let mut w =
                    shikong_formats::GpkgWriter::create(path, layer, &title, l.geometry_kind, l.has_z, 4490, &cols)
                        .map_err(|e| fail(e.to_string()))?;
                for (i, f) in features.iter().enumerate() {
                    let mut vals = vec![Value::Text(f.feature.id.to_string()), Value::Text(f.feature.code.clone())];
                    vals.extend(fields.iter().map(|fd| match f.feature.properties.get(&fd.name) {
                        Some(Value::Attachments(a)) => Value::Text(a.join(",")),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    }));
                    w.write(f.feature.geometry.as_ref(), &vals).map_err(|e| fail(e.to_string()))?;
                    tick(i, progress);
                }
                w.finish().map_err(|e| fail(e.to_string()))?;
            }
            "zip" => {
                let cols: Vec<(String, FieldType)> = fields.iter().map(|f| (f.name.clone(), f.ty)).collect();
                let n = shp::write_zip(path, layer, l.geometry_kind, &cols, &features, &mut |i| tick(i, progress))?;
                progress(ImportStep::Writing { done: total, total });
                return Ok(n);
            }
            other => {
                return Err(fail(format!("unknown format `.{other}` (use .geojson, .gpkg, .zip (Shapefile) or .csv)")));
            }
        }
        progress(ImportStep::Writing { done: total, total });
        Ok(total)
    }
}

/// Whether a geometry fits a layer's declared kind (single parts fit their multi-part layers).
fn kind_fits(layer: GeometryKind, g: &Geometry) -> bool {
    use GeometryKind as K;
    matches!(
        (layer, g.kind()),
        (K::Geometry, _)
            | (K::Point | K::MultiPoint, K::Point)
            | (K::MultiPoint, K::MultiPoint)
            | (K::LineString | K::MultiLineString, K::LineString)
            | (K::MultiLineString, K::MultiLineString)
            | (K::Polygon | K::MultiPolygon, K::Polygon)
            | (K::MultiPolygon, K::MultiPolygon)
    )
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_in(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, AppError> {
    std::fs::create_dir_all(dir).map_err(AppError::io(dir))?;
    let path = dir.join(format!("{}-{name}", uuid::Uuid::new_v4()));
    std::fs::write(&path, bytes).map_err(AppError::io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn text(pairs: &[(&str, &str)]) -> Vec<(String, RawValue)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), RawValue::Text((*v).to_owned()))).collect()
    }

    #[test]
    fn records_map_by_name_or_title_and_every_problem_is_named() {
        let mut l = testkit::manhole();
        l.schema.fields[0].title = Some("井盖名称".into());
        let mut ignored = BTreeSet::new();
        let p = map_record(
            &l,
            "a.csv",
            "row 2",
            &text(&[("井盖名称", "甲"), ("状态", "2"), ("备注", "x"), ("code", "c")]),
            &[],
            &mut ignored,
        );
        let p = p.unwrap();
        assert_eq!(p.get("名称"), Some(&Value::Text("甲".into())));
        assert_eq!(p.get("状态").map(Value::to_text).as_deref(), Some("2"));
        assert_eq!(ignored.into_iter().collect::<Vec<_>>(), ["备注"]);
        let e = map_record(&l, "a.csv", "row 3", &text(&[("名称", "乙"), ("状态", "9")]), &[], &mut BTreeSet::new());
        let e = e.unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].to_string().split(':').next(), Some("a.csv, row 3, field `状态`"), "{}", e[0]);
        let e = map_record(&l, "a.csv", "row 4", &text(&[("名称", "丙")]), &[], &mut BTreeSet::new()).unwrap_err();
        assert_eq!((e[0].field.as_deref(), e[0].location.as_deref()), (Some("状态"), Some("row 4")));
    }

    #[test]
    fn the_review_threshold_holds_back_weak_or_unmatched_rows() {
        assert!(!needs_review(None, None, true, 0.8), "coordinates from the file");
        assert!(!needs_review(Some("match"), Some(0.8), true, 0.8));
        assert!(needs_review(Some("match"), Some(0.79), true, 0.8));
        assert!(needs_review(Some("ambiguous"), Some(0.95), true, 0.8));
        assert!(needs_review(Some("match"), Some(0.9), false, 0.8), "no point");
        assert!(needs_review(Some("nomatch"), Some(0.0), false, 0.8));
        let row = |score: f64, point: bool| StagedRow {
            location: "row 2".into(),
            geometry: point.then(|| Geometry::Point(Coord::xy(114.3, 30.5))),
            properties: Properties::new(),
            address: Some("某地".into()),
            status: Some(if point { "match" } else { "nomatch" }.into()),
            score: Some(score),
            standard: None,
            decision: if needs_review(Some("match"), Some(score), point, 0.8) {
                Decision::Review
            } else {
                Decision::Keep
            },
            flagged: needs_review(Some("match"), Some(score), point, 0.8),
        };
        let mut s = StagedImport {
            area: "a".into(),
            layer: "manhole".into(),
            file: "t.csv".into(),
            threshold: 0.8,
            rows: vec![row(0.95, true), row(0.5, true), row(0.0, false)],
            ignored: vec![],
        };
        let sum = s.summary();
        assert_eq!((sum.keep, sum.review, sum.review_rows.len()), (1, 2, 2));
        assert!(s.decide(2, Decision::Keep).is_err(), "no point to keep");
        assert!(s.decide(1, Decision::Keep).is_ok());
        assert!(
            s.fixed(2, "武汉市洪山区珞喻路1号", Some((114.36, 30.52)), 0.9, "match", "湖北省武汉市洪山区珞喻路1号")
                .is_ok()
        );
        let sum = s.summary();
        assert_eq!((sum.keep, sum.review), (3, 0));
        assert_eq!(sum.review_rows.len(), 2, "reviewed rows stay listed");
        assert!(s.fixed(0, "乱写", None, 0.1, "nomatch", "").is_ok());
        assert_eq!(s.rows[0].decision, Decision::Review);
        assert!(s.decide(0, Decision::Drop).is_ok());
        assert_eq!(s.summary().dropped, 1);
    }

    #[test]
    fn a_csv_with_lon_lat_is_staged_committed_and_exported() {
        let (dir, d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 1);
        let csv = dir.path().join("新井盖.csv");
        std::fs::write(&csv, "名称,状态,lon,lat,备注\n甲,1,114.30,30.50,x\n乙,2,114.31,30.51,y\n").unwrap();
        let mut steps = Vec::new();
        let s = d.stage_import("洪山区", "manhole", &csv, &ImportOptions::default(), &mut |p| steps.push(p)).unwrap();
        assert_eq!((s.rows.len(), s.summary().keep, s.ignored.clone()), (2, 2, vec!["备注".to_owned()]));
        assert!(matches!(steps.last(), Some(ImportStep::Reading { done, total }) if done == total));
        let n = d.commit_import(&s, &mut |p| steps.push(p)).unwrap();
        assert_eq!(n, 2);
        assert_eq!(d.summary("洪山区").unwrap().features(), 3);
        // A bad row: nothing is staged, the problem names file, row and field.
        let bad = dir.path().join("坏.csv");
        std::fs::write(&bad, "名称,状态,lon,lat\n甲,1,114.30,30.50\n乙,9,114.31,30.51\n").unwrap();
        let e = d.stage_import("洪山区", "manhole", &bad, &ImportOptions::default(), &mut |_| {}).err().unwrap();
        assert!(e.to_string().contains("坏.csv, row 3, field `状态`"), "{e}");
        // A line into a point layer is refused before anything is written.
        let lines = dir.path().join("线.csv");
        std::fs::write(&lines, "名称,状态,wkt\n甲,1,\"LINESTRING(114 30,114.1 30.1)\"\n").unwrap();
        let e = d.stage_import("洪山区", "manhole", &lines, &ImportOptions::default(), &mut |_| {}).err().unwrap();
        assert!(e.to_string().contains("线.csv, row 2, field `geometry`"), "{e}");
        // Export: every format reads back with the features.
        for ext in ["geojson", "csv", "gpkg", "zip"] {
            let out = dir.path().join(format!("out.{ext}"));
            assert_eq!(d.export_layer("洪山区", "manhole", &out, &mut |_| {}).ok(), Some(3), "{ext}");
            let mut src = shikong_formats::open(&out, &SourceOptions::default()).unwrap();
            let mut n = 0;
            src.read(&mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 3, "{ext}");
        }
        assert!(d.export_layer("洪山区", "manhole", &dir.path().join("out.csv"), &mut |_| {}).is_err(), "no overwrite");
    }
}
