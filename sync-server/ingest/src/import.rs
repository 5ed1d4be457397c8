//! Importing a file into a layer, as one transaction.
//!
//! The first import into a new layer infers the schema (types, geometry kind, Z) from the file —
//! the declared types of GeoPackage and Shapefile, or a first pass over GeoJSON/CSV values — and
//! creates the layer. Then every record becomes an insert, or, with an upsert key, an update of the
//! live entity whose key field matches. Any bad record aborts the whole import with the file,
//! feature/row and field named; the store is left unchanged.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use jiff::Timestamp;
use serde_json::Value as Json;
use shikong_formats::{Location, RawValue, Record, Source, SourceOptions};
use shikong_model::schema::TypeGuess;
use shikong_model::{Crs, EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, ValidTime, Value, time};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, StoreError, TxMeta};

/// Property names with a meaning of their own in imported files.
const ID_FIELD: &str = "entity_id";
const VALID_FROM: &str = "valid_from";
const VALID_TO: &str = "valid_to";
/// Written by exports; ignored on import (the store assigns versions and transaction times).
const IGNORED: &[&str] = &["version", "tx_time", "fid"];

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub layer: String,
    /// Update live entities whose value of this field matches; insert the rest.
    pub upsert_key: Option<String>,
    /// The property that holds entity codes (default `code`).
    pub code_field: Option<String>,
    /// Title of a new layer (Chinese name).
    pub title: Option<String>,
    pub source: SourceOptions,
    pub author: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub layer_created: bool,
    pub records: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// An import failure: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location.map(|l| format!(", {l}")).unwrap_or_default())]
pub struct ImportError {
    pub file: String,
    pub location: Option<Location>,
    pub message: String,
    /// Whether the store refused it (vs. the file being unreadable).
    pub store: Option<Box<StoreError>>,
}

impl ImportError {
    fn at(file: &str, location: Option<Location>, message: impl Into<String>) -> Self {
        ImportError { file: file.to_owned(), location, message: message.into(), store: None }
    }
}

impl From<shikong_formats::FormatError> for ImportError {
    fn from(e: shikong_formats::FormatError) -> Self {
        let message = match &e.field {
            Some(f) => format!("field `{f}`: {}", e.message),
            None => e.message.clone(),
        };
        ImportError { file: e.file, location: e.location, message, store: None }
    }
}

/// Converts coordinates from the file's CRS to the store's (CGCS2000).
pub trait Reproject {
    fn to_store(&self, from: Crs, g: &Geometry) -> Result<Geometry, String>;
}

/// Reprojection through `shikong-crs` (PROJ for EPSG codes, the GCJ-02/BD-09 algorithms for the
/// pseudo-codes). CGCS2000 and WGS 84 are the store frame to within centimetres (PROJ itself
/// treats 4326→4490 as a null transformation), so they pass through untouched.
#[derive(Debug, Default, Clone, Copy)]
pub struct ToStoreFrame;

impl Reproject for ToStoreFrame {
    fn to_store(&self, from: Crs, g: &Geometry) -> Result<Geometry, String> {
        match from {
            Crs::Crs84 | Crs::Epsg(4326 | 4490) => Ok(g.clone()),
            other => shikong_crs::transform_geometry(g, other, Crs::CGCS2000).map_err(|e| e.to_string()),
        }
    }
}

