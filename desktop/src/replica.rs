//! The desktop's own replica (tab 本地副本, issue 16 "Edit" and "Import/export"): offline areas
//! (download for a division or the map's extent, list, open, delete), editing their features
//! (forms from the layer schema, geometry with snapping, attachments from files), sync with
//! progress, and import/export of a layer with progress and the review of weakly geocoded rows.
//!
//! Everything is the app core's (`areas`, `editing`, `import`, `sync`); these commands run it on
//! the blocking pool and send progress to the view as `replica-progress` events
//! (`{task, step, done, total}`), which `replica.js` shows as a bar. A staged import waits here,
//! between the review's commands, until it is committed or replaced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use shikong_app_core::editing::{FeatureForm, LayerForm, Saved, Scale, Snapped, geometry_from_json};
use shikong_app_core::import::{Decision, ImportOptions, ImportStep, StagedImport, StagedSummary};
use shikong_app_core::{AreaChoice, DownloadStep, Progress, ReplicaSummary};
use tauri::{AppHandle, Emitter as _, State};

use crate::commands::{Doing, Shell, blocking};

/// The import under review (one at a time).
static STAGED: Mutex<Option<StagedImport>> = Mutex::new(None);

fn staged() -> std::sync::MutexGuard<'static, Option<StagedImport>> {
    STAGED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An offline area as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AreaView {
    pub id: String,
    pub name: String,
    pub area: Option<String>,
    /// `(layer, title, features)`.
    pub layers: Vec<(String, String, u64)>,
    pub pending: u64,
    pub photos: usize,
    pub conflicts: usize,
    pub bytes: u64,
    pub open: bool,
}

fn area_view(s: ReplicaSummary, active: Option<&str>) -> AreaView {
    AreaView {
        open: active == Some(s.id.as_str()),
        id: s.id,
        name: s.name,
        area: s.area,
        layers: s.layers,
        pending: s.pending,
        photos: s.unconfirmed_photos,
        conflicts: s.conflicts,
        bytes: s.bytes,
    }
}

fn emit(app: &AppHandle, task: &str, step: &str, done: u64, total: u64) {
    let _ = app.emit("replica-progress", json!({"task": task, "step": step, "done": done, "total": total}));
}

fn emit_import(app: &AppHandle, task: &str, s: ImportStep) {
    match s {
        ImportStep::Reading { done, total } => emit(app, task, "reading", done, total),
        ImportStep::Geocoding { done, total } => emit(app, task, "geocoding", done, total),
        ImportStep::Writing { done, total } => emit(app, task, "writing", done, total),
    }
}

/// The offline areas on this computer.
#[tauri::command]
pub async fn replica_areas(shell: State<'_, Shell>) -> Result<Vec<AreaView>, String> {
    Ok(blocking(&shell, Doing::Read, |d| {
        let active = d.settings.active.clone();
        Ok(d.replicas()?.into_iter().map(|s| area_view(s, active.as_deref())).collect())
    })
    .await?
    .1)
}

/// The layers the user may take offline, `(name, title)`.
#[tauri::command]
pub async fn replica_server_layers(shell: State<'_, Shell>) -> Result<Vec<(String, String)>, String> {
    let list = blocking(&shell, Doing::Read, |d| d.server_layers()).await?.1;
    Ok(list.into_iter().map(|l| (l.name, l.title)).collect())
}

/// A division found by name for an area.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DivisionChoice {
    pub code: String,
    pub name: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

/// Divisions matching `q` (the server's gazetteer).
#[tauri::command]
pub async fn replica_divisions(shell: State<'_, Shell>, q: String) -> Result<Vec<DivisionChoice>, String> {
    let list = blocking(&shell, Doing::Read, move |d| d.search_divisions(&q)).await?.1;
    Ok(list
        .into_iter()
        .map(|p| DivisionChoice { code: p.code.unwrap_or_default(), name: p.name, lon: p.lon, lat: p.lat })
        .collect())
}

