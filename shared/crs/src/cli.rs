//! The text behind `shikong crs transform` and `shikong measure`: parsed arguments in, the line to
//! print out. The binary only parses flags and prints; everything users see is decided here, so it
//! is tested here.
//!
//! Output formats (stable; scripts may rely on them):
//! - `crs transform`: `X Y` or `X Y Z`, separated by one space, like PROJ's `cs2cs`. Degrees with 9
//!   decimals (about 0.1 mm), metres with 4 decimals; Z is printed as given (it is never changed).
//! - `measure`: `key=value` pairs separated by one space, always `length_m`, `area_m2`,
//!   `perimeter_m` (3 decimals), then `length_3d_m` and `perimeter_3d_m` only when the geometry
//!   has Z, then `method=geodesic` or `method=planar:EPSG:NNNN`.

use std::fmt::Write as _;

use shikong_model::Coord;

use crate::codes::parse_crs;
use crate::error::Result;
use crate::measure::{Method, measure};
use crate::transform::with_transform;

/// `shikong crs transform --from FROM --to TO X Y [Z]`.
pub fn transform_command(from: &str, to: &str, x: f64, y: f64, z: Option<f64>) -> Result<String> {
    let (from, to) = (parse_crs(from)?, parse_crs(to)?);
    let c = with_transform(from, to, |t| t.convert(Coord { x, y, z }))??;
    let decimals = if to.is_geographic() { 9 } else { 4 };
    let mut out = format!("{:.*} {:.*}", decimals, c.x, decimals, c.y);
    if let Some(z) = c.z {
        let _ = write!(out, " {z}");
    }
    Ok(out)
}

/// `shikong measure --crs CRS WKT`.
pub fn measure_command(crs: &str, wkt: &str) -> Result<String> {
    let crs = parse_crs(crs)?;
    let g = shikong_model::wkt::parse(wkt)?;
    let m = measure(&g, crs)?;
    let v = m.measurement;
    let mut out = format!("length_m={:.3} area_m2={:.3} perimeter_m={:.3}", v.length_m, v.area_m2, v.perimeter_m);
    if let (Some(l), Some(p)) = (v.length_3d_m, v.perimeter_3d_m) {
        let _ = write!(out, " length_3d_m={l:.3} perimeter_3d_m={p:.3}");
    }
    match m.method {
        Method::Geodesic => out.push_str(" method=geodesic"),
        Method::Planar(zone) => {
            let _ = write!(out, " method=planar:{zone}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn transform(from: &str, to: &str, x: f64, y: f64, z: Option<f64>, expected: &str) {
        assert_eq!(transform_command(from, to, x, y, z).unwrap(), expected);
    }

    #[track_caller]
    fn measure(crs: &str, wkt: &str, expected: &str) {
        assert_eq!(measure_command(crs, wkt).unwrap(), expected);
    }

    #[track_caller]
    fn fails(result: Result<String>, expected: &str) {
        assert_eq!(result.unwrap_err().to_string(), expected);
    }

    #[test]
    fn transform_prints_x_y_and_z() {
        transform("EPSG:4490", "EPSG:4547", 114.3055, 30.5928, None, "529299.8603 3385869.4534");
        transform("4490", "4547", 114.3055, 30.5928, Some(21.5), "529299.8603 3385869.4534 21.5");
        transform("EPSG:4547", "EPSG:4490", 529299.8603, 3385869.4534, None, "114.305500000 30.592800000");
        transform("WGS84", "GCJ02", 114.3055, 30.5928, None, "114.310944888 30.590390564");
        transform("GCJ02", "BD09", 114.31094488843175, 30.590390564305725, None, "114.317512682 30.596099926");
        transform("CRS84", "EPSG:3857", 114.3055, 30.5928, None, "12724430.0549 3579978.6214");
    }

    #[test]
    fn measure_prints_key_value_pairs() {
        measure(
            "EPSG:4490",
            "POLYGON ((114 30,115 30,115 31,114 31,114 30))",
            "length_m=0.000 area_m2=10642455822.156 perimeter_m=413711.766 method=geodesic",
        );
        measure(
            "EPSG:4547",
            "LINESTRING Z (500000 3000000 10,500300 3000400 10,500300 3000400 22)",
            "length_m=500.000 area_m2=0.000 perimeter_m=0.000 length_3d_m=512.000 perimeter_3d_m=0.000 method=planar:EPSG:4547",
        );
        measure("EPSG:4490", "POINT (114 30)", "length_m=0.000 area_m2=0.000 perimeter_m=0.000 method=geodesic");
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        let unknown = "unknown CRS `EPSG:9999`; supported: EPSG:4490 (CGCS2000), EPSG:4326 (WGS 84), CRS84, \
EPSG:3857 (Web Mercator), EPSG:4491–4554 (CGCS2000 Gauss-Krüger zones: 4491–4501 6° with zone prefix, 4502–4512 6°, \
4513–4533 3° with zone prefix, 4534–4554 3°), GCJ02 (Amap/Tencent), BD09 (Baidu)";
        fails(transform_command("EPSG:9999", "EPSG:4490", 1.0, 2.0, None), unknown);
        fails(measure_command("EPSG:9999", "POINT (1 2)"), unknown);
        fails(
            transform_command("EPSG:4490", "EPSG:4547", 114.0, 95.0, None),
            "invalid geometry: latitude 95 at coordinate 0 is beyond ±90°",
        );
        fails(
            transform_command("EPSG:4490", "EPSG:4547", f64::NAN, 30.0, None),
            "invalid geometry: coordinate 0 is not a finite number (NaN)",
        );
        fails(
            transform_command("EPSG:4490", "EPSG:4547", 114.0, 30.0, Some(f64::NAN)),
            "invalid geometry: coordinate 0 is not a finite number (NaN)",
        );
        fails(
            measure_command("EPSG:4490", "POLYGON ((114 30,115 30,115 31,114 31))"),
            "invalid geometry: polygon ring 0 is not closed (first point (114 30) differs from last point (114 31))",
        );
        fails(
            measure_command("EPSG:4490", "POLYGON ((114 30,115 30,115 91,114 30))"),
            "invalid geometry: latitude 91 at coordinate 2 is beyond ±90°",
        );
        let e = measure_command("EPSG:4490", "POINT (1)").unwrap_err().to_string();
        assert!(e.starts_with("invalid geometry: malformed WKT: "), "{e}");
    }
}
