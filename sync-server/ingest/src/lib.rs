//! Import and export as a library: how files become store versions ([`import`]) and back
//! ([`export`]), and the GeoJSON shapes of stored features, histories and diffs ([`json`]).
//!
//! Architecture invariant: a refused row changes nothing; every import is one store transaction.

#![forbid(unsafe_code)]

pub mod export;
pub mod import;
pub mod json;
