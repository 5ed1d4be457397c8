//! The 属性表 view's commands (issue 16): the layers and their fields (queryables), a page of a
//! layer's features (CQL2 filter, `sortby`, bbox, `intersects` a division, as of the time slider's instant, keyset cursor),
//! the CQL2 text of the query builder (built and checked in `shikong_app_core::query`), and the
//! export of the query's result or the selection, streamed page by page to a file the user
//! chose, with progress as `table-export-progress` events.
//!
//! Server refusals come back worded as the server gave them (its problem detail names the
//! parameter and what is wrong), so the builder shows exactly why a query was refused.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use shikong_app_core::AppError;
use shikong_app_core::query::{self, QueryField, QuerySpec};
use shikong_app_core::query_export::{self, ExportFormat, ExportReport, ExportRequest};
use shikong_protocol::api::Feature;
use shikong_sync_client::query::{ItemsQuery, cursor_of};
use tauri::{AppHandle, Emitter as _, Manager as _, State};

use crate::commands::{Doing, Shell, blocking};
use crate::connectivity::on_server;

/// A layer the table offers.
#[derive(Debug, Clone, Serialize)]
pub struct TableLayer {
    pub name: String,
    pub title: String,
    pub geometry_type: String,
}

/// One page of the table.
#[derive(Debug, Clone, Serialize)]
pub struct TablePage {
    pub features: Vec<Feature>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// Every feature the query matches, when the server counted them (sorted answers).
    pub matched: Option<u64>,
    /// The request's round trip, milliseconds.
    pub ms: f64,
    /// The request as sent (path and query), for the builder to show.
    pub request: String,
}

#[tauri::command]
pub async fn table_layers(shell: State<'_, Shell>) -> Result<Vec<TableLayer>, String> {
    let list = on_server(&shell, Doing::Read, |d| Ok(d.server_client()?.readable_layers()?)).await?;
    Ok(list.into_iter().map(|c| TableLayer { name: c.id, title: c.title, geometry_type: c.geometry_type }).collect())
}

/// The fields of `layer` (its queryables), with the operators the builder offers for each.
#[tauri::command]
pub async fn table_fields(shell: State<'_, Shell>, layer: String) -> Result<Vec<QueryField>, String> {
    let q = on_server(&shell, Doing::Read, move |d| Ok(d.server_client()?.queryables(&layer)?)).await?;
    Ok(query::fields(&q))
}

/// The builder's CQL2 text (`None`: no condition).
#[tauri::command]
pub async fn table_cql(shell: State<'_, Shell>, spec: QuerySpec) -> Result<Option<String>, String> {
    Ok(blocking(&shell, Doing::Other, move |_| query::cql2_text(&spec)).await?.1)
}

/// One page of `layer`.
#[tauri::command]
#[allow(clippy::too_many_arguments)] // one argument per control of the table
pub async fn table_page(
    shell: State<'_, Shell>,
    layer: String,
    filter: Option<String>,
    sortby: Option<String>,
    as_of: Option<String>,
    limit: u32,
    cursor: Option<String>,
    bbox: Option<[f64; 4]>,
    intersects: Option<String>,
) -> Result<TablePage, String> {
    let q = ItemsQuery { layer, filter, sortby, bbox, as_of, limit: Some(limit), cursor, intersects };
    on_server(&shell, Doing::Read, move |d| {
        let client = d.server_client()?;
        let started = Instant::now();
        let page = client.items(&q)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let next = page.next().and_then(cursor_of);
        Ok(TablePage { features: page.features, next, matched: page.number_matched, ms, request: q.path() })
    })
    .await
}

/// Where an export goes by default: `shikong/LAYER-TIME.EXT` in the documents folder (else home).
#[tauri::command]
pub fn table_export_path(app: AppHandle, layer: String, format: ExportFormat) -> String {
    let paths = app.path();
    let docs = paths.document_dir().ok().filter(|d| d.is_dir()).or_else(|| paths.home_dir().ok());
    query_export::default_path_now(docs.as_deref(), &layer, format).display().to_string()
}

/// Exports the query's result (or `request.ids`, the selection) to `path`; progress events
/// `table-export-progress` `{written, total}` after every page.
#[tauri::command]
pub async fn table_export(
    app: AppHandle,
    shell: State<'_, Shell>,
    request: ExportRequest,
    path: String,
) -> Result<ExportReport, String> {
    on_server(&shell, Doing::Save, move |d| {
        let p = PathBuf::from(path.trim());
        if !p.is_absolute() {
            return Err(AppError::Input {
                field: "path".into(),
                message: format!("`{}` 不是绝对路径 / is not an absolute path", p.display()),
            });
        }
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::Io { path: dir.to_owned(), source: e })?;
        }
        let client = d.server_client()?;
        query_export::export(&client, &request, &p, &mut |pr| {
            let _ = app.emit("table-export-progress", pr);
        })
    })
    .await
}
