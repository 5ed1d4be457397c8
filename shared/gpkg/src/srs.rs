//! Spatial reference systems as GeoPackage records them (`gpkg_spatial_ref_sys`).
//!
//! GDAL and QGIS identify a GeoPackage SRS by `organization`/`organization_coordsys_id` first, so
//! the EPSG code is what matters; the WKT is there for readers without an EPSG database.

use rusqlite::{Connection, OptionalExtension, params};

use crate::Result;

/// One row of `gpkg_spatial_ref_sys`.
#[derive(Debug, Clone, PartialEq)]
pub struct SrsDef {
    pub srs_id: i32,
    pub name: String,
    pub organization: String,
    pub organization_id: i32,
    pub definition: String,
    pub description: String,
}

const CGCS2000_GEOGCS: &str = r#"GEOGCS["China Geodetic Coordinate System 2000",DATUM["China_2000",SPHEROID["CGCS2000",6378137,298.257222101,AUTHORITY["EPSG","1024"]],AUTHORITY["EPSG","1043"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4490"]]"#;
const WGS84_GEOGCS: &str = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]"#;

pub(crate) fn undefined_cartesian() -> SrsDef {
    SrsDef {
        srs_id: -1,
        name: "Undefined cartesian SRS".into(),
        organization: "NONE".into(),
        organization_id: -1,
        definition: "undefined".into(),
        description: "undefined cartesian coordinate reference system".into(),
    }
}

pub(crate) fn undefined_geographic() -> SrsDef {
    SrsDef {
        srs_id: 0,
        name: "Undefined geographic SRS".into(),
        organization: "NONE".into(),
        organization_id: 0,
        definition: "undefined".into(),
        description: "undefined geographic coordinate reference system".into(),
    }
}

fn epsg(code: i32, name: String, definition: String) -> SrsDef {
    SrsDef {
        srs_id: code,
        description: name.clone(),
        name,
        organization: "EPSG".into(),
        organization_id: code,
        definition,
    }
}

fn gauss_kruger(code: i32, name: String, central_meridian: i32, false_easting: f64) -> SrsDef {
    let wkt = format!(
        r#"PROJCS["{name}",{CGCS2000_GEOGCS},PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",{central_meridian}],PARAMETER["scale_factor",1],PARAMETER["false_easting",{false_easting}],PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Northing",NORTH],AXIS["Easting",EAST],AUTHORITY["EPSG","{code}"]]"#
    );
    epsg(code, name, wkt)
}

/// The definition of an EPSG code shikong supports (4326, 4490, 3857 and the CGCS2000
/// Gauss-Krüger zones 4491–4554), or `None`.
pub fn srs_for_epsg(code: i32) -> Option<SrsDef> {
    Some(match code {
        4326 => epsg(4326, "WGS 84".into(), WGS84_GEOGCS.into()),
        4490 => epsg(4490, "China Geodetic Coordinate System 2000".into(), CGCS2000_GEOGCS.into()),
        3857 => epsg(
            3857,
            "WGS 84 / Pseudo-Mercator".into(),
            format!(
                r#"PROJCS["WGS 84 / Pseudo-Mercator",{WGS84_GEOGCS},PROJECTION["Mercator_1SP"],PARAMETER["central_meridian",0],PARAMETER["scale_factor",1],PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],EXTENSION["PROJ4","+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs"],AUTHORITY["EPSG","3857"]]"#
            ),
        ),
        // 6° zones 13–23 with the zone number prefixed to the easting.
        4491..=4501 => {
            let zone = code - 4491 + 13;
            gauss_kruger(
                code,
                format!("CGCS2000 / Gauss-Kruger zone {zone}"),
                zone * 6 - 3,
                f64::from(zone) * 1e6 + 5e5,
            )
        }
        // 6° zones by central meridian 75°E–135°E, no prefix.
        4502..=4512 => {
            let cm = 75 + (code - 4502) * 6;
            gauss_kruger(code, format!("CGCS2000 / Gauss-Kruger CM {cm}E"), cm, 5e5)
        }
        // 3° zones 25–45 with prefix.
        4513..=4533 => {
            let zone = code - 4513 + 25;
            gauss_kruger(
                code,
                format!("CGCS2000 / 3-degree Gauss-Kruger zone {zone}"),
                zone * 3,
                f64::from(zone) * 1e6 + 5e5,
            )
        }
        // 3° zones by central meridian 75°E–135°E, no prefix.
        4534..=4554 => {
            let cm = 75 + (code - 4534) * 3;
            gauss_kruger(code, format!("CGCS2000 / 3-degree Gauss-Kruger CM {cm}E"), cm, 5e5)
        }
        _ => return None,
    })
}

/// Inserts `srs` unless a row with its id exists.
pub fn ensure_srs(conn: &Connection, srs: &SrsDef) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row("SELECT 1 FROM gpkg_spatial_ref_sys WHERE srs_id = ?1", [srs.srs_id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        conn.execute(
            "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, organization_coordsys_id, definition, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![srs.name, srs.srs_id, srs.organization, srs.organization_id, srs.definition, srs.description],
        )?;
    }
    Ok(())
}
