//! The gazetteer service (地名地址引擎) around `shikong-geocoder`: building it from the real
//! division lists and the store's road/address/POI layers, keeping it current as those layers
//! change, batch geocoding of tables, and the subset a device replica carries offline.
//!
//! Files in the data directory: `gazetteer.bin` (the engine's snapshot: loads in well under a
//! second), `gazetteer.json` (which store layers feed it, and with which fields) and
//! `gazetteer-aliases.csv` (user aliases, applied over the snapshot).
//!
//! - [`Sources`]: which layers feed the gazetteer (module `sources`, also how a feature becomes a
//!   record and [`refresh`]);
//! - [`build()`]: the division lists + records → snapshot, manifest and the `gazetteer` collection;
//!   [`load`] and the user aliases (module `files`);
//! - [`LiveGazetteer`]: the engine a server answers from, caught up with the store before each use;
//! - [`read_table`] … [`table_gpkg`]: batch geocoding of uploaded tables;
//! - [`device_subset`], [`tagged_subset`], [`attach_to_replica`]: the offline subset of a replica,
//!   holding only the records of the layers its user may read ([`Scope`]);
//! - [`wire`]: the engine's answers as the protocol's types (what the HTTP API and the CLI print).
//!
//! Errors are one [`GazetteerError`]; [`GazetteerError::is_bad_input`] tells the caller's mistakes
//! (a bad table, column or alias) from the server's.
#![forbid(unsafe_code)]

mod build;
mod error;
mod files;
mod live;
mod sources;
mod subset;
mod tables;
mod upload;
pub mod wire;

pub use build::{BuildOptions, BuildReport, COLLECTION, build};
pub use error::{GazetteerError, Result};
pub use files::{SNAPSHOT_FILE, SOURCES_FILE, USER_ALIASES_FILE, load, read_user_aliases};
pub use live::LiveGazetteer;
/// Which records a query or a subset sees, by source layer (the caller's readable layers).
pub use shikong_geocoder::Scope;
pub use sources::{Manifest, Source, Sources, refresh};
pub use subset::{attach_to_replica, device_subset, replica_envelope, tagged_subset};
pub use tables::{BATCH_COLUMNS, Table, geocode_table, read_table, result_cells, table_csv, table_geojson, table_gpkg};
pub use upload::read_table_with;
