//! GCJ-02 and BD-09, the offset frames of Chinese commercial basemaps.
//!
//! Amap and Tencent draw their tiles in GCJ-02 ("火星坐标"), an obfuscated WGS 84 shifted by a
//! smooth, non-invertible-in-closed-form function worth a few hundred metres; Baidu adds its own
//! BD-09 twist on top. Phones and surveys give WGS 84 / CGCS2000, so every overlay on such a basemap
//! and every point picked on it must go through these functions.
//!
//! The forward functions reproduce the widely published reference algorithm digit for digit (the
//! PyPI `coord-convert` and `prcoords`, npm `gcoord` and the `coordtransform` crate all agree to
//! the last digit; `shikong-crs`'s committed reference table checks us against `coord-convert`):
//! Krasovsky constants `a = 6378245`, `ee = 0.00669342162296594323`, identity outside
//! [`CHINA_BOX`]. The inverses have no closed form; we iterate the forward function (a fixed-point
//! iteration that contracts because the offset varies slowly) until the forward image of our answer
//! is within [`INVERSE_TOLERANCE_DEG`] of the input.
//!
//! CGCS2000 and WGS 84 differ by centimetres, far below the noise of GCJ-02 itself, so callers pass
//! either as "WGS 84" here.

/// The box outside which GCJ-02 is the identity: longitude 72.004–137.8347°E, latitude
/// 0.8293–55.8271°N, edges included. Libraries disagree on this box (some use a polygon of China's
/// border, some a coarser box); this is the one of the most common implementations (`coord-convert`,
/// `coordtransform`), so points near borders agree with what those libraries — and most data
/// already converted with them — produce.
pub const CHINA_BOX: ChinaBox = ChinaBox { min_lon: 72.004, max_lon: 137.8347, min_lat: 0.8293, max_lat: 55.8271 };

/// The inverses stop when the forward image of the answer is this close to the input (degrees,
/// per axis; about 1 µm on the ground).
pub const INVERSE_TOLERANCE_DEG: f64 = 1e-11;

/// More than enough: the iteration gains about two digits per step.
const MAX_ITERATIONS: usize = 30;

/// A longitude/latitude box, edges included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChinaBox {
    pub min_lon: f64,
    pub max_lon: f64,
    pub min_lat: f64,
    pub max_lat: f64,
}

impl ChinaBox {
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.min_lon..=self.max_lon).contains(&lon) && (self.min_lat..=self.max_lat).contains(&lat)
    }
}

const KRASOVSKY_A: f64 = 6378245.0;
/// The published `0.00669342162296594323`, to the digits an f64 holds.
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
const PI: f64 = std::f64::consts::PI;
/// BD-09's own constant, `π · 3000 / 180` (written this way in the reference algorithm).
const X_PI: f64 = PI * 3000.0 / 180.0;

// The two polynomials below are kept in the exact operation order of the reference algorithm so
// that results agree to the last bit, not merely within tolerance.
fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

/// WGS 84 (or CGCS2000) longitude/latitude → GCJ-02. Identity outside [`CHINA_BOX`]; a NaN coordinate stays NaN.
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if !CHINA_BOX.contains(lon, lat) {
        return (lon, lat);
    }
    let d_lat = transform_lat(lon - 105.0, lat - 35.0);
    let d_lon = transform_lon(lon - 105.0, lat - 35.0);
    let rad_lat = lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat = (d_lat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = (d_lon * 180.0) / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (lon + d_lon, lat + d_lat)
}

/// GCJ-02 → BD-09 (closed form). Applied everywhere, inside China's box or not, as the reference
/// implementations do: only the GCJ-02 step is limited to the box.
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// The published closed-form approximate inverse of [`gcj02_to_bd09`], good to about 1e-6°; used
/// as the starting point of the exact inverse.
fn bd09_to_gcj02_approx(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon - 0.0065;
    let y = lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    (z * theta.cos(), z * theta.sin())
}

/// Solves `forward(p) = target` by the fixed-point iteration `p ← p − (forward(p) − target)`.
fn invert(forward: impl Fn(f64, f64) -> (f64, f64), target: (f64, f64), start: (f64, f64)) -> (f64, f64) {
    let mut p = start;
    for _ in 0..MAX_ITERATIONS {
        let (fx, fy) = forward(p.0, p.1);
        let (dx, dy) = (fx - target.0, fy - target.1);
        // Written so that NaN also stops the loop instead of iterating to the cap.
        if !(dx.abs() > INVERSE_TOLERANCE_DEG || dy.abs() > INVERSE_TOLERANCE_DEG) {
            break;
        }
        p = (p.0 - dx, p.1 - dy);
    }
    p
}

