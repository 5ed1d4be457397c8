//! shikong's mobile app (issue 8): the field inspector's and the citizen's offline app.
//!
//! The app is views ([`views`]) over the app core ([`app_core`], crate `shikong-app-core`): the
//! signed-in session, offline areas, replica access, sync, reports, conflicts, settings, platform
//! traits and zh-CN/English text live there, UI-free, shared with the desktop app. What is left
//! here is what only this app's UI needs:
//!
//! - [`views`] — the screens (Dioxus); they render the core's state and send it intents.
//! - [`mapserver`] — the loopback server MapLibre (bundled, no network) reads style and tiles from.
//! - [`launch`] — the desktop window and the liveview server (the same views in a browser).
//!
//! Architecture invariant: no view talks to the network or a file; every effect is a method of
//! the core's `Device`, run off the render path.
#![forbid(unsafe_code)]

pub mod launch;
pub mod mapserver;
pub mod views;

/// The app core, re-exported for the app's tests and tools.
pub use shikong_app_core as app_core;
pub use shikong_app_core::{AppError, Device};
