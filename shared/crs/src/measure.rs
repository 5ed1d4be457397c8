//! Measuring a geometry given in any supported CRS, choosing the right method for it.
//!
//! - Geographic CRSs (EPSG:4490, EPSG:4326, CRS84): geodesic on the CGCS2000 ellipsoid.
//! - GCJ02, BD09: converted to WGS 84 first, then geodesic (their offsets distort distances by
//!   a few parts per million; the conversion removes even that).
//! - EPSG:3857: unprojected to WGS 84 first, then geodesic — Web Mercator's scale error (about
//!   +15 % in length at 30°N) makes a planar measurement in it meaningless.
//! - Gauss-Krüger zones: planar, because that is the number a survey drawn in the zone reports
//!   (the zone's scale error included; see `shikong_geodesy::measure`).

use shikong_geodesy::{Measurement, measure_geodesic, measure_planar};
use shikong_model::{Crs, Geometry};

use crate::codes::{check_supported, gk_zone};
use crate::error::Result;
use crate::transform::transform_geometry;

/// How a [`Measured`] value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// On the CGCS2000 ellipsoid.
    Geodesic,
    /// In the plane of this Gauss-Krüger zone.
    Planar(Crs),
}

/// A measurement and the method behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub measurement: Measurement,
    pub method: Method,
}

/// Measures `g`, given in `crs`, with the method that suits the CRS (see the module docs).
pub fn measure(g: &Geometry, crs: Crs) -> Result<Measured> {
    check_supported(crs)?;
    match crs {
        Crs::Epsg(4326 | 4490) | Crs::Crs84 => {
            Ok(Measured { measurement: measure_geodesic(g)?, method: Method::Geodesic })
        }
        Crs::Epsg(4491..=4554) => Ok(Measured { measurement: measure_planar(g)?, method: Method::Planar(crs) }),
        _ => {
            let wgs84 = transform_geometry(g, crs, Crs::WGS84)?;
            Ok(Measured { measurement: measure_geodesic(&wgs84)?, method: Method::Geodesic })
        }
    }
}

/// Measures `g`, given in `crs`, in the plane of the Gauss-Krüger zone `zone` (EPSG:4491–4554),
/// e.g. the zone [`crate::gk_zone_for`] picked.
pub fn measure_in_zone(g: &Geometry, crs: Crs, zone: Crs) -> Result<Measurement> {
    gk_zone(zone)?;
    let projected = transform_geometry(g, crs, zone)?;
    Ok(measure_planar(&projected)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CrsError;

    fn wkt(s: &str) -> Geometry {
        shikong_model::wkt::parse(s).unwrap()
    }

    #[track_caller]
    fn close(got: f64, expected: f64, rel: f64) {
        assert!(((got - expected) / expected).abs() <= rel, "got {got}, expected {expected} (±{rel} relative)");
    }

    #[test]
    fn every_crs_gives_the_same_area_within_its_method() {
        let cell = wkt("POLYGON ((114.3 30.5,114.31 30.5,114.31 30.51,114.3 30.51,114.3 30.5))");
        let geodesic = measure(&cell, Crs::CGCS2000).unwrap();
        assert_eq!(geodesic.method, Method::Geodesic);
        // GeographicLib: 1,064,199.2378878593 m² (committed reference table).
        close(geodesic.measurement.area_m2, 1_064_199.237_887_859_3, 1e-9);
        for crs in [Crs::WEB_MERCATOR, Crs::Gcj02, Crs::Bd09, Crs::Epsg(4547)] {
            let there = transform_geometry(&cell, Crs::CGCS2000, crs).unwrap();
            let m = measure(&there, crs).unwrap();
            // Planar in the zone: 0.3° from the central meridian the scale error is ~1e-5.
            close(m.measurement.area_m2, geodesic.measurement.area_m2, 1e-4);
        }
        let zone = measure_in_zone(&cell, Crs::CGCS2000, Crs::Epsg(4526)).unwrap();
        close(zone.area_m2, geodesic.measurement.area_m2, 1e-4);
        assert!(matches!(measure_in_zone(&cell, Crs::CGCS2000, Crs::WGS84), Err(CrsError::NotAZone(_))));
    }

    #[test]
    fn planar_in_a_zone_is_reported_as_such() {
        let m = measure(&wkt("LINESTRING (500000 3000000,500300 3000400)"), Crs::Epsg(4547)).unwrap();
        assert_eq!(m.method, Method::Planar(Crs::Epsg(4547)));
        assert_eq!(m.measurement.length_m, 500.0);
    }
}
