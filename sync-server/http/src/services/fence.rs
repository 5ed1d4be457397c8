//! What area a proxied request asks for, and whether a fenced key may have it (pure, no I/O).
//!
//! A key's fence (服务围栏) is a polygon in CGCS2000 lon/lat. A request is judged by the area it
//! names: a WMS `GetMap`/`GetFeatureInfo` or WFS `GetFeature` `BBOX` (with its CRS and axis
//! order), an ArcGIS `export` `bbox`, an OGC API `items?bbox=`, or a tile — WMTS KVP
//! `TileMatrixSet`/`TileMatrix`/`TileRow`/`TileCol`, WMTS REST and OGC API – Tiles
//! `…/{tms}/{z}/{row}/{col}`, XYZ `{z}/{x}/{y}` — on the grids the platform computes
//! (WebMercatorQuad alias GoogleMapsCompatible, CGCS2000Quad). Metadata requests
//! (capabilities, landing pages, `?f=json`) name no area and pass. A data request whose area
//! cannot be computed (another grid or CRS, a WFS query without `BBOX`) is refused for a fenced
//! key: a fence that could be stepped around by leaving the area out would be no fence.
//!
//! "Inside" means the area touches the fence (intersects): a tile on the district's edge is
//! served whole, one that does not touch it is refused.

use geo::Intersects as _;
use shikong_protocol::api::services::ServiceType;
use shikong_tiles::TileMatrixSet;

