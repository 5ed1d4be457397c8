//! The `shikong` application: the CLI and (next) the HTTP server, over the library crates.
//!
//! Only this crate knows the JSON shapes shikong speaks ([`json`]) and how files become versions
//! ([`import`]) and back ([`export`]).

#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
pub mod export;
pub mod gazetteer;
pub mod http;
pub mod import;
pub mod json;
mod replica_cli;
pub mod replica_estimate;
pub mod sync;
pub mod sync_verify;
