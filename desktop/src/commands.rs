//! The window's side of the app: the Tauri commands the views call (state in, intents out) and
//! the `skmap:` scheme through which MapLibre reads the server's styles, TileJSON and tiles.
//!
//! Every command runs the app core's blocking effect on Tauri's blocking pool (never on the main
//! thread, which draws the window) and answers either the data the view renders or the error
//! worded in the user's language ([`shikong_app_core::i18n::error_text`]). Sign-in and sign-out
//! replace the shell's [`Device`]; the other commands work on a copy of it.
//!
//! The map never talks to the server itself: `skmap://localhost/PATH` (on Windows
//! `http://skmap.localhost/PATH`) is answered by `GET PATH` on the signed-in user's server with
//! the session's token and the app's CA setting, and the server's own base URL inside JSON
//! answers (a style's sources, a TileJSON's tiles) is rewritten to the scheme, so every tile
//! comes back the same way.

use std::sync::Mutex;

use serde::Serialize;
use shikong_app_core::dispatch::{DispatchBoard, OFFICE_ACTIONS, SyncClient};
use shikong_app_core::i18n::{Lang, error_text};
use shikong_app_core::{AppError, Device};
use shikong_protocol::api::cases::CaseDoc;
use tauri::http::{Request, Response, StatusCode, header};
use tauri::{Manager as _, State, UriSchemeResponder, WebviewUrl, WebviewWindowBuilder};

/// What the commands share: the device (data folder, settings, session) and where its secrets are.
#[derive(Debug)]
pub struct Shell {
    pub device: Mutex<Device>,
    /// The secret storage in use, as the settings line shows it.
    pub storage: String,
    /// The map's client (one connection pool for all tiles) and the server it was made for;
    /// dropped at sign-in and sign-out.
    pub map_client: Mutex<Option<(SyncClient, String)>>,
}

impl Shell {
    fn device(&self) -> Device {
        self.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn replace(&self, device: Device) {
        *self.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = device;
        *self.map_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The map's client and its server (made on first use after a sign-in).
    fn map_client(&self) -> Result<(SyncClient, String), AppError> {
        let mut cached = self.map_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let device = self.device();
        let server = device.session().map(|s| s.server.clone()).ok_or(AppError::NotSignedIn)?;
        let made = (device.server_client()?, server);
        *cached = Some(made.clone());
        Ok(made)
    }
}

/// The signed-in user as the views show them.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub server: String,
    pub username: String,
    pub role: String,
    /// Where the session is kept (system keyring, or files).
    pub storage: String,
}

fn session_view(d: &Device, storage: &str) -> Option<SessionView> {
    d.session().map(|s| SessionView {
        server: s.server.clone(),
        username: s.username.clone(),
        role: s.role.clone(),
        storage: storage.to_owned(),
    })
}

/// What the user was doing, the lead of a server error's text (the app core's generic lead for
/// server errors speaks of syncing).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Doing {
    SignIn,
    ReadCases,
    Act,
    /// Reading features, history, conflicts, statistics.
    Read,
    /// Sending an edit or a resolution.
    Write,
    /// Writing a file the user chose (export, print).
    Save,
    Other,
}

fn word(lang: Lang, doing: Doing, e: &AppError) -> String {
    let lead = match (doing, lang) {
        (Doing::SignIn, Lang::Zh) => "登录失败",
        (Doing::SignIn, Lang::En) => "Sign-in failed",
        (Doing::ReadCases, Lang::Zh) => "读取案件失败",
        (Doing::ReadCases, Lang::En) => "Cannot read the cases",
        (Doing::Act, Lang::Zh) => "操作失败",
        (Doing::Act, Lang::En) => "The action failed",
        (Doing::Read, Lang::Zh) => "读取失败",
        (Doing::Read, Lang::En) => "Cannot read",
        (Doing::Write, Lang::Zh) => "保存失败",
        (Doing::Write, Lang::En) => "Cannot save",
        (Doing::Save, Lang::Zh) => "写入文件失败",
        (Doing::Save, Lang::En) => "Cannot write the file",
        (Doing::Other, _) => return error_text(lang, e),
    };
    match e {
        AppError::Sync(s) => format!("{lead}：{s}"),
        _ => error_text(lang, e),
    }
}

