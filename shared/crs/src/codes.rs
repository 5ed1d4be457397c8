//! Which CRS codes shikong accepts, their authority axis order, and the automatic choice of a
//! Gauss-Krüger zone for a geometry.
//!
//! Inside shikong every coordinate is in "traditional GIS order": x = longitude or easting,
//! y = latitude or northing (PROJ's `normalize_for_visualization`). The EPSG definitions say
//! otherwise for most of our codes (EPSG:4326/4490 are latitude, longitude; EPSG:4491–4554 are
//! northing, easting), and some protocols (WFS 2.0, OGC API – Features with a `crs` parameter)
//! require the authority order on the wire. [`axis_order`] and [`swap_xy`] are for that boundary
//! and nowhere else.

use shikong_geodesy::{GkZone, ZoneWidth};
use shikong_model::{Coord, Crs, Geometry};

use crate::error::{CrsError, Result};
use crate::transform::with_transform;

/// Parses a CRS as users and standards spell it (`EPSG:4547`, `4547`, OGC URIs/URNs, `CRS84`,
/// `GCJ02`, `BD09`), refusing anything unsupported with the list of what is.
pub fn parse_crs(input: &str) -> Result<Crs> {
    let crs: Crs = input.parse().map_err(|_| CrsError::UnknownCrs { input: input.to_owned() })?;
    check_supported(crs)?;
    Ok(crs)
}

/// Refuses a `Crs` built directly (not parsed) with an EPSG code shikong does not handle.
pub fn check_supported(crs: Crs) -> Result<()> {
    match crs {
        Crs::Epsg(code) if !Crs::is_supported_epsg(code) => Err(CrsError::UnknownCrs { input: crs.to_string() }),
        _ => Ok(()),
    }
}

/// The order of the two horizontal axes in a CRS's authoritative definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisOrder {
    /// Longitude/easting first: EPSG:3857, CRS84, and the GCJ02/BD09 pseudo-codes (which have no
    /// authority; the basemap APIs use longitude first).
    XY,
    /// Latitude/northing first: EPSG:4326, EPSG:4490 and the Gauss-Krüger zones EPSG:4491–4554.
    YX,
}

/// The authority axis order of `crs` (what a client asking for "EPSG order" expects).
pub fn axis_order(crs: Crs) -> AxisOrder {
    match crs {
        Crs::Epsg(4326 | 4490 | 4491..=4554) => AxisOrder::YX,
        _ => AxisOrder::XY,
    }
}

/// The geometry with x and y exchanged (Z untouched): converts between shikong's x,y order and a
/// y,x authority order, in either direction.
pub fn swap_xy(g: &Geometry) -> Geometry {
    let swapped: std::result::Result<Geometry, std::convert::Infallible> =
        g.try_map_coords(|c| Ok(Coord { x: c.y, y: c.x, z: c.z }));
    match swapped {
        Ok(g) => g,
        Err(never) => match never {},
    }
}

