//! Coordinate reference system identifiers.
//!
//! Every geometry in shikong is read and written *in* a CRS; this module names them. It parses the
//! spellings users and standards use (`EPSG:4490`, `4490`, OGC URIs and URNs, `CRS84`) and the
//! pseudo-codes `GCJ02` / `BD09` for the offset frames of Chinese commercial basemaps. The
//! transformations themselves live in the `shikong-crs` crate; this crate only names and classifies.

use std::fmt;
use std::str::FromStr;

use crate::error::ModelError;

/// A coordinate reference system shikong knows how to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Crs {
    /// An EPSG code (4490 CGCS2000, 4326 WGS 84, 3857, 4491–4554 CGCS2000 Gauss-Krüger zones).
    Epsg(u32),
    /// OGC's CRS84: WGS 84 with longitude first (what GeoJSON and OGC APIs mean by default).
    Crs84,
    /// GCJ-02, the offset frame of Amap/Tencent basemaps (longitude, latitude).
    Gcj02,
    /// BD-09, Baidu's frame, offset again from GCJ-02 (longitude, latitude).
    Bd09,
}

impl Crs {
    /// The store's default frame, CGCS2000 geographic.
    pub const CGCS2000: Crs = Crs::Epsg(4490);
    pub const WGS84: Crs = Crs::Epsg(4326);
    pub const WEB_MERCATOR: Crs = Crs::Epsg(3857);

    /// Whether coordinates are longitude/latitude degrees (as opposed to metres).
    pub fn is_geographic(self) -> bool {
        matches!(self, Crs::Crs84 | Crs::Gcj02 | Crs::Bd09 | Crs::Epsg(4326 | 4490))
    }

    /// Whether shikong can transform this CRS (known codes only; everything else is refused at parse).
    pub fn is_supported_epsg(code: u32) -> bool {
        matches!(code, 4326 | 4490 | 3857 | 4491..=4554)
    }

    /// The EPSG code, for the CRSs that have one. GCJ-02 and BD-09 are not registered anywhere.
    pub fn epsg(self) -> Option<u32> {
        match self {
            Crs::Epsg(c) => Some(c),
            Crs::Crs84 => Some(4326),
            Crs::Gcj02 | Crs::Bd09 => None,
        }
    }

    /// The OGC URI (`http://www.opengis.net/def/crs/EPSG/0/4490`), or shikong's own URI for the
    /// pseudo-codes.
    pub fn uri(self) -> String {
        match self {
            Crs::Epsg(c) => format!("http://www.opengis.net/def/crs/EPSG/0/{c}"),
            Crs::Crs84 => "http://www.opengis.net/def/crs/OGC/1.3/CRS84".to_owned(),
            Crs::Gcj02 => "urn:shikong:def:crs:GCJ02".to_owned(),
            Crs::Bd09 => "urn:shikong:def:crs:BD09".to_owned(),
        }
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crs::Epsg(c) => write!(f, "EPSG:{c}"),
            Crs::Crs84 => f.write_str("CRS84"),
            Crs::Gcj02 => f.write_str("GCJ02"),
            Crs::Bd09 => f.write_str("BD09"),
        }
    }
}

impl FromStr for Crs {
    type Err = ModelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let upper = s.to_ascii_uppercase();
        let unknown = || ModelError::UnknownCrs(input.to_owned());
        let simple = upper.replace(['-', '_'], "");
        match simple.as_str() {
            "GCJ02" | "URN:SHIKONG:DEF:CRS:GCJ02" => return Ok(Crs::Gcj02),
            "BD09" | "BD09LL" | "URN:SHIKONG:DEF:CRS:BD09" => return Ok(Crs::Bd09),
            "CRS84"
            | "OGC:CRS84"
            | "HTTP://WWW.OPENGIS.NET/DEF/CRS/OGC/1.3/CRS84"
            | "URN:OGC:DEF:CRS:OGC:1.3:CRS84" => {
                return Ok(Crs::Crs84);
            }
            "WGS84" => return Ok(Crs::WGS84),
            "CGCS2000" => return Ok(Crs::CGCS2000),
            _ => {}
        }
        let code = if let Some(rest) = upper.strip_prefix("EPSG:") {
            rest
        } else if let Some(rest) = upper.strip_prefix("HTTP://WWW.OPENGIS.NET/DEF/CRS/EPSG/") {
            rest.rsplit('/').next().unwrap_or("")
        } else if let Some(rest) = upper.strip_prefix("URN:OGC:DEF:CRS:EPSG:") {
            rest.rsplit(':').next().unwrap_or("")
        } else {
            &upper
        };
        let code: u32 = code.parse().map_err(|_| unknown())?;
        if Crs::is_supported_epsg(code) { Ok(Crs::Epsg(code)) } else { Err(unknown()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Option<Crs>) {
        assert_eq!(input.parse::<Crs>().ok(), expected, "{input}");
    }

    #[test]
    fn parses_the_spellings_users_and_standards_use() {
        check("EPSG:4490", Some(Crs::CGCS2000));
        check("epsg:4326", Some(Crs::WGS84));
        check("4547", Some(Crs::Epsg(4547)));
        check("http://www.opengis.net/def/crs/EPSG/0/4490", Some(Crs::CGCS2000));
        check("urn:ogc:def:crs:EPSG::4549", Some(Crs::Epsg(4549)));
        check("http://www.opengis.net/def/crs/OGC/1.3/CRS84", Some(Crs::Crs84));
        check("GCJ02", Some(Crs::Gcj02));
        check("gcj-02", Some(Crs::Gcj02));
        check("BD09", Some(Crs::Bd09));
        check("EPSG:9999", None);
        check("EPSG:", None);
        check("火星坐标", None);
    }

    #[test]
    fn uri_round_trips() {
        for crs in [Crs::CGCS2000, Crs::Epsg(4547), Crs::Crs84, Crs::Gcj02, Crs::Bd09] {
            assert_eq!(crs.uri().parse::<Crs>().unwrap(), crs);
        }
    }
}
