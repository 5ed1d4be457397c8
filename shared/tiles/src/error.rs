//! Errors of the tile crate: each names the tile, matrix set or value at fault.

use crate::tms::TileMatrixSet;

/// Result alias of this crate.
pub type Result<T, E = TileError> = std::result::Result<T, E>;

/// A tile request or encoding input that cannot be honoured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    #[error("unknown tile matrix set `{0}` (known: WebMercatorQuad, CGCS2000Quad)")]
    UnknownMatrixSet(String),
    #[error("zoom {z} is beyond the highest zoom served ({max})")]
    Zoom { z: u8, max: u8 },
    #[error("tile {z}/{x}/{y} is outside {tms}: zoom {z} has {cols} columns and {rows} rows")]
    OutsideMatrix { tms: TileMatrixSet, z: u8, x: u32, y: u32, cols: u64, rows: u64 },
    #[error("`{input}` is not a tile address: {message}")]
    Address { input: String, message: String },
    #[error("invalid vector tile: {0}")]
    Decode(String),
    #[error("raster tile {tile}: {reason}")]
    Image { tile: String, reason: String },
}
