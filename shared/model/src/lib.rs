//! The spatio-temporal object model shared by every shikong crate.
//!
//! The platform outline describes each object by three domains (三域): **space** (geometry, CRS,
//! bbox), **time** (valid time in the world, transaction time in the platform) and **attribute**
//! (layer, theme codes, typed fields), plus a stable **identity**. This crate is the one place
//! those notions are defined, together with the binary and text encodings of geometry that every
//! other crate reads and writes (WKB, GeoPackage binary, GeoJSON geometry, WKT).
//!
//! Architecture invariant: this crate does no I/O, reads no clock and starts no runtime. Callers
//! pass instants and identifiers in, so everything here is deterministic and fast to test. It
//! does define the [`Clock`] seam the stores take "now" from (and the system clock binaries pass
//! in), but never calls it itself.
#![forbid(unsafe_code)]

pub mod clock;
pub mod crs;
pub mod error;
pub mod feature;
pub mod geojson;
pub mod geometry;
pub mod gpkg_blob;
pub mod schema;
pub mod time;
pub mod value;
pub mod wkb;
pub mod wkt;

pub use clock::{Clock, FixedStepClock, ManualClock, SystemClock};
pub use crs::Crs;
pub use error::{GeometryError, ModelError, Result, ValidationError};
pub use feature::{Change, ChangedValue, EntityId, Feature, Properties, TxId};
pub use geometry::{Bbox, Coord, Geometry, GeometryKind};
pub use schema::{CodeItem, FieldDef, FieldType, HeightDatum, LayerSchema, Theme};
pub use time::{ValidTime, parse_instant};
pub use value::Value;
