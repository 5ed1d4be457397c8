//! CGCS2000 Gauss-Krüger zones: which zone a longitude falls in, and which EPSG code names it.
//!
//! Chinese large-scale maps are drawn in 3° zones (1:500–1:10,000) or 6° zones (1:25,000 and
//! smaller). EPSG registers each CGCS2000 zone twice: "with zone prefix", where the false easting
//! carries the zone number (`38 500 000 m` for zone 38), and "CM …E" without it. Users get this
//! wrong often, so the choice is made here from the longitude and the code is derived, never typed.
//!
//! | EPSG      | width | prefix | zones / central meridians |
//! |-----------|-------|--------|---------------------------|
//! | 4491–4501 | 6°    | yes    | zones 13–23 (CM 75°–135°E)|
//! | 4502–4512 | 6°    | no     | CM 75°, 81°, …, 135°E     |
//! | 4513–4533 | 3°    | yes    | zones 25–45 (CM 75°–135°E)|
//! | 4534–4554 | 3°    | no     | CM 75°, 78°, …, 135°E     |
//!
//! (Checked against the CRS names in PROJ 9.5's `proj.db`, e.g. EPSG:4526 "CGCS2000 / 3-degree
//! Gauss-Kruger zone 38", EPSG:4547 "CGCS2000 / 3-degree Gauss-Kruger CM 114E".)

use std::fmt;

use crate::error::{GeodesyError, Result};

/// 3° or 6° zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZoneWidth {
    Three,
    Six,
}

impl ZoneWidth {
    pub fn degrees(self) -> f64 {
        match self {
            ZoneWidth::Three => 3.0,
            ZoneWidth::Six => 6.0,
        }
    }

    /// The zone numbers EPSG registers for CGCS2000 (those covering China).
    fn zones(self) -> std::ops::RangeInclusive<u32> {
        match self {
            ZoneWidth::Three => 25..=45,
            ZoneWidth::Six => 13..=23,
        }
    }
}

/// One CGCS2000 Gauss-Krüger zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GkZone {
    pub width: ZoneWidth,
    /// The zone number: 25–45 for 3° zones, 13–23 for 6° zones.
    pub number: u32,
}

impl GkZone {
    /// The zone containing `lon` (degrees east). A 3° zone `n` spans `3n ± 1.5°`; a 6° zone `n`
    /// spans `6n − 6` to `6n` degrees. A longitude on a boundary belongs to the zone east of it.
    pub fn from_longitude(lon: f64, width: ZoneWidth) -> Result<GkZone> {
        if !lon.is_finite() {
            return Err(GeodesyError::NotFinite { what: "longitude", value: lon });
        }
        let n = match width {
            ZoneWidth::Three => ((lon + 1.5) / 3.0).floor(),
            ZoneWidth::Six => (lon / 6.0).floor() + 1.0,
        };
        let zones = width.zones();
        if n < f64::from(*zones.start()) || n > f64::from(*zones.end()) {
            let first = GkZone { width, number: *zones.start() };
            let last = GkZone { width, number: *zones.end() };
            return Err(GeodesyError::OutsideZones { lon, width: width.degrees(), first, last });
        }
        // In range, so the cast is exact.
        Ok(GkZone { width, number: n as u32 })
    }

    /// The zone an EPSG code names, and whether the code is the zone-prefixed variant.
    pub fn from_epsg(code: u32) -> Option<(GkZone, bool)> {
        let (width, prefixed, number) = match code {
            4491..=4501 => (ZoneWidth::Six, true, code - 4491 + 13),
            4502..=4512 => (ZoneWidth::Six, false, code - 4502 + 13),
            4513..=4533 => (ZoneWidth::Three, true, code - 4513 + 25),
            4534..=4554 => (ZoneWidth::Three, false, code - 4534 + 25),
            _ => return None,
        };
        Some((GkZone { width, number }, prefixed))
    }

    /// The EPSG code of this zone, with or without the zone number in the false easting.
    pub fn epsg(self, prefixed: bool) -> u32 {
        let offset = self.number - *self.width.zones().start();
        match (self.width, prefixed) {
            (ZoneWidth::Six, true) => 4491 + offset,
            (ZoneWidth::Six, false) => 4502 + offset,
            (ZoneWidth::Three, true) => 4513 + offset,
            (ZoneWidth::Three, false) => 4534 + offset,
        }
    }

