//! The in-process tests of the HTTP service, in one test binary: every module's routes through
//! `tower::ServiceExt::oneshot` on `shikong_http::app(state)` (no socket, no process), with
//! `insta` snapshots of the documents clients read (OGC landing page, conformance, collections,
//! queryables, OpenAPI, TileJSON, tile matrix sets, tilesets, WMTS capabilities, styles).
//!
//! What needs a real process or an outside tool (the CLI, crash and restart, GDAL, OWSLib,
//! Chromium, devices over real sockets) is in the repository's end-to-end tests (`tests/e2e.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

mod admin_system;
mod alerts;
mod auth;
mod calendar;
mod case_interleaving;
mod case_stats;
mod cases;
mod catalog;
mod conflicts;
mod crash;
mod division_filter;
mod events;
mod gcj02_rasters;
mod geocode;
mod grid;
mod harvest;
mod limits;
mod live_view;
mod meta;
mod ogc;
mod processes;
mod processes_shapes;
mod processes_spacetime;
mod reports;
mod routing;
mod services;
mod sortby;
mod sta;
mod sta_mqtt;
mod sta_mqtt_load;
mod stats;
mod sync;
mod tasks;
mod tiles;
mod time_range;
mod uploads;
