//! Finding a table's columns by their headers, one way for every reader and importer: the CSV
//! and XLSX readers (geometry from a WKT column or from longitude/latitude columns), the
//! gazetteer's batch geocoding (the address column a user names) and the desktop's import
//! (columns matched to a layer's fields by name or title). Headers typed by people carry a BOM,
//! stray spaces (full-width ones too) and any case, so matching ignores them; a column named
//! exactly as asked wins over one that only matches loosely.

use shikong_model::Crs;

/// Headers of a WKT geometry column.
pub const WKT_NAMES: &[&str] = &["wkt", "geometry", "geom", "the_geom", "几何", "wkt_geom"];
/// Headers of a longitude column.
pub const LON_NAMES: &[&str] = &["lon", "lng", "long", "longitude", "x", "经度"];
/// Headers of a latitude column.
pub const LAT_NAMES: &[&str] = &["lat", "latitude", "y", "纬度"];

/// The columns the server's batch geocoder appends to each row of a table (the gazetteer writes
/// them; the desktop's import reads them back and does not take them for the user's data).
pub const GEOCODER_COLUMNS: [&str; 13] = [
    "status",
    "score",
    "level",
    "province_code",
    "city_code",
    "county_code",
    "town_code",
    "village_code",
    "standard_address",
    "lon",
    "lat",
    "point_source",
    "reason",
];

/// A header as matched: without a byte-order mark, trimmed of (any Unicode) white space,
/// lower-case.
pub fn normalize(header: &str) -> String {
    header.trim_start_matches('\u{feff}').trim().to_lowercase()
}

/// Whether two headers name the same column ([`normalize`]d).
pub fn same(a: &str, b: &str) -> bool {
    a == b || normalize(a) == normalize(b)
}

/// The column `want` names: the header written exactly so, else the first that is the [`same`].
pub fn position<S: AsRef<str>>(headers: &[S], want: &str) -> Option<usize> {
    headers.iter().position(|h| h.as_ref() == want).or_else(|| {
        let want = normalize(want);
        headers.iter().position(|h| normalize(h.as_ref()) == want)
    })
}

/// The first column whose [`normalize`]d header is one of `aliases` (lower-case).
pub fn position_of_any<S: AsRef<str>>(headers: &[S], aliases: &[&str]) -> Option<usize> {
    headers.iter().position(|h| aliases.contains(&normalize(h.as_ref()).as_str()))
}

/// Where a table's geometry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryColumns {
    /// No geometry column: records without geometry.
    None,
    /// WKT text in this column.
    Wkt(usize),
    /// Longitude and latitude (or x and y) in these columns.
    LonLat { lon: usize, lat: usize },
}

impl GeometryColumns {
    /// Whether column `i` holds the geometry (and is not a property).
    pub fn holds(self, i: usize) -> bool {
        match self {
            GeometryColumns::None => false,
            GeometryColumns::Wkt(w) => w == i,
            GeometryColumns::LonLat { lon, lat } => lon == i || lat == i,
        }
    }
}

/// The geometry columns of a table: those named (`wkt`, `lon`, `lat`: a named column that is
/// missing is an error listing the headers), else recognised by [`WKT_NAMES`], [`LON_NAMES`]
/// and [`LAT_NAMES`]. The error is the message for the file.
pub fn geometry_columns<S: AsRef<str>>(
    headers: &[S],
    wkt: Option<&str>,
    lon: Option<&str>,
    lat: Option<&str>,
) -> Result<GeometryColumns, String> {
    let find = |explicit: Option<&str>, aliases: &[&str], what: &str| -> Result<Option<usize>, String> {
        match explicit {
            Some(want) => position(headers, want).map(Some).ok_or_else(|| {
                let all: Vec<&str> = headers.iter().map(AsRef::as_ref).collect();
                format!("no {what} column named `{want}` (columns: {})", all.join(", "))
            }),
            None => Ok(position_of_any(headers, aliases)),
        }
    };
    if let Some(i) = find(wkt, WKT_NAMES, "WKT")? {
        return Ok(GeometryColumns::Wkt(i));
    }
    let lon = find(lon, LON_NAMES, "longitude")?;
    let lat = find(lat, LAT_NAMES, "latitude")?;
    match (lon, lat) {
        (Some(lon), Some(lat)) => Ok(GeometryColumns::LonLat { lon, lat }),
        (None, None) => Ok(GeometryColumns::None),
        _ => Err("found a longitude or a latitude column but not both".into()),
    }
}

