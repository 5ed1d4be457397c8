//! Well-Known Text for geometries: parsing (via the `wkt` crate) and writing.
//!
//! WKT is how users type geometries on the command line (`shikong measure`, `--area`), and one of
//! the CSV import/export geometry columns.

use std::fmt::Write as _;

use wkt::Wkt;

use crate::error::GeometryError;
use crate::geometry::{Coord, Geometry, Line};

fn syntax(message: impl Into<String>) -> GeometryError {
    GeometryError::Syntax { format: "WKT", message: message.into() }
}

/// Parses WKT (2-D or Z; M values are dropped; EMPTY geometries are an error).
pub fn parse(s: &str) -> Result<Geometry, GeometryError> {
    let w: Wkt<f64> = s.trim().parse().map_err(|e: &str| syntax(e.to_string()))?;
    convert(w)
}

fn coord(c: &wkt::types::Coord<f64>) -> Coord {
    Coord { x: c.x, y: c.y, z: c.z }
}

fn line(l: &wkt::types::LineString<f64>) -> Line {
    l.coords().iter().map(coord).collect()
}

fn rings(p: &wkt::types::Polygon<f64>) -> Vec<Line> {
    p.rings().iter().map(line).collect()
}

fn convert(w: Wkt<f64>) -> Result<Geometry, GeometryError> {
    let g = match &w {
        Wkt::Point(p) => Geometry::Point(p.coord().map(coord).ok_or(GeometryError::Empty("Point"))?),
        Wkt::LineString(l) => Geometry::LineString(line(l)),
        Wkt::Polygon(p) => Geometry::Polygon(rings(p)),
        Wkt::MultiPoint(mp) => Geometry::MultiPoint(
            mp.points()
                .iter()
                .map(|p| p.coord().map(coord).ok_or(GeometryError::Empty("Point")))
                .collect::<Result<_, _>>()?,
        ),
        Wkt::MultiLineString(ml) => Geometry::MultiLineString(ml.line_strings().iter().map(line).collect()),
        Wkt::MultiPolygon(mp) => Geometry::MultiPolygon(mp.polygons().iter().map(rings).collect()),
        Wkt::GeometryCollection(_) => return Err(GeometryError::Unsupported("GeometryCollection".into())),
    };
    let empty = match &g {
        Geometry::LineString(l) | Geometry::MultiPoint(l) => l.is_empty(),
        Geometry::Polygon(r) | Geometry::MultiLineString(r) => r.is_empty(),
        Geometry::MultiPolygon(p) => p.is_empty(),
        Geometry::Point(_) => false,
    };
    if empty {
        return Err(GeometryError::Empty(g.kind().geojson_name()));
    }
    Ok(g)
}

/// Writes WKT, e.g. `POINT Z (114.3 30.5 21)`.
pub fn to_wkt(g: &Geometry) -> String {
    let mut s = String::with_capacity(16 + 24 * g.coord_count());
    s.push_str(g.kind().name());
    if g.has_z() {
        s.push_str(" Z");
    }
    s.push(' ');
    let c = |s: &mut String, c: &Coord| {
        let _ = match c.z {
            Some(z) => write!(s, "{} {} {}", c.x, c.y, z),
            None => write!(s, "{} {}", c.x, c.y),
        };
    };
    let l = |s: &mut String, l: &Line| {
        s.push('(');
        for (i, p) in l.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            c(s, p);
        }
        s.push(')');
    };
    let r = |s: &mut String, rings: &[Line]| {
        s.push('(');
        for (i, ring) in rings.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            l(s, ring);
        }
        s.push(')');
    };
    match g {
        Geometry::Point(p) => {
            s.push('(');
            c(&mut s, p);
            s.push(')');
        }
        Geometry::LineString(line) => l(&mut s, line),
        Geometry::Polygon(rings) => r(&mut s, rings),
        Geometry::MultiPoint(ps) => {
            s.push('(');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push('(');
                c(&mut s, p);
                s.push(')');
            }
            s.push(')');
        }
        Geometry::MultiLineString(ls) => r(&mut s, ls),
        Geometry::MultiPolygon(ps) => {
            s.push('(');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                r(&mut s, p);
            }
            s.push(')');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(src: &str) {
        let g = parse(src).unwrap();
        assert_eq!(to_wkt(&g), src);
        assert_eq!(parse(&to_wkt(&g)).unwrap(), g);
    }

    #[test]
    fn round_trips() {
        round_trip("POINT (114.3055 30.5928)");
        round_trip("POINT Z (114.3055 30.5928 21.5)");
        round_trip("LINESTRING (1 2,3 4)");
        round_trip("POLYGON ((0 0,1 0,1 1,0 0),(0.1 0.1,0.2 0.1,0.2 0.2,0.1 0.1))");
        round_trip("MULTIPOINT ((1 2),(3 4))");
        round_trip("MULTIPOLYGON (((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))");
    }

    #[test]
    fn errors() {
        assert!(parse("POINT EMPTY").is_err());
        assert!(parse("POINT (1)").is_err());
        assert!(parse("CIRCLE (1 2)").is_err());
        assert!(parse("GEOMETRYCOLLECTION (POINT (1 2))").unwrap_err().to_string().contains("GeometryCollection"));
    }
}