/// The layer shape a file implies.
fn infer_layer(
    source: &mut dyn Source,
    opts: &ImportOptions,
    code_field: &str,
) -> Result<(LayerDef, u64), ImportError> {
    let skip = |name: &str| {
        name == code_field || name == ID_FIELD || name == VALID_FROM || name == VALID_TO || IGNORED.contains(&name)
    };
    let mut order: Vec<String> = Vec::new();
    let mut guesses: HashMap<String, TypeGuess> = HashMap::new();
    let mut kind: Option<GeometryKind> = None;
    let mut has_z = false;
    let mut n = 0u64;
    let declared = source.declared_fields();
    source.read(&mut |r: Record| {
        n += 1;
        if let Some(g) = &r.geometry {
            let k = g.kind();
            kind = Some(kind.map_or(k, |a| a.widen(k)));
            has_z |= g.has_z();
        }
        if declared.is_none() {
            for (name, v) in &r.properties {
                if skip(name) {
                    continue;
                }
                let guess = guesses.entry(name.clone()).or_insert_with(|| {
                    order.push(name.clone());
                    TypeGuess::default()
                });
                match v {
                    RawValue::Json(j) => guess.observe_json(j),
                    RawValue::Text(t) => guess.observe_text(t),
                    RawValue::Typed(v) => guess.observe_text(&v.to_text()),
                }
            }
        }
        Ok(())
    })?;
    let fields: Vec<FieldDef> = match declared {
        Some(d) => d.into_iter().filter(|(name, _)| !skip(name)).map(|(name, ty)| FieldDef::new(name, ty)).collect(),
        None => order.iter().map(|name| FieldDef::new(name.clone(), guesses[name].finish())).collect(),
    };
    let schema = LayerSchema { fields };
    schema
        .check()
        .map_err(|e| ImportError::at(source.name(), None, format!("cannot make a layer from this file: {e}")))?;
    let kind = source.declared_kind().map_or(kind, |d| Some(kind.map_or(d, |k| k.widen(d))));
    let mut def = LayerDef::new(opts.layer.clone(), kind.unwrap_or(GeometryKind::Geometry), schema);
    def.has_z = has_z;
    def.title = opts.title.clone();
    Ok((def, n))
}

