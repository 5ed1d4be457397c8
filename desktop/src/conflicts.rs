//! The conflict review's commands (tab 冲突): one page of the server's open conflicts grouped by
//! feature, the layers to filter by, and the office's decision sent as resolutions. The grouping
//! and the rules are the app core's (`shikong_app_core::conflict_review`); the view sends back
//! the features it shows with the decision, so what is resolved is what the user saw: each
//! resolution carries its conflict's listed revision, and a conflict changed since (a new side,
//! or settled elsewhere) is refused by the server (409), after which the view lists again.

use shikong_app_core::conflict_review::{ConflictQuery, ConflictReview, FeatureConflicts, Intent, Resolved};
use tauri::State;

use crate::commands::{Doing, Shell};
use crate::connectivity::on_server;

/// One page of open conflicts matching the filters (layer, author: a user or device, since: an
/// instant), grouped by feature.
#[tauri::command]
pub async fn conflict_list(shell: State<'_, Shell>, query: ConflictQuery) -> Result<ConflictReview, String> {
    on_server(&shell, Doing::Read, move |d| d.conflict_review(&query)).await
}

/// The layers the user may read, `(name, title)`, for the layer filter.
#[tauri::command]
pub async fn conflict_layers(shell: State<'_, Shell>) -> Result<Vec<(String, String)>, String> {
    let list = on_server(&shell, Doing::Read, |d| d.server_layers()).await?;
    Ok(list.into_iter().map(|l| (l.name, l.title)).collect())
}

/// Resolves what `intent` says on the `features` shown.
#[tauri::command]
pub async fn conflict_resolve(
    shell: State<'_, Shell>,
    features: Vec<FeatureConflicts>,
    intent: Intent,
) -> Result<Resolved, String> {
    on_server(&shell, Doing::Write, move |d| d.resolve_conflicts(&features, &intent)).await
}
