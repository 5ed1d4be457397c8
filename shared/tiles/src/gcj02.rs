//! GCJ-02 raster tiles put in place on a CGCS2000 map.
//!
//! Commercial Chinese basemaps (Amap, Tencent) draw their tiles in GCJ-02, an obfuscated WGS 84
//! shifted by 300–600 m around Wuhan; the platform's frame is CGCS2000 (centimetres from WGS 84).
//! Why one module here: the tile server (raster sets marked GCJ-02, `shikong-tileserver`) and the
//! apps (offline GCJ-02 packages, `shikong-app-core`) cut the same tiles, so the shift is written
//! once, pure (no I/O), next to the matrix sets it works in.
//!
//! A GCJ-02 basemap draws the point P at GCJ(P). For the tile `(z, x, y)` of a matrix set, pixel
//! `p` must therefore show the source pixel at `p + d`, where `d` is `pixel(GCJ(P)) − pixel(P)` at
//! zoom `z` ([`gcj02_tile_shift`]). `d` varies slowly (the offset's steepest terms have a period
//! of 1/3° with an amplitude of about 13 m, a gradient below 0.003), so one `d` per tile, taken at
//! the tile's centre, is right to within 0.7 px anywhere on a 256-px tile at every zoom; rounding
//! it to whole pixels adds 0.5 px. The tile is then cut from the (up to four) source tiles the
//! shifted window covers ([`gcj02_tile`]). Outside China's box GCJ-02 is the identity: `d = 0`.

use std::io::Cursor;

use crate::error::TileError;
use crate::tms::{TileId, TileMatrixSet};

/// Tile size of raster tiles, pixels.
pub const TILE_PX: u32 = 256;

/// How a cut tile is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutFormat {
    /// PNG, transparent where no source tile covers the window.
    Png,
    /// JPEG (quality 90) when source tiles cover the whole window; PNG otherwise, so uncovered
    /// parts stay transparent instead of black.
    Jpeg,
}

/// Where a GCJ-02 basemap draws what belongs at the centre of tile `t` of `tms`: the shift
/// `pixel(GCJ(P)) − pixel(P)` in pixels at the tile's zoom (see the module docs). Zero outside
/// China.
pub fn gcj02_tile_shift(tms: TileMatrixSet, t: TileId) -> (f64, f64) {
    let n = (1u64 << t.z) as f64;
    let size = n * f64::from(TILE_PX);
    let (cx, cy) = ((f64::from(t.x) + 0.5) / n, (f64::from(t.y) + 0.5) / n);
    let (lon, lat) = tms.lonlat(cx, cy);
    let (glon, glat) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
    if (glon, glat) == (lon, lat) {
        return (0.0, 0.0);
    }
    let (gx, gy) = tms.unit(glon, glat);
    ((gx - cx) * size, (gy - cy) * size)
}

/// A GCJ-02 lon/lat box moved to CGCS2000/WGS 84 (each corner through the inverse offset; the
/// offset varies by metres across a city, far below what a box of tiles is used for).
pub fn gcj02_bbox_to_cgcs2000(b: &shikong_model::Bbox) -> shikong_model::Bbox {
    let (min_x, min_y) = shikong_geodesy::gcj02_to_wgs84(b.min_x, b.min_y);
    let (max_x, max_y) = shikong_geodesy::gcj02_to_wgs84(b.max_x, b.max_y);
    shikong_model::Bbox { min_x, min_y, max_x, max_y }
}

/// The source tiles the window of tile `t` covers once shifted, each with where its top-left
/// corner lands in the cut tile (pixels; negative: left of or above it). Columns wrap around
/// the antimeridian; rows beyond the matrix are left out.
pub fn gcj02_sources(tms: TileMatrixSet, t: TileId) -> Vec<(TileId, i64, i64)> {
    let (dx, dy) = gcj02_tile_shift(tms, t);
    let px = i64::from(TILE_PX);
    // The window's top-left corner in global source pixels.
    let (wx, wy) = (i64::from(t.x) * px + dx.round() as i64, i64::from(t.y) * px + dy.round() as i64);
    let (cols, rows) = tms.matrix_size(t.z);
    let (cols, rows) = (cols as i64, rows as i64);
    let mut out = Vec::with_capacity(4);
    for ty in wy.div_euclid(px)..=(wy + px - 1).div_euclid(px) {
        if ty < 0 || ty >= rows {
            continue;
        }
        for tx in wx.div_euclid(px)..=(wx + px - 1).div_euclid(px) {
            let sx = tx.rem_euclid(cols);
            let (Ok(sx), Ok(sy)) = (u32::try_from(sx), u32::try_from(ty)) else { continue };
            out.push((TileId { z: t.z, x: sx, y: sy }, tx * px - wx, ty * px - wy));
        }
    }
    out
}