/// The area a request names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    /// `[min lon, min lat, max lon, max lat]`.
    Bbox([f64; 4]),
    /// A metadata request: no area.
    Nothing,
    /// A data request whose area this server cannot compute.
    Unknown,
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The area of a GET to `path` (below the service's base) with `query` on a service of `kind`.
pub fn request_area(kind: ServiceType, path: &str, query: &[(String, String)]) -> Area {
    if let Some(request) = param(query, "request") {
        return match request.to_ascii_lowercase().as_str() {
            "getmap" | "getfeatureinfo" => wms_bbox(query).map_or(Area::Unknown, Area::Bbox),
            "getfeature" => wfs_bbox(query).map_or(Area::Unknown, Area::Bbox),
            "gettile" => wmts_kvp_tile(query).map_or(Area::Unknown, Area::Bbox),
            "getcapabilities" | "describefeaturetype" | "getlegendgraphic" | "describelayer" | "getstyles" => {
                Area::Nothing
            }
            _ => Area::Unknown,
        };
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match kind {
        ServiceType::Xyz => xyz_tile(&segments).map_or(Area::Unknown, Area::Bbox),
        ServiceType::Wmts | ServiceType::OgcApiTiles => match grid_tile(&segments) {
            Some(Some(b)) => Area::Bbox(b),
            Some(None) => Area::Unknown,
            // capabilities, landing pages, tile set descriptions
            None => Area::Nothing,
        },
        ServiceType::OgcApiFeatures => {
            if segments.iter().rev().take(2).any(|s| *s == "items") {
                param(query, "bbox").and_then(|b| lonlat_bbox(b, false)).map_or(Area::Unknown, Area::Bbox)
            } else {
                Area::Nothing
            }
        }
        ServiceType::ArcgisRest => match segments.last().copied() {
            Some("export" | "exportImage") => arcgis_bbox(query).map_or(Area::Unknown, Area::Bbox),
            Some("query" | "identify" | "find") => Area::Unknown,
            _ if segments.contains(&"tile") => Area::Unknown,
            _ => Area::Nothing,
        },
        ServiceType::Wms | ServiceType::Wfs => Area::Nothing,
    }
}

/// `a,b,c,d` as numbers, lon/lat order unless `lat_first`.
fn lonlat_bbox(text: &str, lat_first: bool) -> Option<[f64; 4]> {
    let v: Vec<f64> = text.split(',').take(4).map(|s| s.trim().parse().ok()).collect::<Option<_>>()?;
    let [a, b, c, d] = <[f64; 4]>::try_from(v).ok()?;
    let b = if lat_first { [b, a, d, c] } else { [a, b, c, d] };
    (b.iter().all(|x| x.is_finite()) && b[0] <= b[2] && b[1] <= b[3]).then_some(b)
}

/// Web Mercator metres to lon/lat.
fn mercator_to_lonlat(x: f64, y: f64) -> (f64, f64) {
    const R: f64 = 6_378_137.0;
    let lon = (x / R).to_degrees();
    let lat = (2.0 * (y / R).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// A bbox in `crs` (an EPSG code, `CRS:84`, an URN or `http://www.opengis.net/def/crs/…` URI)
/// in lon/lat; `epsg_lat_first`: EPSG geographic codes use lat/lon axis order (WMS 1.3.0, WFS 2).
fn bbox_in(text: &str, crs: &str, epsg_lat_first: bool) -> Option<[f64; 4]> {
    let c = crs.to_ascii_uppercase();
    let code = c.rsplit([':', '/']).next().unwrap_or("");
    if c.contains("CRS84") || c == "CRS:84" {
        return lonlat_bbox(text, false);
    }
    match code {
        "4326" | "4490" => lonlat_bbox(text, epsg_lat_first),
        "3857" | "900913" | "102100" | "102113" => {
            let m = lonlat_bbox(text, false)?;
            let (x0, y0) = mercator_to_lonlat(m[0], m[1]);
            let (x1, y1) = mercator_to_lonlat(m[2], m[3]);
            Some([x0, y0, x1, y1])
        }
        _ => None,
    }
}

fn wms_bbox(query: &[(String, String)]) -> Option<[f64; 4]> {
    let bbox = param(query, "bbox")?;
    let v13 = param(query, "version").is_none_or(|v| v.starts_with("1.3"));
    let crs = param(query, "crs").or_else(|| param(query, "srs"))?;
    bbox_in(bbox, crs, v13)
}

fn wfs_bbox(query: &[(String, String)]) -> Option<[f64; 4]> {
    let bbox = param(query, "bbox")?;
    let parts: Vec<&str> = bbox.split(',').collect();
    let v2 = param(query, "version").is_none_or(|v| v.starts_with('2'));
    let srs = param(query, "srsname");
    match (parts.get(4), srs) {
        (Some(crs), _) => bbox_in(&parts[..4].join(","), crs, crs.contains("urn") || crs.contains("def/crs")),
        (None, Some(crs)) => bbox_in(bbox, crs, v2 && !crs.starts_with("EPSG")),
        // WFS 1.0/1.1 without a CRS: the service's default, lon/lat in practice.
        (None, None) => lonlat_bbox(bbox, false),
    }
}

fn arcgis_bbox(query: &[(String, String)]) -> Option<[f64; 4]> {
    let bbox = param(query, "bbox")?;
    let sr = param(query, "bboxSR").unwrap_or("4326");
    let sr = sr.trim_start_matches("{\"wkid\":").trim_end_matches('}');
    bbox_in(bbox, sr, false)
}

/// The number at the end of a tile matrix id (`5`, `EPSG:3857:5`).
fn zoom_of(matrix: &str) -> Option<u8> {
    matrix.rsplit(':').next()?.parse().ok()
}

fn tile_bbox(tms: TileMatrixSet, z: u8, col: u32, row: u32) -> Option<[f64; 4]> {
    let t = tms.tile(z, col, row).ok()?;
    let b = tms.tile_bbox(t, 0.0);
    Some([b.min_x, b.min_y, b.max_x, b.max_y])
}

fn wmts_kvp_tile(query: &[(String, String)]) -> Option<[f64; 4]> {
    let tms = TileMatrixSet::from_id(param(query, "tilematrixset")?).ok()?;
    let z = zoom_of(param(query, "tilematrix")?)?;
    let row = param(query, "tilerow")?.parse().ok()?;
    let col = param(query, "tilecol")?.parse().ok()?;
    tile_bbox(tms, z, col, row)
}

fn number(segment: &str) -> Option<u32> {
    segment.split('.').next()?.parse().ok()
}

/// `…/{tms}/{z}/{row}/{col}[.ext]`: `None` when the path is not a tile, `Some(None)` for a tile
/// on a grid this server cannot compute.
fn grid_tile(segments: &[&str]) -> Option<Option<[f64; 4]>> {
    let n = segments.len();
    if n < 4 {
        return None;
    }
    let (z, row, col) = (number(segments[n - 3])?, number(segments[n - 2])?, number(segments[n - 1])?);
    let z = u8::try_from(z).ok()?;
    Some(TileMatrixSet::from_id(segments[n - 4]).ok().and_then(|tms| tile_bbox(tms, z, col, row)))
}

/// `…/{z}/{x}/{y}[.ext]` on WebMercatorQuad.
fn xyz_tile(segments: &[&str]) -> Option<[f64; 4]> {
    let n = segments.len();
    if n < 3 {
        return None;
    }
    let z = u8::try_from(number(segments[n - 3])?).ok()?;
    tile_bbox(TileMatrixSet::WebMercatorQuad, z, number(segments[n - 2])?, number(segments[n - 1])?)
}

/// Whether a fenced key may have `area`.
pub fn allowed(fence: &geo::Geometry<f64>, area: Area) -> bool {
    match area {
        Area::Nothing => true,
        Area::Unknown => false,
        Area::Bbox([x0, y0, x1, y1]) => fence.intersects(&geo::Rect::new((x0, y0), (x1, y1))),
    }
}

/// A fence as typed: a WKT polygon or multipolygon in lon/lat, within the earth, at most
/// `max_vertices` vertices.
pub fn parse_fence(wkt: &str, max_vertices: usize) -> Result<geo::Geometry<f64>, String> {
    let g = shikong_model::wkt::parse(wkt).map_err(|e| e.to_string())?.to_geo();
    if !matches!(g, geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_)) {
        return Err("a fence must be a POLYGON or MULTIPOLYGON".into());
    }
    use geo::CoordsIter as _;
    let n = g.coords_count();
    if n > max_vertices {
        return Err(format!("{n} vertices; at most {max_vertices}"));
    }
    if g.coords_iter().any(|c| !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y)) {
        return Err("coordinates must be lon/lat (CGCS2000) within -180..180, -90..90".into());
    }
    Ok(g)
}

/// A daily window `HH:MM-HH:MM` (Beijing time) as minutes of the day; the end may be before the
/// start (a window over midnight).
pub fn parse_hours(text: &str) -> Result<(u16, u16), String> {
    let minutes = |s: &str| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (a, b) = text.split_once('-').ok_or("expected HH:MM-HH:MM")?;
    match (minutes(a), minutes(b)) {
        (Some(a), Some(b)) if a != b => Ok((a, b)),
        _ => Err("expected HH:MM-HH:MM with two different times".into()),
    }
}

/// Whether `minute` of the day lies in the window.
pub fn in_hours((start, end): (u16, u16), minute: u16) -> bool {
    if start < end { (start..end).contains(&minute) } else { minute >= start || minute < end }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn areas_of_requests() {
        let wms13 = q(&[("REQUEST", "GetMap"), ("VERSION", "1.3.0"), ("CRS", "EPSG:4326"), ("BBOX", "30,114,31,115")]);
        assert_eq!(request_area(ServiceType::Wms, "", &wms13), Area::Bbox([114.0, 30.0, 115.0, 31.0]));
        let wms11 = q(&[("request", "GetMap"), ("version", "1.1.1"), ("srs", "EPSG:4326"), ("bbox", "114,30,115,31")]);
        assert_eq!(request_area(ServiceType::Wms, "", &wms11), Area::Bbox([114.0, 30.0, 115.0, 31.0]));
        let other = q(&[("request", "GetMap"), ("crs", "EPSG:4547"), ("bbox", "1,2,3,4")]);
        assert_eq!(request_area(ServiceType::Wms, "", &other), Area::Unknown);
        let caps = q(&[("service", "WMTS"), ("request", "GetCapabilities")]);
        assert_eq!(request_area(ServiceType::Wmts, "", &caps), Area::Nothing);
        let Area::Bbox(b) = request_area(ServiceType::Xyz, "1/1/0.png", &[]) else { panic!() };
        assert_eq!(b[0], 0.0);
        assert!((b[1] - 0.0).abs() < 1e-9 && (b[3] - 85.051_128_779_806_59).abs() < 1e-9);
        let rest = "wmts/1.0.0/manhole/default/current/WebMercatorQuad/1/0/1.png";
        assert_eq!(request_area(ServiceType::Wmts, rest, &[]), Area::Bbox(b));
        let kvp = q(&[
            ("REQUEST", "GetTile"),
            ("TILEMATRIXSET", "GoogleMapsCompatible"),
            ("TILEMATRIX", "1"),
            ("TILEROW", "0"),
            ("TILECOL", "1"),
        ]);
        assert_eq!(request_area(ServiceType::Wmts, "", &kvp), Area::Bbox(b));
        assert_eq!(request_area(ServiceType::Wmts, "a/b/OtherGrid/1/0/1.png", &[]), Area::Unknown);
        assert_eq!(request_area(ServiceType::Wfs, "", &q(&[("request", "GetFeature")])), Area::Unknown);
        assert_eq!(request_area(ServiceType::OgcApiFeatures, "collections/a/items", &[]), Area::Unknown);
        assert_eq!(request_area(ServiceType::OgcApiFeatures, "collections", &[]), Area::Nothing);
    }

    #[test]
    fn fences() {
        let f = parse_fence("POLYGON((114 30, 115 30, 115 31, 114 31, 114 30))", 100).unwrap();
        assert!(allowed(&f, Area::Bbox([114.5, 30.5, 114.6, 30.6])));
        assert!(allowed(&f, Area::Bbox([113.0, 29.0, 114.1, 30.1])));
        assert!(!allowed(&f, Area::Bbox([116.0, 30.0, 117.0, 31.0])));
        assert!(!allowed(&f, Area::Unknown));
        assert!(allowed(&f, Area::Nothing));
        assert!(parse_fence("POINT(1 2)", 100).is_err());
        assert!(parse_fence("POLYGON((114 30, 115 30, 115 31, 114 30))", 3).is_err());
        assert!(parse_fence("POLYGON((500000 30, 115 30, 115 31, 500000 30))", 100).is_err());
    }

    #[test]
    fn hours() {
        let w = parse_hours("08:00-20:00").unwrap();
        assert!(in_hours(w, 8 * 60) && !in_hours(w, 20 * 60) && !in_hours(w, 7 * 60));
        let night = parse_hours("22:00-06:00").unwrap();
        assert!(in_hours(night, 23 * 60) && in_hours(night, 60) && !in_hours(night, 12 * 60));
        assert!(parse_hours("8-20").is_err());
    }
}
