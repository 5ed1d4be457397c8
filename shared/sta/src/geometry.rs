//! Geometry at the edges of SensorThings: GeoJSON in `location`/`feature`/`observedArea` and WKT
//! in `$filter` literals (`geography'POINT(8 54.1)'`), both read into `geo` geometries so the
//! evaluator can use `geo`'s exact predicates. Coordinates are taken as they come (longitude,
//! latitude in CGCS2000/WGS 84 degrees); distances and lengths are planar in those units, as the
//! conformance tests expect (`geo.distance(location, geography'POINT(8 54.1)') lt 1`).

use geo::Geometry;
use serde_json::Value;

/// Most coordinates one GeoJSON value or WKT literal may carry (a hostile body cannot make the
/// converter allocate without end).
pub const MAX_COORDINATES: usize = 100_000;

/// Reads a GeoJSON geometry, Feature (its geometry) or FeatureCollection (a collection).
pub fn from_geojson(v: &Value) -> Result<Geometry<f64>, String> {
    let n = count_numbers(v, 0);
    if n > MAX_COORDINATES * 3 {
        return Err(format!("more than {MAX_COORDINATES} coordinates"));
    }
    let gj = geojson::GeoJson::from_json_value(v.clone()).map_err(|e| format!("not GeoJSON: {e}"))?;
    match gj {
        geojson::GeoJson::Geometry(g) => Geometry::try_from(g).map_err(|e| format!("not a GeoJSON geometry: {e}")),
        geojson::GeoJson::Feature(f) => match f.geometry {
            Some(g) => Geometry::try_from(g).map_err(|e| format!("not a GeoJSON geometry: {e}")),
            None => Err("a GeoJSON Feature without geometry".into()),
        },
        geojson::GeoJson::FeatureCollection(fc) => {
            let mut out = Vec::with_capacity(fc.features.len());
            for f in fc.features {
                if let Some(g) = f.geometry {
                    out.push(Geometry::try_from(g).map_err(|e| format!("not a GeoJSON geometry: {e}"))?);
                }
            }
            Ok(Geometry::GeometryCollection(geo::GeometryCollection(out)))
        }
    }
}

fn count_numbers(v: &Value, depth: usize) -> usize {
    // serde_json already limits nesting to 128 levels, so this recursion is bounded.
    match v {
        Value::Number(_) => 1,
        Value::Array(a) if depth < 130 => a.iter().map(|x| count_numbers(x, depth + 1)).sum(),
        Value::Object(o) if depth < 130 => o.values().map(|x| count_numbers(x, depth + 1)).sum(),
        _ => 0,
    }
}

/// Reads a WKT literal (`POINT(8 54.1)`, `POLYGON((…))`, optionally `SRID=4326;…`).
pub fn from_wkt(text: &str) -> Result<Geometry<f64>, String> {
    let body = match text.split_once(';') {
        Some((srid, rest)) if srid.trim().to_ascii_uppercase().starts_with("SRID=") => rest,
        _ => text,
    };
    if body.bytes().filter(|b| *b == b',').count() > MAX_COORDINATES {
        return Err(format!("more than {MAX_COORDINATES} coordinates"));
    }
    use std::str::FromStr;
    let w = wkt::Wkt::<f64>::from_str(body.trim()).map_err(|e| format!("not WKT: {e}"))?;
    Geometry::try_from(w).map_err(|e| format!("unsupported WKT geometry: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn geojson_shapes() {
        assert!(matches!(from_geojson(&json!({"type":"Point","coordinates":[114.3,30.5]})), Ok(Geometry::Point(_))));
        let f =
            json!({"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[5,52],[5,53]]}});
        assert!(matches!(from_geojson(&f), Ok(Geometry::LineString(_))));
        assert!(from_geojson(&json!({"type":"Point","coordinates":"x"})).is_err());
        assert!(from_geojson(&json!({"type":"Feature","properties":{},"geometry":null})).is_err());
    }

    #[test]
    fn wkt_literals() {
        assert!(matches!(from_wkt("POINT(8 54.1)"), Ok(Geometry::Point(_))));
        assert!(matches!(from_wkt("SRID=4326;POINT(8 54.1)"), Ok(Geometry::Point(_))));
        assert!(matches!(
            from_wkt("POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))"),
            Ok(Geometry::Polygon(_))
        ));
        assert!(from_wkt("POINT(8").is_err());
    }
}