fn text_of(v: &RawValue) -> Option<String> {
    match v {
        RawValue::Json(Json::Null) => None,
        RawValue::Json(Json::String(s)) | RawValue::Text(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        RawValue::Json(other) => Some(other.to_string()),
        RawValue::Typed(Value::Null) => None,
        RawValue::Typed(v) => Some(v.to_text()),
    }
}

/// Converts a raw value to the field's type.
fn coerce(field: &FieldDef, v: &RawValue) -> Result<Value, String> {
    let r = match v {
        RawValue::Json(j) => field.coerce_json(j),
        RawValue::Text(t) => field.coerce_text(t),
        RawValue::Typed(v) => match (field.ty, v) {
            (_, Value::Null) => Ok(Value::Null),
            (FieldType::Integer, Value::Real(f)) if f.fract() == 0.0 => Ok(Value::Integer(*f as i64)),
            (FieldType::Real, Value::Integer(i)) => Ok(Value::Real(*i as f64)),
            (FieldType::Text | FieldType::Code, other) => Ok(Value::Text(other.to_text())),
            (ty, other)
                if field.check(other).is_ok() || matches!((ty, other), (FieldType::Integer, Value::Integer(_))) =>
            {
                Ok(other.clone())
            }
            (_, other) => field.coerce_text(&other.to_text()),
        },
    };
    r.map_err(|e| e.message)
}

fn parse_time(name: &str, v: &RawValue) -> Result<Option<Timestamp>, String> {
    match text_of(v) {
        None => Ok(None),
        Some(s) => time::parse_instant(&s).map(Some).map_err(|e| format!("field `{name}`: {e}")),
    }
}

/// Runs an import. `on_progress(done, total)` is called now and then.
pub fn import(
    store: &dyn FeatureStore,
    path: &Path,
    opts: &ImportOptions,
    reproject: &dyn Reproject,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport, ImportError> {
    let mut source = shikong_formats::open(path, &opts.source)?;
    let file = source.name().to_owned();
    let code_field = opts.code_field.clone().unwrap_or_else(|| "code".to_owned());
    let store_err = |location: Option<Location>, e: StoreError| ImportError {
        file: file.clone(),
        location,
        message: e.to_string(),
        store: Some(Box::new(e)),
    };
    let existing = match store.layer(&opts.layer) {
        Ok(l) => Some(l),
        Err(StoreError::NoSuchLayer(_)) => None,
        Err(e) => return Err(store_err(None, e)),
    };
    let mut report = ImportReport::default();
    let new_def = match &existing {
        Some(_) => None,
        None => Some(infer_layer(source.as_mut(), opts, &code_field)?.0),
    };
    let meta = TxMeta {
        author: opts.author.clone(),
        source: Some(format!(
            "import {}",
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        )),
        ..TxMeta::default()
    };
    let mut tx = store.begin(meta).map_err(|e| store_err(None, e))?;
    let layer = match (existing, new_def) {
        (Some(l), _) => l,
        (None, Some(def)) => {
            report.layer_created = true;
            tx.create_layer(def).map_err(|e| store_err(None, e))?
        }
        (None, None) => return Err(ImportError::at(&file, None, "internal: no layer")),
    };
    if opts.upsert_key.is_none() {
        tx.bulk_load(layer.name()).map_err(|e| store_err(None, e))?;
    }
    let fields: BTreeMap<&str, &FieldDef> = layer.schema().active().map(|f| (f.name.as_str(), f)).collect();
    if let Some(k) = &opts.upsert_key
        && k != "code"
        && k != &code_field
        && !fields.contains_key(k.as_str())
    {
        return Err(ImportError::at(
            &file,
            None,
            format!("upsert key `{k}` is not a field of layer `{}`", layer.name()),
        ));
    }
    let crs = source.crs();
    // The records are parsed on a thread of their own while this one writes them to the store:
    // parsing was about a third of an import's time (perf, issue 21), and the store's writes
    // (which must stay on this thread: the transaction holds the writer) wait for it no more.
    // The thread opens the file anew (the first pass above was the schema inference).
    drop(source);
    let mut n = 0u64;
    let mut failed: Option<ImportError> = None;
    let read_result = std::thread::scope(|scope| -> Result<(), ImportError> {
        let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(READ_AHEAD_BATCHES);
        let reader = scope.spawn(move || read_batches(path, &opts.source, &send));
        let mut progress = shikong_formats::Progress::default();
        for batch in receive.iter() {
            let records = match batch {
                Batch::Started(p) => {
                    progress = p;
                    continue;
                }
                Batch::Records(r) => r,
            };
            for r in records {
                n += 1;
                if let Err(e) =
                    write_record(&mut *tx, &layer, &fields, opts, &code_field, &file, crs, reproject, &mut report, r)
                {
                    failed = Some(e);
                    break;
                }
                if n.is_multiple_of(4096) {
                    on_progress(progress.done(), progress.total);
                }
            }
            if failed.is_some() {
                break; // dropping the receiver stops the reader at its next batch
            }
        }
        drop(receive);
        let read = reader.join().map_err(|_| ImportError::at(&file, None, "internal: the reading thread panicked"))?;
        on_progress(progress.total, progress.total);
        // The first failure wins: a write's refusal ends the reading, not the other way round.
        match failed.take() {
            Some(e) => Err(e),
            None => read.map_err(ImportError::from),
        }
    });
    read_result?;
    report.records = n;
    tx.commit().map_err(|e| store_err(None, e))?;
    Ok(report)
}

/// Records handed from the reading thread to the writing one, in batches (one channel message per
/// record cost more than the record's write).
enum Batch {
    /// The reader's progress handle, sent first.
    Started(shikong_formats::Progress),
    Records(Vec<Record>),
}

const BATCH_RECORDS: usize = 512;
/// Batches parsed ahead of the writer: bounds the memory the reader can run ahead with.
const READ_AHEAD_BATCHES: usize = 8;

/// Reads every record of the file at `path` and sends them in batches; stops early when the
/// receiver is gone (the writer failed).
fn read_batches(
    path: &Path,
    opts: &SourceOptions,
    send: &std::sync::mpsc::SyncSender<Batch>,
) -> Result<(), shikong_formats::FormatError> {
    let mut source = shikong_formats::open(path, opts)?;
    let name = source.name().to_owned();
    let gone = || shikong_formats::FormatError::file(&name, "import stopped");
    send.send(Batch::Started(source.progress())).map_err(|_| gone())?;
    let mut batch = Vec::with_capacity(BATCH_RECORDS);
    source.read(&mut |r: Record| {
        batch.push(r);
        if batch.len() == BATCH_RECORDS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS));
            send.send(Batch::Records(full)).map_err(|_| gone())?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        send.send(Batch::Records(batch)).map_err(|_| gone())?;
    }
    Ok(())
}

/// One record's insert, or with an upsert key its update.
#[allow(clippy::too_many_arguments)] // the import's state, passed down from one place
fn write_record(
    tx: &mut dyn shikong_store::StoreTx,
    layer: &shikong_store::Layer,
    fields: &BTreeMap<&str, &FieldDef>,
    opts: &ImportOptions,
    code_field: &str,
    file: &str,
    crs: Crs,
    reproject: &dyn Reproject,
    report: &mut ImportReport,
    r: Record,
) -> Result<(), ImportError> {
    let fail = |m: String| shikong_formats::FormatError::at(file, r.location, m);
    let mut f = NewFeature::default();
    let mut valid = ValidTime::ALWAYS;
    let mut key_value: Option<Value> = None;
    for (name, v) in &r.properties {
        if name == code_field {
            f.code = text_of(v);
        } else if name == ID_FIELD {
            if let Some(s) = text_of(v) {
                f.id = Some(s.parse::<EntityId>().map_err(|e| fail(format!("field `{name}`: {e}")))?);
            }
        } else if name == VALID_FROM {
            valid.from = parse_time(name, v).map_err(fail)?;
        } else if name == VALID_TO {
            valid.to = parse_time(name, v).map_err(fail)?;
        } else if IGNORED.contains(&name.as_str()) {
            continue;
        } else {
            let Some(field) = fields.get(name.as_str()) else {
                return Err(fail(format!(
                    "`{name}` is not a field of layer `{}` (add it with `shikong layer edit`, or leave it out of the file)",
                    layer.name()
                ))
                .into());
            };
            let value = coerce(field, v).map_err(|m| fail(format!("field `{name}`: {m}")))?;
            if opts.upsert_key.as_deref() == Some(name.as_str()) {
                key_value = Some(value.clone());
            }
            f.properties.insert(name.clone(), value);
        }
    }
    f.valid = valid;
    f.geometry = match &r.geometry {
        Some(g) => Some(reproject.to_store(crs, g).map_err(|m| fail(format!("geometry: {m}")))?),
        None => None,
    };
    let upsert_target = match opts.upsert_key.as_deref() {
        None => None,
        Some(k) if k == "code" || k == code_field => {
            let code = f.code.clone().ok_or_else(|| fail(format!("no `{code_field}` value to match on")))?;
            tx.find_by_field(layer.name(), "code", &Value::Text(code)).map_err(|e| fail(e.to_string()))?
        }
        Some(k) => {
            let v = key_value
                .clone()
                .filter(|v| !v.is_null())
                .ok_or_else(|| fail(format!("no `{k}` value to match on")))?;
            tx.find_by_field(layer.name(), k, &v).map_err(|e| fail(e.to_string()))?
        }
    };
    match upsert_target {
        Some(id) => {
            let patch = Patch {
                geometry: Some(f.geometry),
                code: f.code,
                valid: Some(f.valid),
                set: f.properties,
                device_time: None,
            };
            match tx.update(layer.name(), &FeatureKey::Id(id), patch) {
                Ok(Some(_)) => report.updated += 1,
                Ok(None) => report.unchanged += 1,
                Err(e) => return Err(fail(e.to_string()).into()),
            }
        }
        None => {
            tx.insert(layer.name(), f).map_err(|e| fail(e.to_string()))?;
            report.inserted += 1;
        }
    }
    Ok(())
}