/// Runs `f` on a copy of the device in the blocking pool; returns the copy (for effects that
/// change the session) and `f`'s answer, its error worded for the user.
pub(crate) async fn blocking<T: Send + 'static>(
    shell: &Shell,
    doing: Doing,
    f: impl FnOnce(&mut Device) -> Result<T, AppError> + Send + 'static,
) -> Result<(Device, T), String> {
    let mut device = shell.device();
    let lang = device.settings.lang;
    let (device, out) = tauri::async_runtime::spawn_blocking(move || {
        let out = f(&mut device);
        (device, out)
    })
    .await
    .map_err(|e| format!("内部错误 / internal error: {e}"))?;
    out.map(|v| (device, v)).map_err(|e| word(lang, doing, &e))
}

#[tauri::command]
fn session(shell: State<'_, Shell>) -> Option<SessionView> {
    session_view(&shell.device(), &shell.storage)
}

#[tauri::command]
async fn sign_in(
    shell: State<'_, Shell>,
    server: String,
    username: String,
    password: String,
) -> Result<Option<SessionView>, String> {
    let (device, ()) =
        blocking(&shell, Doing::SignIn, move |d| d.login(&server, &username, &password).map(|_| ())).await?;
    let view = session_view(&device, &shell.storage);
    shell.replace(device);
    Ok(view)
}

#[tauri::command]
async fn sign_out(shell: State<'_, Shell>) -> Result<(), String> {
    let (device, ()) = blocking(&shell, Doing::Other, Device::logout).await?;
    shell.replace(device);
    Ok(())
}

#[tauri::command]
async fn board(shell: State<'_, Shell>) -> Result<DispatchBoard, String> {
    Ok(blocking(&shell, Doing::ReadCases, |d| {
        crate::connectivity::ensure_online(d)?;
        d.dispatch_board()
    })
    .await?
    .1)
}

#[tauri::command]
async fn case_page(shell: State<'_, Shell>, id: String) -> Result<CaseDoc, String> {
    crate::connectivity::on_server(&shell, Doing::ReadCases, move |d| d.case_page(&id)).await
}

#[tauri::command]
async fn case_action(
    shell: State<'_, Shell>,
    id: String,
    action: String,
    assignee: Option<String>,
    note: Option<String>,
) -> Result<CaseDoc, String> {
    let r = crate::connectivity::on_server(&shell, Doing::Act, move |d| {
        d.act_on_case(&id, &action, assignee.as_deref(), note.as_deref())
    })
    .await?;
    Ok(r.case)
}

/// The open cases `assignee` (a user name or `department:NAME`) holds now, shown while the
/// office picks whom to dispatch to.
#[tauri::command]
async fn assignee_tasks(shell: State<'_, Shell>, assignee: String) -> Result<Vec<CaseDoc>, String> {
    crate::connectivity::on_server(&shell, Doing::ReadCases, move |d| d.assignee_tasks(&assignee)).await
}

/// The actions the case page offers, `(action, label)`.
#[tauri::command]
fn office_actions() -> Vec<(&'static str, &'static str)> {
    OFFICE_ACTIONS.to_vec()
}

/// The base URL of the map's scheme in this web view.
#[tauri::command]
fn map_base() -> &'static str {
    MAP_BASE
}

#[cfg(windows)]
const MAP_BASE: &str = "http://skmap.localhost";
#[cfg(not(windows))]
const MAP_BASE: &str = "skmap://localhost";

fn answer(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_str(content_type)
            .unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    r
}