/// Downloads an area: a division, or the map's extent `[min_lon, min_lat, max_lon, max_lat]`.
#[tauri::command]
pub async fn replica_download(
    app: AppHandle,
    shell: State<'_, Shell>,
    name: String,
    layers: Vec<String>,
    division: Option<DivisionChoice>,
    extent: Option<[f64; 4]>,
) -> Result<AreaView, String> {
    let area = match (division, extent) {
        (Some(d), _) => AreaChoice::Division { code: d.code, name: d.name, centre: d.lon.zip(d.lat) },
        (None, Some([a, b, c, e])) => AreaChoice::Rect { min_lon: a, min_lat: b, max_lon: c, max_lat: e },
        (None, None) => return Err("请选择行政区或使用地图范围 / choose a division or the map's extent".into()),
    };
    let (device, view) = blocking(&shell, Doing::Read, move |d| {
        let name = if name.trim().is_empty() { area.default_name() } else { name.trim().to_owned() };
        let s = d.download(&name, &layers, &area, &mut |step| {
            let (label, done) = match step {
                DownloadStep::Replica => ("replica", 0),
                DownloadStep::Basemap => ("basemap", 1),
                DownloadStep::Done => ("done", 2),
            };
            emit(&app, "download", label, done, 2);
        })?;
        let active = d.settings.active.clone();
        Ok(area_view(s, active.as_deref()))
    })
    .await?;
    *shell.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = device;
    Ok(view)
}

/// Opens an area (the map's edit panel and the sync work on it).
#[tauri::command]
pub async fn replica_open(shell: State<'_, Shell>, id: String) -> Result<(), String> {
    let (device, ()) = blocking(&shell, Doing::Other, move |d| d.set_active(&id)).await?;
    *shell.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = device;
    Ok(())
}

/// Deletes an area (refused while it holds unsent edits, unless `force`).
#[tauri::command]
pub async fn replica_delete(shell: State<'_, Shell>, id: String, force: bool) -> Result<(), String> {
    let (device, ()) = blocking(&shell, Doing::Other, move |d| d.delete_replica(&id, force)).await?;
    *shell.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = device;
    Ok(())
}

/// The forms of an area's layers.
#[tauri::command]
pub async fn replica_forms(shell: State<'_, Shell>, id: String) -> Result<Vec<LayerForm>, String> {
    Ok(blocking(&shell, Doing::Read, move |d| d.layer_forms(&id)).await?.1)
}

/// A layer's features as GeoJSON for the map.
#[tauri::command]
pub async fn replica_features(shell: State<'_, Shell>, id: String, layer: String) -> Result<Json, String> {
    Ok(blocking(&shell, Doing::Read, move |d| d.features_geojson(&id, &layer)).await?.1)
}

/// A feature for the form.
#[tauri::command]
pub async fn replica_feature(
    shell: State<'_, Shell>,
    id: String,
    layer: String,
    key: String,
) -> Result<Option<FeatureForm>, String> {
    Ok(blocking(&shell, Doing::Read, move |d| d.feature_form(&id, &layer, &key)).await?.1)
}

/// Saves the form (a new feature when `key` is absent).
#[tauri::command]
pub async fn replica_save(
    shell: State<'_, Shell>,
    id: String,
    layer: String,
    key: Option<String>,
    geometry: Option<Json>,
    values: BTreeMap<String, String>,
    files: Vec<String>,
) -> Result<Saved, String> {
    Ok(blocking(&shell, Doing::Write, move |d| {
        let g = geometry.as_ref().map(geometry_from_json).transpose()?;
        let files: Vec<PathBuf> = files.iter().filter(|f| !f.trim().is_empty()).map(PathBuf::from).collect();
        d.save_feature(&id, &layer, key.as_deref(), g, &values, &files)
    })
    .await?
    .1)
}

/// Deletes a feature.
#[tauri::command]
pub async fn replica_delete_feature(
    shell: State<'_, Shell>,
    id: String,
    layer: String,
    key: String,
) -> Result<bool, String> {
    Ok(blocking(&shell, Doing::Write, move |d| d.delete_in(&id, &layer, &key)).await?.1)
}

/// Snaps a position to the area's vertices and edges within `tolerance` pixels.
#[tauri::command]
pub async fn replica_snap(
    shell: State<'_, Shell>,
    id: String,
    lon: f64,
    lat: f64,
    deg_per_px: f64,
    tolerance: f64,
    exclude: Option<String>,
) -> Result<Option<Snapped>, String> {
    Ok(blocking(&shell, Doing::Read, move |d| {
        d.snap_in(&id, (lon, lat), Scale { deg_per_px, lat }, tolerance, exclude.as_deref())
    })
    .await?
    .1)
}

