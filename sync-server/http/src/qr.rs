//! QR codes of shikong links (`shikong-protocol::enrolment`), drawn for screens and paper: error
//! correction level M (15 % of the code may be damaged or covered), the 4-module quiet zone the
//! standard asks for, and 8 px per module in PNGs (phone cameras read a code shown on a monitor
//! from arm's length).

use axum::http::{HeaderMap, header};
use qrcode::{EcLevel, QrCode};

use super::problem::{ApiError, ApiResult};

/// Pixels (PNG) or user units (SVG) per QR module.
const MODULE_PX: u32 = 8;

fn code(payload: &str) -> ApiResult<QrCode> {
    QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).map_err(ApiError::internal)
}

/// The code as an SVG document (black on white, scalable).
pub fn svg(payload: &str) -> ApiResult<String> {
    Ok(code(payload)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .build())
}

/// The code as a greyscale PNG.
pub fn png(payload: &str) -> ApiResult<Vec<u8>> {
    let img =
        code(payload)?.render::<image::Luma<u8>>().quiet_zone(true).module_dimensions(MODULE_PX, MODULE_PX).build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(ApiError::internal)?;
    Ok(out.into_inner())
}

/// Whether the client asked for a PNG rather than JSON: `Accept` names `image/png` with a
/// quality above that of any JSON type it also names (`Accept: image/png` alone is enough;
/// `*/*` or no header means JSON).
pub fn wants_png(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    let (mut png, mut json) = (0.0_f32, 0.0_f32);
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|v| v.trim().parse::<f32>().ok()).unwrap_or(1.0);
        match ty.as_str() {
            "image/png" => png = png.max(q),
            "application/json" | "application/*" => json = json.max(q),
            _ => {}
        }
    }
    png > 0.0 && png > json
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert!(!wants_png(&HeaderMap::new()));
        assert!(wants_png(&accept("image/png")));
        assert!(wants_png(&accept("image/png, application/json;q=0.5")));
        assert!(!wants_png(&accept("application/json, image/png")));
        assert!(!wants_png(&accept("*/*")));
        assert!(!wants_png(&accept("image/png;q=0")));
        assert!(wants_png(&accept("image/*, image/png")));
    }

    #[test]
    fn drawings() {
        let p = "shikong://enrol?server=http%3A%2F%2F127.0.0.1%3A8080&code=abc&user=%E5%BC%A0%E4%B8%89";
        let s = svg(p).unwrap();
        assert!(s.contains("<svg") && s.ends_with("</svg>"), "{s}");
        let bytes = png(p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}
