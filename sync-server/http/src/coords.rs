//! Coordinates in and out of the API: the store keeps CGCS2000 lon/lat; clients may ask for or
//! send other CRSs (OGC API – Features Part 2). Output follows the CRS's own axis order (lat/lon
//! for EPSG:4326 and 4490, northing/easting for the Gauss-Krüger zones), CRS84 is lon/lat.

use shikong_model::{Bbox, Crs, Geometry};

use super::problem::{ApiError, ApiResult};

/// The CRSs offered for every collection (the Part 2 `crs` list).
pub fn offered() -> Vec<Crs> {
    let mut v = vec![Crs::Crs84, Crs::CGCS2000, Crs::WGS84, Crs::WEB_MERCATOR];
    v.extend((4491..=4554).map(Crs::Epsg));
    v
}

/// Whether the CRS's authority axis order is (y, x): latitude first, or northing first.
pub fn authority_yx(crs: Crs) -> bool {
    shikong_crs::axis_order(crs) == shikong_crs::AxisOrder::YX
}

/// From the store's frame to what the client asked for.
pub fn to_output(g: &Geometry, crs: Crs, param: &str) -> ApiResult<Geometry> {
    let t = shikong_crs::transform_geometry(g, Crs::CGCS2000, crs).map_err(|e| ApiError::bad_parameter(param, e))?;
    Ok(if authority_yx(crs) { shikong_crs::swap_xy(&t) } else { t })
}

/// From a client's frame (in its axis order) to the store's.
pub fn from_input(g: &Geometry, crs: Crs, param: &str) -> ApiResult<Geometry> {
    let g = if authority_yx(crs) { shikong_crs::swap_xy(g) } else { g.clone() };
    shikong_crs::transform_geometry(&g, crs, Crs::CGCS2000).map_err(|e| ApiError::bad_parameter(param, e))
}

/// A bbox given in `crs` (its axis order) as a CGCS2000 lon/lat envelope.
pub fn bbox_from_input(b: Bbox, crs: Crs) -> ApiResult<Bbox> {
    if crs == Crs::Crs84 || crs == Crs::CGCS2000 && !authority_yx(crs) {
        return Ok(b);
    }
    let poly = Geometry::from_bbox(&b);
    let g = from_input(&poly, crs, "bbox-crs")?;
    g.bbox().ok_or_else(|| ApiError::bad_parameter("bbox", "empty"))
}