/// GCJ-02 → WGS 84 (iterative; `wgs84_to_gcj02` of the result is within [`INVERSE_TOLERANCE_DEG`]
/// of the input). Identity where the forward function is.
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    invert(wgs84_to_gcj02, (lon, lat), (lon, lat))
}

/// BD-09 → GCJ-02 (iterative, starting from the published approximate inverse).
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    invert(gcj02_to_bd09, (lon, lat), bd09_to_gcj02_approx(lon, lat))
}

/// WGS 84 → BD-09 (through GCJ-02).
pub fn wgs84_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = wgs84_to_gcj02(lon, lat);
    gcj02_to_bd09(x, y)
}

/// BD-09 → WGS 84 (through GCJ-02).
pub fn bd09_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = bd09_to_gcj02(lon, lat);
    gcj02_to_wgs84(x, y)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[track_caller]
    fn check(f: fn(f64, f64) -> (f64, f64), input: (f64, f64), expected: (f64, f64)) {
        let got = f(input.0, input.1);
        assert!(
            (got.0 - expected.0).abs() < 1e-12 && (got.1 - expected.1).abs() < 1e-12,
            "{input:?}: got {got:?}, expected {expected:?}"
        );
    }

    #[test]
    fn forward_matches_the_reference_implementations() {
        // Values from coord-convert / prcoords / gcoord / coordtransform (which agree to the last digit).
        check(wgs84_to_gcj02, (114.3055, 30.5928), (114.31094488843175, 30.590390564305725));
        check(gcj02_to_bd09, (114.31094488843175, 30.590390564305725), (114.3175126818268, 30.5960999257862));
        check(wgs84_to_bd09, (114.3055, 30.5928), (114.3175126818268, 30.5960999257862));
    }

    #[test]
    fn identity_outside_the_china_box() {
        check(wgs84_to_gcj02, (2.3522, 48.8566), (2.3522, 48.8566));
        check(wgs84_to_gcj02, (72.0, 30.0), (72.0, 30.0));
        check(wgs84_to_gcj02, (120.0, 0.8), (120.0, 0.8));
        check(gcj02_to_wgs84, (139.69, 35.69), (139.69, 35.69));
        assert!(CHINA_BOX.contains(72.004, 0.8293) && CHINA_BOX.contains(137.8347, 55.8271));
        assert!(!CHINA_BOX.contains(137.8348, 30.0));
    }

    #[test]
    fn inverses_of_known_points() {
        check(gcj02_to_wgs84, (114.31094488843175, 30.590390564305725), (114.3055, 30.5928));
        check(bd09_to_gcj02, (114.3175126818268, 30.5960999257862), (114.31094488843175, 30.590390564305725));
        check(bd09_to_wgs84, (114.3175126818268, 30.5960999257862), (114.3055, 30.5928));
    }

    #[test]
    fn nan_stays_nan() {
        // NaN fails the box test, so the point passes through unchanged (and the loop ends).
        assert!(gcj02_to_wgs84(f64::NAN, 30.0).0.is_nan());
        assert!(wgs84_to_gcj02(114.0, f64::NAN).1.is_nan());
        // BD-09 mixes both axes: both come out NaN.
        let (x, y) = bd09_to_wgs84(114.0, f64::NAN);
        assert!(x.is_nan() && y.is_nan());
    }

    proptest! {
        #[test]
        fn round_trips_within_1e_7_degrees(lon in 73.0f64..135.0, lat in 3.0f64..53.5) {
            let (gx, gy) = wgs84_to_gcj02(lon, lat);
            let (wx, wy) = gcj02_to_wgs84(gx, gy);
            prop_assert!((wx - lon).abs() < 1e-7 && (wy - lat).abs() < 1e-7, "{lon} {lat} -> {wx} {wy}");
            let (bx, by) = wgs84_to_bd09(lon, lat);
            let (wx, wy) = bd09_to_wgs84(bx, by);
            prop_assert!((wx - lon).abs() < 1e-7 && (wy - lat).abs() < 1e-7, "{lon} {lat} -> {wx} {wy}");
        }

        #[test]
        fn the_offset_is_hundreds_of_metres_not_more(lon in 73.0f64..135.0, lat in 3.0f64..53.5) {
            let (gx, gy) = wgs84_to_gcj02(lon, lat);
            // 0.01° is about 1 km: GCJ-02 never moves a point that far.
            prop_assert!((gx - lon).abs() < 0.01 && (gy - lat).abs() < 0.01);
        }
    }
}