/// Which coordinate of a point from two columns is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Lon,
    Lat,
}

/// Checks a point read from longitude/latitude columns in `crs`: in a geographic CRS a value
/// off the globe is refused (Gauss-Krüger metres in `x`/`y` columns would otherwise land
/// thousands of kilometres away); the message names the value.
pub fn check_lon_lat(crs: Crs, lon: f64, lat: f64) -> Result<(), (Axis, String)> {
    if !crs.is_geographic() {
        return if lon.is_finite() && lat.is_finite() {
            Ok(())
        } else {
            let (axis, v) = if lon.is_finite() { (Axis::Lat, lat) } else { (Axis::Lon, lon) };
            Err((axis, format!("`{v}` is not a coordinate")))
        };
    }
    let hint = "projected coordinates (e.g. Gauss-Krüger metres) are not longitudes and latitudes";
    if !(-180.0..=180.0).contains(&lon) {
        return Err((Axis::Lon, format!("`{lon}` is not a longitude (-180 to 180); {hint}")));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err((Axis::Lat, format!("`{lat}` is not a latitude (-90 to 90); {hint}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_without_bom_spaces_or_case() {
        assert!(same("\u{feff} Lon ", "lon"));
        assert!(same("　经度　", "经度"), "full-width spaces");
        assert!(!same("经度", "纬度"));
        let h = ["名称", " 地址 ", "地址"];
        assert_eq!(position(&h, "地址"), Some(2), "the exact header wins");
        assert_eq!(position(&h, "名称 "), Some(0));
        assert_eq!(position(&h, "电话"), None);
        assert_eq!(position_of_any(&["ID", "Longitude"], LON_NAMES), Some(1));
    }

    #[test]
    fn geometry_columns_are_named_or_recognised() {
        let g = |h: &[&str]| geometry_columns(h, None, None, None);
        assert_eq!(g(&["名称", "经度", "纬度"]), Ok(GeometryColumns::LonLat { lon: 1, lat: 2 }));
        assert_eq!(g(&["X", "Y", "WKT"]), Ok(GeometryColumns::Wkt(2)), "WKT first");
        assert_eq!(g(&["名称"]), Ok(GeometryColumns::None));
        assert_eq!(g(&["名称", "lng"]), Err("found a longitude or a latitude column but not both".into()));
        assert_eq!(
            geometry_columns(&["a", "b"], Some("shape"), None, None),
            Err("no WKT column named `shape` (columns: a, b)".into())
        );
        assert_eq!(
            geometry_columns(&["东", "北"], None, Some("东"), Some("北")),
            Ok(GeometryColumns::LonLat { lon: 0, lat: 1 })
        );
    }

    #[test]
    fn points_off_the_globe_are_refused_in_geographic_crs_only() {
        assert_eq!(check_lon_lat(Crs::CGCS2000, 114.3, 30.5), Ok(()));
        let (axis, m) = check_lon_lat(Crs::CGCS2000, 38_512_345.6, 3_378_901.2).unwrap_err();
        assert_eq!(axis, Axis::Lon);
        assert!(m.starts_with("`38512345.6` is not a longitude (-180 to 180); projected"), "{m}");
        assert_eq!(check_lon_lat(Crs::CGCS2000, 114.0, 91.0).unwrap_err().0, Axis::Lat);
        assert_eq!(check_lon_lat(Crs::CGCS2000, f64::NAN, 30.0).unwrap_err().0, Axis::Lon);
        let gk = Crs::Epsg(4526);
        assert!(!gk.is_geographic());
        assert_eq!(check_lon_lat(gk, 38_512_345.6, 3_378_901.2), Ok(()));
    }
}