    /// Central meridian, degrees east.
    pub fn central_meridian(self) -> f64 {
        match self.width {
            ZoneWidth::Three => 3.0 * f64::from(self.number),
            ZoneWidth::Six => 6.0 * f64::from(self.number) - 3.0,
        }
    }

    /// False easting in metres: 500 km, plus `number × 1 000 km` when prefixed.
    pub fn false_easting(self, prefixed: bool) -> f64 {
        500_000.0 + if prefixed { f64::from(self.number) * 1_000_000.0 } else { 0.0 }
    }
}

impl fmt::Display for GkZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = match self.width {
            ZoneWidth::Three => 3,
            ZoneWidth::Six => 6,
        };
        write!(f, "{w}° zone {} (CM {}°E)", self.number, self.central_meridian())
    }
}

/// The EPSG code of the CGCS2000 Gauss-Krüger zone for `lon` — what "choose the zone
/// automatically" means for a survey at that longitude.
pub fn gk_epsg_for_longitude(lon: f64, width: ZoneWidth, prefixed: bool) -> Result<u32> {
    Ok(GkZone::from_longitude(lon, width)?.epsg(prefixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(lon: f64, width: ZoneWidth, prefixed: bool, expected: Option<u32>) {
        assert_eq!(gk_epsg_for_longitude(lon, width, prefixed).ok(), expected, "{lon} {width:?} {prefixed}");
    }

    #[test]
    fn zone_choice_from_longitude() {
        use ZoneWidth::{Six, Three};
        check(114.3055, Three, false, Some(4547)); // Wuhan: CM 114°E
        check(114.3055, Three, true, Some(4526)); // zone 38
        check(114.3055, Six, false, Some(4509)); // CM 117°E (zone 20 spans 114–120)
        check(114.3055, Six, true, Some(4498)); // zone 20
        check(113.9, Six, false, Some(4508)); // CM 111°E
        check(116.4, Three, false, Some(4548)); // Beijing: CM 117°E
        check(121.47, Three, true, Some(4528)); // Shanghai: zone 40
        check(112.5, Three, false, Some(4547)); // boundary goes east
        check(112.4999, Three, false, Some(4546));
        check(73.5, Three, false, Some(4534)); // westernmost 3° zone
        check(136.4999, Three, true, Some(4533));
        check(72.0, Six, true, Some(4491)); // zone 13 starts at 72°E
        check(137.9, Six, false, Some(4512));
        check(73.4, Three, false, None);
        check(136.5, Three, false, None);
        check(71.9, Six, false, None);
        check(138.0, Six, false, None);
        check(f64::NAN, Six, false, None);
    }

    #[test]
    fn epsg_codes_round_trip() {
        for code in 4491..=4554 {
            let (zone, prefixed) = GkZone::from_epsg(code).unwrap();
            assert_eq!(zone.epsg(prefixed), code);
            let cm = zone.central_meridian();
            assert!((75.0..=135.0).contains(&cm), "{code}: {cm}");
            assert_eq!(GkZone::from_longitude(cm, zone.width).unwrap(), zone);
        }
        assert_eq!(GkZone::from_epsg(4490), None);
        assert_eq!(GkZone::from_epsg(4555), None);
    }

    #[test]
    fn central_meridians_and_false_eastings() {
        let (z, p) = GkZone::from_epsg(4526).unwrap();
        assert_eq!((z.central_meridian(), z.false_easting(p)), (114.0, 38_500_000.0));
        let (z, p) = GkZone::from_epsg(4547).unwrap();
        assert_eq!((z.central_meridian(), z.false_easting(p)), (114.0, 500_000.0));
        let (z, p) = GkZone::from_epsg(4491).unwrap();
        assert_eq!((z.central_meridian(), z.false_easting(p)), (75.0, 13_500_000.0));
        assert_eq!(z.to_string(), "6° zone 13 (CM 75°E)");
    }

    #[test]
    fn outside_error_names_the_range() {
        let e = gk_epsg_for_longitude(10.0, ZoneWidth::Three, false).unwrap_err().to_string();
        assert_eq!(
            e,
            "longitude 10 is outside the CGCS2000 3° Gauss-Krüger zones (3° zone 25 (CM 75°E) to 3° zone 45 (CM 135°E))"
        );
    }
}
