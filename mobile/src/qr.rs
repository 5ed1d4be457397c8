//! QR codes on the device: read one from a camera image (enrolment, asset tags, shared
//! features) and draw one (share a feature). Pure: bytes in, text or SVG out.

use crate::Error;

/// The text of the first QR code found in a JPEG/PNG image.
pub fn decode(image_bytes: &[u8]) -> Result<String, Error> {
    let img = image::load_from_memory(image_bytes).map_err(|e| Error::Qr(format!("not a readable image: {e}")))?;
    let luma = img.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(luma);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or_else(|| Error::Qr("no QR code found in the image".into()))?;
    let (_, text) = grid.decode().map_err(|e| Error::Qr(format!("the QR code cannot be read: {e}")))?;
    Ok(text)
}

/// An SVG drawing of `text` as a QR code (medium error correction).
pub fn svg(text: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Qr(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// A PNG of `text` as a QR code (for tests and for saving a share code).
pub fn png(text: &str) -> Result<Vec<u8>, Error> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Qr(e.to_string()))?;
    let img = code.render::<image::Luma<u8>>().min_dimensions(240, 240).build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::Qr(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_with_chinese() {
        let text = "shikong://feature?collection=manhole&id=井盖-0001";
        let png = super::png(text).unwrap_or_default();
        assert_eq!(super::decode(&png).ok().as_deref(), Some(text));
        assert!(super::svg(text).unwrap_or_default().starts_with("<?xml"));
    }

    #[test]
    fn no_code_is_a_clear_error() {
        let img = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
        let mut out = std::io::Cursor::new(Vec::new());
        assert!(img.write_to(&mut out, image::ImageFormat::Png).is_ok());
        let e = super::decode(&out.into_inner()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no QR code"), "{e}");
        assert!(super::decode(b"not an image").is_err());
    }
}