/// Tile `t` of a CGCS2000/WGS 84 map cut out of a GCJ-02 raster basemap in the same matrix set:
/// the window shifted by [`gcj02_tile_shift`], from the source tiles `source` gives (encoded PNG
/// or JPEG images; `None` where the basemap has none, left transparent). `None` when no source
/// tile covers the window.
pub fn gcj02_tile<E: From<TileError>>(
    tms: TileMatrixSet,
    t: TileId,
    format: CutFormat,
    mut source: impl FnMut(TileId) -> Result<Option<Vec<u8>>, E>,
) -> Result<Option<Vec<u8>>, E> {
    let sources = gcj02_sources(tms, t);
    let mut out = image::RgbaImage::new(TILE_PX, TILE_PX);
    let (mut any, mut all) = (false, sources.len() == 4);
    for (s, ox, oy) in sources {
        let Some(bytes) = source(s)? else {
            all = false;
            continue;
        };
        let img = image::load_from_memory(&bytes)
            .map_err(|e| TileError::Image { tile: s.to_string(), reason: e.to_string() })?
            .to_rgba8();
        image::imageops::overlay(&mut out, &img, ox, oy);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let fail = |e: image::ImageError| TileError::Image { tile: t.to_string(), reason: e.to_string() };
    let mut bytes = Vec::new();
    if format == CutFormat::Jpeg && all {
        let rgb = image::DynamicImage::ImageRgba8(out).to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&rgb).map_err(fail)?;
    } else {
        image::DynamicImage::ImageRgba8(out)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .map_err(fail)?;
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WM: TileMatrixSet = TileMatrixSet::WebMercatorQuad;

    fn global_px(tms: TileMatrixSet, lon: f64, lat: f64, z: u8) -> (f64, f64) {
        let (ux, uy) = tms.unit(lon, lat);
        let size = (1u64 << z) as f64 * f64::from(TILE_PX);
        (ux * size, uy * size)
    }

    fn png(img: image::RgbaImage) -> Vec<u8> {
        let mut b = Vec::new();
        image::DynamicImage::ImageRgba8(img).write_to(&mut Cursor::new(&mut b), image::ImageFormat::Png).unwrap();
        b
    }

    #[test]
    fn the_shift_points_where_the_basemap_draws() {
        for tms in TileMatrixSet::ALL {
            let (lon, lat, z) = (114.3660, 30.5628, 16);
            let t = tms.tile_at(lon, lat, z);
            let (dx, dy) = gcj02_tile_shift(tms, t);
            let (px, py) = global_px(tms, lon, lat, z);
            let (g, h) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
            let (gx, gy) = global_px(tms, g, h, z);
            assert!((dx - (gx - px)).abs() <= 0.7 && (dy - (gy - py)).abs() <= 0.7, "{tms}: {dx},{dy}");
            assert!(dx.hypot(dy) > 100.0, "{tms}: hundreds of metres at z16 are hundreds of pixels");
        }
        assert_eq!(gcj02_tile_shift(WM, TileId { z: 3, x: 0, y: 0 }), (0.0, 0.0), "no shift outside China");
        assert_eq!(gcj02_sources(WM, TileId { z: 3, x: 0, y: 0 }), vec![(TileId { z: 3, x: 0, y: 0 }, 0, 0)]);
    }

    #[test]
    fn a_marker_lands_where_the_point_is() {
        let (lon, lat, z) = (114.3055, 30.5928, 17);
        let (g, h) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
        let (gx, gy) = global_px(WM, g, h, z);
        let src = WM.tile_at(g, h, z);
        let mut img = image::RgbaImage::from_pixel(TILE_PX, TILE_PX, image::Rgba([0, 0, 255, 255]));
        for i in 0..3 {
            for j in 0..3 {
                let (x, y) = (gx as u32 - src.x * TILE_PX + i, gy as u32 - src.y * TILE_PX + j);
                if x < TILE_PX && y < TILE_PX {
                    img.put_pixel(x, y, image::Rgba([255, 0, 0, 255]));
                }
            }
        }
        let tile = png(img);
        let (px, py) = global_px(WM, lon, lat, z);
        let t = WM.tile_at(lon, lat, z);
        let cut = gcj02_tile::<TileError>(WM, t, CutFormat::Png, |s| Ok((s == src).then(|| tile.clone())))
            .unwrap()
            .expect("the source covers part of the window");
        let out = image::load_from_memory(&cut).unwrap().to_rgba8();
        let (i, j) = ((px - f64::from(t.x * TILE_PX)) as u32, (py - f64::from(t.y * TILE_PX)) as u32);
        let red = |x: u32, y: u32| out.get_pixel(x.min(255), y.min(255)).0 == [255, 0, 0, 255];
        assert!((0..=2).any(|a| (0..=2).any(|b| red((i + a).saturating_sub(1), (j + b).saturating_sub(1)))));
        // JPEG is asked for, but only part of the window is covered: PNG with transparency.
        let cut = gcj02_tile::<TileError>(WM, t, CutFormat::Jpeg, |s| Ok((s == src).then(|| tile.clone()))).unwrap();
        assert!(cut.unwrap().starts_with(&[0x89, b'P', b'N', b'G']));
        // Every source present: JPEG.
        let cut = gcj02_tile::<TileError>(WM, t, CutFormat::Jpeg, |_| Ok(Some(tile.clone()))).unwrap();
        assert!(cut.unwrap().starts_with(&[0xff, 0xd8, 0xff]));
        assert_eq!(gcj02_tile::<TileError>(WM, t, CutFormat::Png, |_| Ok(None)).unwrap(), None);
        let e = gcj02_tile::<TileError>(WM, t, CutFormat::Png, |_| Ok(Some(b"junk".to_vec()))).unwrap_err();
        assert!(matches!(&e, TileError::Image { tile, .. } if tile.starts_with("17/")), "{e}");
    }
}