/// What a sync did, as the view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncView {
    pub sent: usize,
    pub accepted: usize,
    pub received: usize,
    pub conflicts: usize,
    pub rejected: Vec<(String, String, String)>,
    pub attachments: usize,
    pub pending: u64,
}

/// Syncs an area with the server, reporting progress as `replica-progress` events.
#[tauri::command]
pub async fn replica_sync(app: AppHandle, shell: State<'_, Shell>, id: String) -> Result<SyncView, String> {
    Ok(blocking(&shell, Doing::Write, move |d| {
        let report = d.sync(&id, &mut |p| match p {
            Progress::Uploading { done, total } => emit(&app, "sync", "uploading", done as u64, total as u64),
            Progress::Pushing { batches } => emit(&app, "sync", "pushing", batches as u64, 0),
            Progress::Pulling { pages, entities } => emit(&app, "sync", "pulling", entities as u64, pages as u64),
            Progress::Verifying => emit(&app, "sync", "verifying", 0, 0),
        })?;
        emit(&app, "sync", "done", 1, 1);
        Ok(SyncView {
            sent: report.pushed_entities,
            accepted: report.accepted,
            received: report.pulled_entities,
            conflicts: report.conflicts,
            rejected: report.rejected,
            attachments: report.attachments_uploaded,
            pending: d.summary(&id)?.pending,
        })
    })
    .await?
    .1)
}

/// Reads a file into a layer's import, waiting for review (replaces any earlier one).
#[tauri::command]
pub async fn import_stage(
    app: AppHandle,
    shell: State<'_, Shell>,
    id: String,
    layer: String,
    path: String,
    options: ImportOptions,
) -> Result<StagedSummary, String> {
    *staged() = None;
    let s = blocking(&shell, Doing::Read, move |d| {
        d.stage_import(&id, &layer, &PathBuf::from(path), &options, &mut |s| emit_import(&app, "import", s))
    })
    .await?
    .1;
    let summary = s.summary();
    *staged() = Some(s);
    Ok(summary)
}

fn no_import() -> String {
    "没有待导入的文件 / no import is waiting".into()
}

/// Keeps or drops a row under review.
#[tauri::command]
pub fn import_decide(index: usize, decision: Decision) -> Result<StagedSummary, String> {
    let mut guard = staged();
    let s = guard.as_mut().ok_or_else(no_import)?;
    s.decide(index, decision).map_err(|e| e.to_string())?;
    Ok(s.summary())
}

/// Geocodes a row's corrected address.
#[tauri::command]
pub async fn import_fix(shell: State<'_, Shell>, index: usize, address: String) -> Result<StagedSummary, String> {
    let mut s = staged().clone().ok_or_else(no_import)?;
    let s = blocking(&shell, Doing::Read, move |d| d.fix_import_row(&mut s, index, &address).map(|()| s)).await?.1;
    let summary = s.summary();
    *staged() = Some(s);
    Ok(summary)
}

/// Writes the reviewed import into the replica (all or nothing); answers the features written.
#[tauri::command]
pub async fn import_commit(app: AppHandle, shell: State<'_, Shell>) -> Result<u64, String> {
    let s = staged().clone().ok_or_else(no_import)?;
    let n =
        blocking(&shell, Doing::Write, move |d| d.commit_import(&s, &mut |p| emit_import(&app, "import", p))).await?.1;
    *staged() = None;
    Ok(n)
}

/// Drops the waiting import.
#[tauri::command]
pub fn import_cancel() {
    *staged() = None;
}

/// Exports an area's layer to a file (`.geojson`, `.gpkg`, `.zip` Shapefile, `.csv`).
#[tauri::command]
pub async fn export_layer(
    app: AppHandle,
    shell: State<'_, Shell>,
    id: String,
    layer: String,
    path: String,
) -> Result<u64, String> {
    Ok(blocking(&shell, Doing::Save, move |d| {
        d.export_layer(&id, &layer, &PathBuf::from(path), &mut |p| emit_import(&app, "export", p))
    })
    .await?
    .1)
}
