//! shikong's app core: everything the field apps do, without a UI. The mobile app (Dioxus) is
//! views over it, and so will be the desktop app; neither holds business logic or does I/O.
//!
//! One value, [`Device`] — the app's data folder, its platform services and settings — has every
//! effect as a method, grouped by responsibility:
//!
//! - [`session`] — sign-in (password, enrolment QR code), citizen registration, sign-out;
//! - [`areas`] — offline areas: division search, size estimate, download of replica and basemap,
//!   list, open, delete;
//! - [`replica`] — reading the replicas: feature cards, history, offline search, measurement;
//! - [`collect`] — forms, geometry sketches, evidence photos, creating/editing/deleting features;
//! - [`sync`] — sync with the server, and the automatic sync;
//! - [`conflicts`] — resolving what the sync left open;
//! - [`reports`] — citizens' reports, queued offline and followed;
//! - [`dispatch`] — the office's dispatch board over `/cases` (the desktop app);
//! - [`editing`], [`import`] — the desktop's edits through its own replica (forms, snapping,
//!   attachments) and import/export of an area's layer (with the review of geocoded rows);
//! - [`query`], [`query_export`] — the desktop's attribute table: CQL2 text from the query
//!   builder, and the export of a query's result or a selection (GeoJSON, CSV, GeoPackage);
//! - [`tasks`] — an inspector's field tasks (sorted, handled offline with photos) and a
//!   citizen's rating of a closed case;
//! - [`settings`] — `device.json` and the session in secure storage;
//! - [`state`] — [`AppState`], the in-memory picture the views render, refreshed by the effects;
//! - [`platform`] — traits for location (GNSS/NMEA/GPX), camera, network and secure storage,
//!   with implementations that need no GUI;
//! - [`i18n`] — zh-CN/English text, errors included; [`qr`], [`watermark`] — QR codes in and
//!   out, the evidence stamp on photos.
//!
//! Effects are blocking (files, SQLite, HTTP through `shikong-sync-client`) and report a typed
//! [`AppError`]; the views run them off the render path and word errors with
//! [`i18n::error_text`].
//!
//! **Architecture Invariant:** no UI toolkit here (no Dioxus, Tauri or wry) and no async code: the
//! shells decide where blocking work runs. Only `shikong-sync-client` talks HTTP.
#![forbid(unsafe_code)]

pub mod areas;
pub mod collect;
pub mod conflict_review;
pub mod conflicts;
mod device;
pub mod dispatch;
pub mod editing;
mod error;
pub mod i18n;
pub mod import;
pub mod maptools;
pub mod platform;
pub mod qr;
pub mod query;
pub mod query_export;
pub mod replica;
pub mod reports;
pub mod session;
pub mod settings;
pub mod state;
pub mod sync;
pub mod tasks;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod watermark;

pub use areas::{AreaChoice, BASEMAP_SET, BASEMAP_ZOOMS, DownloadStep, ReplicaSummary};
pub use collect::{Collected, EvidencePhoto, FieldProblem};
pub use device::Device;
pub use dispatch::{BoardColumn, DispatchBoard};
pub use error::{AppError, Result};
pub use replica::FeatureCard;
pub use reports::{QueuedReport, ReportForm, ReportStatus};
pub use settings::{Favourite, Settings};
pub use state::{ActiveArea, AppState};
pub use sync::AutoSync;
pub use tasks::{TaskItem, Urgency, tasks_geojson};

/// The server's types the apps show (sign-in, layers, places, estimates, sync progress and
/// reports), re-exported so the views depend on the core alone.
pub use shikong_sync_client::{
    LayerEntry, Place, Progress, ReplicaEstimate, ReportLayer, Session, SyncError, SyncReport,
};

/// A field task as the server lists it, a case's public progress, and the device's queued actions.
pub use shikong_protocol::api::cases::{CaseProgress, ProgressStep};
pub use shikong_protocol::api::tasks::TaskDoc;
pub use shikong_replica::{QueuedTaskAction, TaskActionStatus};

/// A place found by the offline search ([`Device::search_offline`]).
pub use shikong_geocoder::Suggestion;
