//! Integration tests of `shikong-replica`: real files, real GDAL, a fake sync server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod attachments;
mod editing;
mod gdal;
mod properties;
mod support;
mod sync;