/// The Gauss-Krüger zone CRS to measure or map `g` (given in `crs`) in: the zone holding the
/// centre of its bounding box, 3° or 6°, with or without the zone prefix in the easting.
pub fn gk_zone_for(g: &Geometry, crs: Crs, width: ZoneWidth, prefixed: bool) -> Result<Crs> {
    let b = g.bbox().ok_or(shikong_model::GeometryError::Empty("geometry"))?;
    let centre = Coord::xy((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0);
    let lon = if crs == Crs::CGCS2000 || crs == Crs::WGS84 || crs == Crs::Crs84 {
        centre.x
    } else {
        with_transform(crs, Crs::CGCS2000, |t| t.convert(centre))??.x
    };
    Ok(Crs::Epsg(GkZone::from_longitude(lon, width)?.epsg(prefixed)))
}

/// The zone of a Gauss-Krüger CRS, or an error naming the CRS.
pub fn gk_zone(crs: Crs) -> Result<GkZone> {
    match crs {
        Crs::Epsg(code) => GkZone::from_epsg(code).map(|(z, _)| z).ok_or(CrsError::NotAZone(crs)),
        _ => Err(CrsError::NotAZone(crs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Option<Crs>) {
        assert_eq!(parse_crs(input).ok(), expected, "{input}");
    }

    #[test]
    fn parsing_accepts_supported_codes_only() {
        check("EPSG:4490", Some(Crs::CGCS2000));
        check("4547", Some(Crs::Epsg(4547)));
        check("EPSG:4491", Some(Crs::Epsg(4491)));
        check("EPSG:4554", Some(Crs::Epsg(4554)));
        check("gcj02", Some(Crs::Gcj02));
        check("BD09", Some(Crs::Bd09));
        check("CRS84", Some(Crs::Crs84));
        check("EPSG:4555", None);
        check("EPSG:2000", None);
        check("火星", None);
        let e = parse_crs("EPSG:32650").unwrap_err().to_string();
        assert!(e.starts_with("unknown CRS `EPSG:32650`; supported: EPSG:4490 (CGCS2000)"), "{e}");
        assert!(e.contains("GCJ02") && e.contains("4534–4554"), "{e}");
        assert!(check_supported(Crs::Epsg(32650)).is_err());
        assert!(check_supported(Crs::Epsg(4547)).is_ok());
    }

    #[test]
    fn authority_axis_order() {
        assert_eq!(axis_order(Crs::CGCS2000), AxisOrder::YX);
        assert_eq!(axis_order(Crs::WGS84), AxisOrder::YX);
        assert_eq!(axis_order(Crs::Epsg(4547)), AxisOrder::YX);
        assert_eq!(axis_order(Crs::Epsg(4491)), AxisOrder::YX);
        assert_eq!(axis_order(Crs::WEB_MERCATOR), AxisOrder::XY);
        assert_eq!(axis_order(Crs::Crs84), AxisOrder::XY);
        assert_eq!(axis_order(Crs::Gcj02), AxisOrder::XY);
        let g = Geometry::LineString(vec![Coord::xyz(114.0, 30.0, 5.0), Coord::xyz(115.0, 31.0, 6.0)]);
        let s = swap_xy(&g);
        assert_eq!(s, Geometry::LineString(vec![Coord::xyz(30.0, 114.0, 5.0), Coord::xyz(31.0, 115.0, 6.0)]));
        assert_eq!(swap_xy(&s), g);
    }

    #[test]
    fn zone_choice_for_a_geometry() {
        let wuhan = Geometry::Point(Coord::xy(114.3055, 30.5928));
        assert_eq!(gk_zone_for(&wuhan, Crs::CGCS2000, ZoneWidth::Three, false).unwrap(), Crs::Epsg(4547));
        assert_eq!(gk_zone_for(&wuhan, Crs::CGCS2000, ZoneWidth::Three, true).unwrap(), Crs::Epsg(4526));
        assert_eq!(gk_zone_for(&wuhan, Crs::CGCS2000, ZoneWidth::Six, false).unwrap(), Crs::Epsg(4509));
        // From Web Mercator (the centre is unprojected first).
        let merc = Geometry::Point(Coord::xy(12_724_430.054_870_531, 3_579_978.621_363_892));
        assert_eq!(gk_zone_for(&merc, Crs::WEB_MERCATOR, ZoneWidth::Three, false).unwrap(), Crs::Epsg(4547));
        let paris = Geometry::Point(Coord::xy(2.35, 48.85));
        assert!(gk_zone_for(&paris, Crs::CGCS2000, ZoneWidth::Three, false).is_err());
        assert_eq!(gk_zone(Crs::Epsg(4526)).unwrap().central_meridian(), 114.0);
        assert_eq!(gk_zone(Crs::CGCS2000), Err(CrsError::NotAZone(Crs::CGCS2000)));
    }
}
