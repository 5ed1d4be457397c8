//! GeoJSON geometry objects (RFC 7946 §3.1) to and from [`Geometry`].
//!
//! Only the geometry object lives here; feature and collection shapes belong to the crates that
//! speak a wire format (import/export, the server).

use serde_json::{Map, Value as Json, json};

use crate::error::GeometryError;
use crate::geometry::{Coord, Geometry, Line};

fn syntax(message: impl Into<String>) -> GeometryError {
    GeometryError::Syntax { format: "GeoJSON geometry", message: message.into() }
}

/// Reads a GeoJSON geometry object. `null` is not a geometry; callers handle it first.
pub fn from_json(v: &Json) -> Result<Geometry, GeometryError> {
    let obj = v.as_object().ok_or_else(|| syntax("expected an object"))?;
    let ty = obj.get("type").and_then(Json::as_str).ok_or_else(|| syntax("missing \"type\""))?;
    if ty == "GeometryCollection" {
        return Err(GeometryError::Unsupported("GeometryCollection".into()));
    }
    let coords = obj.get("coordinates").ok_or_else(|| syntax(format!("{ty} without \"coordinates\"")))?;
    Ok(match ty {
        "Point" => Geometry::Point(position(coords)?),
        "LineString" => Geometry::LineString(line(coords)?),
        "Polygon" => Geometry::Polygon(lines(coords)?),
        "MultiPoint" => Geometry::MultiPoint(line(coords)?),
        "MultiLineString" => Geometry::MultiLineString(lines(coords)?),
        "MultiPolygon" => Geometry::MultiPolygon(array(coords)?.iter().map(lines).collect::<Result<_, _>>()?),
        other => return Err(GeometryError::Unsupported(other.to_owned())),
    })
}

fn array(v: &Json) -> Result<&Vec<Json>, GeometryError> {
    v.as_array().ok_or_else(|| syntax(format!("expected an array, found {v}")))
}

fn position(v: &Json) -> Result<Coord, GeometryError> {
    let a = array(v)?;
    let num = |i: usize| a[i].as_f64().ok_or_else(|| syntax(format!("coordinate `{}` is not a number", a[i])));
    match a.len() {
        2 => Ok(Coord::xy(num(0)?, num(1)?)),
        // A fourth value (M) is dropped, as in WKB reading.
        3 | 4 => Ok(Coord::xyz(num(0)?, num(1)?, num(2)?)),
        n => Err(syntax(format!("a position has 2 or 3 numbers, found {n}"))),
    }
}

fn line(v: &Json) -> Result<Line, GeometryError> {
    array(v)?.iter().map(position).collect()
}

fn lines(v: &Json) -> Result<Vec<Line>, GeometryError> {
    array(v)?.iter().map(line).collect()
}

fn pos_json(c: &Coord) -> Json {
    match c.z {
        Some(z) => json!([c.x, c.y, z]),
        None => json!([c.x, c.y]),
    }
}

fn line_json(l: &Line) -> Json {
    Json::Array(l.iter().map(pos_json).collect())
}

fn lines_json(l: &[Line]) -> Json {
    Json::Array(l.iter().map(line_json).collect())
}

/// Writes a GeoJSON geometry object.
pub fn to_json(g: &Geometry) -> Json {
    let coordinates = match g {
        Geometry::Point(c) => pos_json(c),
        Geometry::LineString(l) | Geometry::MultiPoint(l) => line_json(l),
        Geometry::Polygon(r) | Geometry::MultiLineString(r) => lines_json(r),
        Geometry::MultiPolygon(p) => Json::Array(p.iter().map(|r| lines_json(r)).collect()),
    };
    let mut m = Map::new();
    m.insert("type".into(), Json::String(g.kind().geojson_name().into()));
    m.insert("coordinates".into(), coordinates);
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_errors() {
        let src = json!({"type": "Polygon", "coordinates": [[[114.0, 30.0, 21.5], [115.0, 30.0, 21.5], [115.0, 31.0, 21.5], [114.0, 30.0, 21.5]]]});
        let g = from_json(&src).unwrap();
        assert!(g.has_z());
        assert_eq!(to_json(&g), src);
        assert!(
            from_json(&json!({"type": "Point", "coordinates": ["a", 1]}))
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
        assert!(from_json(&json!({"type": "Circle", "coordinates": []})).is_err());
        assert!(from_json(&json!({"type": "Point"})).unwrap_err().to_string().contains("without"));
    }
}