/// `GET PATH` on the server for the map.
fn map_request(shell: &Shell, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
    if request.method() != tauri::http::Method::GET {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"GET only".to_vec());
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let lang = shell.device().settings.lang;
    let failed = |status, e: &AppError| answer(status, "text/plain; charset=utf-8", error_text(lang, e).into_bytes());
    if crate::connectivity::known_offline() {
        return failed(StatusCode::SERVICE_UNAVAILABLE, &AppError::Offline);
    }
    let (client, server) = match shell.map_client() {
        Ok(c) => c,
        Err(e) => return failed(StatusCode::UNAUTHORIZED, &e),
    };
    match client.get_raw(&path) {
        Ok(raw) => {
            let ty = raw.content_type.unwrap_or_else(|| "application/octet-stream".into());
            let body = if ty.contains("json") {
                String::from_utf8_lossy(&raw.body).replace(&server, MAP_BASE).into_bytes()
            } else {
                raw.body
            };
            answer(StatusCode::from_u16(raw.status).unwrap_or(StatusCode::BAD_GATEWAY), &ty, body)
        }
        Err(e) => failed(StatusCode::BAD_GATEWAY, &AppError::Sync(e)),
    }
}

fn map_scheme(app: &tauri::AppHandle, request: Request<Vec<u8>>, responder: UriSchemeResponder) {
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || responder.respond(map_request(&app.state::<Shell>(), &request)));
}

/// Builds and runs the app: the commands, the map's scheme and the main window.
pub fn run(shell: Shell, startup: crate::startup::Startup) -> tauri::Result<()> {
    tauri::Builder::default()
        .manage(shell)
        .manage(startup)
        // native open/save dialogs for the typed paths (capabilities/default.json grants only those two)
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![
            crate::replica::replica_areas,
            crate::replica::replica_server_layers,
            crate::replica::replica_divisions,
            crate::replica::replica_download,
            crate::replica::replica_open,
            crate::replica::replica_delete,
            crate::replica::replica_forms,
            crate::replica::replica_features,
            crate::replica::replica_feature,
            crate::replica::replica_save,
            crate::replica::replica_delete_feature,
            crate::replica::replica_snap,
            crate::replica::replica_sync,
            crate::replica::import_stage,
            crate::replica::import_decide,
            crate::replica::import_fix,
            crate::replica::import_commit,
            crate::replica::import_cancel,
            crate::replica::export_layer,
            crate::table::table_layers,
            crate::table::table_fields,
            crate::table::table_cql,
            crate::table::table_page,
            crate::table::table_export_path,
            crate::table::table_export,
            crate::conflicts::conflict_list,
            crate::conflicts::conflict_layers,
            crate::conflicts::conflict_resolve,
            crate::connectivity::server_status,
            session,
            sign_in,
            sign_out,
            board,
            case_page,
            case_action,
            assignee_tasks,
            office_actions,
            map_base,
            crate::maptools::pointer_coords,
            crate::maptools::measure,
            crate::maptools::bookmarks,
            crate::maptools::save_bookmark,
            crate::maptools::delete_bookmark,
            crate::maptools::geocode,
            crate::maptools::geocode_suggest,
            crate::maptools::basemaps,
            crate::maptools::basemap_tile,
            crate::maptools::lang,
            crate::maptools::set_lang,
            crate::analysis::analysis_execute,
            crate::analysis::analysis_dismiss,
            crate::stats::stats_layers,
            crate::stats::stats_query,
            crate::stats::stats_folder,
            crate::stats::stats_export,
            crate::stats::stats_png,
            crate::startup::start_view,
            crate::startup::map_ready,
            crate::print::print_setup,
            crate::print::print_layout,
            crate::print::print_pdf,
            crate::print::print_png,
        ])
        .register_asynchronous_uri_scheme_protocol("skmap", |ctx, request, responder| {
            map_scheme(ctx.app_handle(), request, responder);
        })
        .setup(|app| {
            WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
                .title("时空桌面 — shikong")
                .inner_size(1280.0, 820.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
}
