//! How the window starts and when it is usable: `--view NAME` opens a view other than the board
//! (the map, for the cold-start benchmark and for users who live on the map), and the map's first
//! `idle` is logged with the time since the process started — "cold start to a usable map" is
//! measured from outside by `shikong-bench desktop` reading that line.

use std::time::Instant;

use tauri::State;

/// What the window is told at start.
#[derive(Debug)]
pub struct Startup {
    /// The view to open first (`board` when none).
    pub view: Option<String>,
    /// When the process started (`main`'s first line).
    pub started: Instant,
}

/// The view to open first (`null`: the board).
#[tauri::command]
pub fn start_view(startup: State<'_, Startup>) -> Option<String> {
    startup.view.clone()
}

/// The map drew its first frame with every tile in: logs `map ready after N ms` (the line the
/// benchmark reads).
#[tauri::command]
pub fn map_ready(startup: State<'_, Startup>) {
    tracing::info!("map ready after {} ms", startup.started.elapsed().as_millis());
}
