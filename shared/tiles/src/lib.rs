//! Tiles for shikong's maps: tile matrix sets and Mapbox Vector Tile encoding.
//!
//! - [`tms`]: WebMercatorQuad and the CGCS2000 geographic set, tile ranges for areas (with the
//!   tile buffer, which is what exact cache invalidation needs), lon/lat → tile pixels.
//! - [`encode`]: per-layer MVT building with clipping to the buffered tile, per-zoom
//!   simplification, grid snapping and ring orientation; [`decode`] reads tiles back.
//! - [`gcj02`]: GCJ-02 raster tiles (Amap/Tencent basemaps) cut into place on a CGCS2000 map.
//!
//! Architecture invariant: no I/O, no clock, no runtime. The tile server (`shikong-tileserver`)
//! queries the store, caches and serves; this crate only computes, so the mobile app can encode
//! or read tiles offline with the same code.
#![forbid(unsafe_code)]

pub mod clip;
pub mod decode;
pub mod encode;
pub mod error;
pub mod gcj02;
pub mod mvt;
pub mod tms;

pub use decode::{DecodedFeature, DecodedGeometry, DecodedLayer, decode_tile};
pub use encode::{EncodeOptions, LayerBuilder};
pub use error::{Result, TileError};
pub use tms::{MAX_ZOOM, TileId, TileMatrixSet, TileProjector, TileRange};

/// Parses `"{y}.{ext}"`, the last segment of an XYZ URL, into the row and the extension.
pub fn split_extension(segment: &str) -> Result<(u32, &str)> {
    let bad = |m: &str| TileError::Address { input: segment.to_owned(), message: m.to_owned() };
    let (num, ext) = segment.split_once('.').ok_or_else(|| bad("expected {y}.mvt, {y}.png or {y}.jpg"))?;
    let y = num.parse::<u32>().map_err(|_| bad("the row is not a non-negative integer"))?;
    Ok((y, ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(split_extension("12.mvt").unwrap(), (12, "mvt"));
        assert_eq!(split_extension("0.png").unwrap(), (0, "png"));
        assert!(split_extension("12").unwrap_err().to_string().contains("expected {y}.mvt"));
        assert!(split_extension("-1.mvt").is_err());
    }
}
