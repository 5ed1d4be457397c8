//! The real-process end-to-end tests, in one test binary: what needs a process (the `shikong`
//! binary's CLI, crash and restart, concurrent devices over real sockets) or a real outside tool
//! (GDAL, OWSLib, Chromium, tauri-driver). One binary links the server once; the modules run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
mod tiles_common;

mod admin_browser;
mod analysis_anchors;
mod analysis_browser;
mod backup;
mod cases_e2e;
mod catalog_e2e;
mod desktop_analysis;
mod desktop_app;
mod desktop_conflicts;
mod desktop_i18n;
mod desktop_maptools;
mod desktop_offline;
mod desktop_print;
mod desktop_query;
mod desktop_replica;
mod desktop_stats;
mod desktop_time;
mod geocode_e2e;
mod harvest_e2e;
mod mobile_app;
mod pg_accounts;
mod pg_fanout;
mod pg_replica;
mod pg_scaleout;
mod sensors_e2e;
mod server_ogc;
mod services_proxy;
mod shutdown_e2e;
mod store_cli;
mod store_copy_e2e;
mod storm;
mod sync_convergence;
mod sync_e2e;
mod tiles_browser;
mod tiles_services;
mod tls_e2e;
