//! QR codes on the device: read one from a camera image (enrolment, asset tags, shared
//! features) and draw one (share a feature). Pure: bytes in, text or SVG out.

use crate::AppError;

/// The text of the first QR code found in a JPEG/PNG image.
pub fn decode(image_bytes: &[u8]) -> Result<String, AppError> {
    let img = image::load_from_memory(image_bytes)
        .map_err(|e| AppError::QrUnreadable { reason: format!("not a readable image: {e}") })?;
    let luma = img.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(luma);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or(AppError::QrNotFound)?;
    let (_, text) = grid.decode().map_err(|e| AppError::QrUnreadable { reason: e.to_string() })?;
    Ok(text)
}

/// An SVG drawing of `text` as a QR code (medium error correction).
pub fn svg(text: &str) -> Result<String, AppError> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(encode_error(text))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// A PNG of `text` as a QR code (for tests and for saving a share code).
pub fn png(text: &str) -> Result<Vec<u8>, AppError> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(encode_error(text))?;
    let img = code.render::<image::Luma<u8>>().min_dimensions(240, 240).build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(encode_error(text))?;
    Ok(out.into_inner())
}

fn encode_error<E: std::fmt::Display>(text: &str) -> impl FnOnce(E) -> AppError + '_ {
    move |e| AppError::QrEncode { text: text.to_owned(), reason: e.to_string() }
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
