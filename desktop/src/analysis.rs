//! The 分析 panel's commands (issue 19): start a process as a job and cancel one. The panel
//! (`ui/src/analysis.js`, the web map's shared module) reads the processes, their descriptions,
//! the job statuses and results through the map's `skmap:` scheme; these two writes go through the
//! signed-in session's client here, so the page never holds the token.

use serde_json::{Map, Value as Json};
use shikong_protocol::api::processes::StatusInfo;
use tauri::State;

use crate::commands::{Doing, Shell};
use crate::connectivity::on_server;

/// `POST /processes/{process}/execution` with `Prefer: respond-async`: the new job's status.
#[tauri::command]
pub async fn analysis_execute(
    shell: State<'_, Shell>,
    process: String,
    inputs: Map<String, Json>,
) -> Result<StatusInfo, String> {
    on_server(&shell, Doing::Write, move |d| Ok(d.server_client()?.execute_async(&process, inputs)?)).await
}

/// `DELETE /jobs/{job}`: cancels a waiting or running job (forgets a finished one).
#[tauri::command]
pub async fn analysis_dismiss(shell: State<'_, Shell>, job: String) -> Result<StatusInfo, String> {
    on_server(&shell, Doing::Write, move |d| Ok(d.server_client()?.dismiss_job(&job)?)).await
}
