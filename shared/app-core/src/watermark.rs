//! The evidence watermark (举证照片水印): capture time (Beijing), position, heading and the
//! SHA-256 of the photo as captured, drawn into the bottom of the image, as land-survey
//! verification expects. The hash is of the original bytes (the stamped photo's own hash cannot be
//! printed on itself); the evidence record keeps the position and time as data too.
//!
//! A 5×7 bitmap font for the few characters needed keeps this free of a font rasterizer.

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use shikong_replica::Evidence;

use crate::AppError;
use crate::platform::Photo;

fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        _ => [0; 7],
    }
}

/// The watermark's lines for `e` and the original bytes' hash.
pub fn lines(e: &Evidence, sha256: &str) -> Vec<String> {
    let time = shikong_model::time::beijing(e.capture_time).replace('T', " ");
    let mut v = vec![time.chars().take(25).collect::<String>()];
    if let (Some(lon), Some(lat)) = (e.lon, e.lat) {
        let ew = if lon < 0.0 { 'W' } else { 'E' };
        let ns = if lat < 0.0 { 'S' } else { 'N' };
        let mut pos = format!("{ew}{:.6} {ns}{:.6}", lon.abs(), lat.abs());
        if let Some(h) = e.heading {
            pos.push_str(&format!(" H{h:03.0}"));
        }
        v.push(pos);
    }
    v.push(format!("SHA256 {}", sha256.get(..16).unwrap_or(sha256).to_uppercase()));
    v
}

fn draw_text(img: &mut RgbaImage, x0: u32, y0: u32, scale: u32, text: &str) {
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c.to_ascii_uppercase());
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let x = x0 + (i as u32 * 6 + col) * scale + dx;
                        let y = y0 + row as u32 * scale + dy;
                        if x < img.width() && y < img.height() {
                            img.put_pixel(x, y, Rgba([255, 255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

/// The photo with the evidence drawn into its bottom band, in the same format.
pub fn stamp(photo: &Photo, e: &Evidence) -> Result<Photo, AppError> {
    let sha = shikong_replica::sha256_hex(&photo.bytes);
    let format = match photo.mime.as_str() {
        "image/png" => ImageFormat::Png,
        _ => ImageFormat::Jpeg,
    };
    let image_error = |err: image::ImageError| AppError::Image { name: photo.name.clone(), reason: err.to_string() };
    let img = image::load_from_memory(&photo.bytes).map_err(image_error)?;
    let mut rgba = img.to_rgba8();
    let text = lines(e, &sha);
    let scale = (rgba.width() / 320).clamp(1, 6);
    let line_h = 9 * scale;
    let band = line_h * text.len() as u32 + 2 * scale;
    let top = rgba.height().saturating_sub(band);
    for y in top..rgba.height() {
        for x in 0..rgba.width() {
            let p = rgba.get_pixel_mut(x, y);
            for ch in 0..3 {
                p.0[ch] /= 3;
            }
        }
    }
    for (i, l) in text.iter().enumerate() {
        draw_text(&mut rgba, 2 * scale, top + scale + i as u32 * line_h, scale, l);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    let encoded = match format {
        ImageFormat::Png => DynamicImage::ImageRgba8(rgba).write_to(&mut out, ImageFormat::Png),
        _ => DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8()).write_to(&mut out, ImageFormat::Jpeg),
    };
    encoded.map_err(image_error)?;
    Ok(Photo { bytes: out.into_inner(), mime: photo.mime.clone(), name: photo.name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_the_bottom_band_only() {
        let img = RgbaImage::from_pixel(640, 480, Rgba([200, 100, 50, 255]));
        let mut out = std::io::Cursor::new(Vec::new());
        assert!(DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).is_ok());
        let photo = Photo { bytes: out.into_inner(), mime: "image/png".into(), name: "t.png".into() };
        let e = Evidence {
            capture_time: jiff::Timestamp::UNIX_EPOCH,
            lon: Some(114.3),
            lat: Some(30.5),
            heading: Some(45.0),
            device: None,
        };
        let stamped = stamp(&photo, &e).map(|p| p.bytes).unwrap_or_default();
        let back = image::load_from_memory(&stamped).map(|i| i.to_rgba8()).unwrap_or_default();
        assert_eq!(back.dimensions(), (640, 480));
        assert_eq!(back.get_pixel(10, 10).0, [200, 100, 50, 255], "top untouched");
        let white = (440..480)
            .flat_map(|y| (0..640).map(move |x| (x, y)))
            .filter(|&(x, y)| back.get_pixel(x, y).0[0] == 255)
            .count();
        assert!(white > 200, "text drawn ({white} white pixels)");
        let l = lines(&e, &"ab".repeat(32));
        assert_eq!(l[0], "1970-01-01 08:00:00+08:00");
        assert_eq!(l[1], "E114.300000 N30.500000 H045");
        assert_eq!(l[2], "SHA256 ABABABABABABABAB");
    }
}
