//! Geometry with optional Z, the shapes a layer may hold, and bounding boxes.
//!
//! We keep our own small geometry type instead of `geo_types` because stored geometries carry an
//! optional Z (heights from surveys) that `geo_types` drops; algorithms that only need 2-D
//! (intersection tests, areas) convert with [`Geometry::to_geo`].

use std::fmt;
use std::str::FromStr;

use crate::error::{GeometryError, ModelError};

/// One position. `z` is `Some` for 3-D geometries; a geometry never mixes the two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coord {
    pub x: f64,
    pub y: f64,
    pub z: Option<f64>,
}

impl Coord {
    pub const fn xy(x: f64, y: f64) -> Self {
        Self { x, y, z: None }
    }

    pub const fn xyz(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z: Some(z) }
    }
}

impl fmt::Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.z {
            Some(z) => write!(f, "({} {} {})", self.x, self.y, z),
            None => write!(f, "({} {})", self.x, self.y),
        }
    }
}

/// A ring or path.
pub type Line = Vec<Coord>;

/// The simple-feature geometries shikong stores. Empty geometries are not represented: a feature
/// without a shape has `geometry: None`.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Point(Coord),
    LineString(Line),
    /// Exterior ring first, then holes. Rings are closed (first == last).
    Polygon(Vec<Line>),
    MultiPoint(Vec<Coord>),
    MultiLineString(Vec<Line>),
    MultiPolygon(Vec<Vec<Line>>),
}

/// The shape a layer declares; `Geometry` accepts any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeometryKind {
    Point,
    LineString,
    Polygon,
    MultiPoint,
    MultiLineString,
    MultiPolygon,
    Geometry,
}

impl GeometryKind {
    /// The GeoPackage / OGC simple-features type name.
    pub fn name(self) -> &'static str {
        match self {
            GeometryKind::Point => "POINT",
            GeometryKind::LineString => "LINESTRING",
            GeometryKind::Polygon => "POLYGON",
            GeometryKind::MultiPoint => "MULTIPOINT",
            GeometryKind::MultiLineString => "MULTILINESTRING",
            GeometryKind::MultiPolygon => "MULTIPOLYGON",
            GeometryKind::Geometry => "GEOMETRY",
        }
    }

    /// The GeoJSON type name (`Geometry` has none and maps to `"Geometry"`).
    pub fn geojson_name(self) -> &'static str {
        match self {
            GeometryKind::Point => "Point",
            GeometryKind::LineString => "LineString",
            GeometryKind::Polygon => "Polygon",
            GeometryKind::MultiPoint => "MultiPoint",
            GeometryKind::MultiLineString => "MultiLineString",
            GeometryKind::MultiPolygon => "MultiPolygon",
            GeometryKind::Geometry => "Geometry",
        }
    }

    /// The multi-part kind this single-part kind promotes to.
    pub fn multi(self) -> GeometryKind {
        match self {
            GeometryKind::Point => GeometryKind::MultiPoint,
            GeometryKind::LineString => GeometryKind::MultiLineString,
            GeometryKind::Polygon => GeometryKind::MultiPolygon,
            other => other,
        }
    }

    /// The smallest kind able to hold both `self` and `other` (used to infer a layer's kind).
    pub fn widen(self, other: GeometryKind) -> GeometryKind {
        if self == other {
            self
        } else if self.multi() == other.multi() {
            self.multi()
        } else {
            GeometryKind::Geometry
        }
    }
}

impl fmt::Display for GeometryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GeometryKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "POINT" => GeometryKind::Point,
            "LINESTRING" => GeometryKind::LineString,
            "POLYGON" => GeometryKind::Polygon,
            "MULTIPOINT" => GeometryKind::MultiPoint,
            "MULTILINESTRING" => GeometryKind::MultiLineString,
            "MULTIPOLYGON" => GeometryKind::MultiPolygon,
            "GEOMETRY" => GeometryKind::Geometry,
            _ => {
                return Err(ModelError::Invalid {
                    what: "geometry type",
                    input: s.to_owned(),
                    message: "expected POINT, LINESTRING, POLYGON, their MULTI forms or GEOMETRY".into(),
                });
            }
        })
    }
}

impl Geometry {
    pub fn kind(&self) -> GeometryKind {
        match self {
            Geometry::Point(_) => GeometryKind::Point,
            Geometry::LineString(_) => GeometryKind::LineString,
            Geometry::Polygon(_) => GeometryKind::Polygon,
            Geometry::MultiPoint(_) => GeometryKind::MultiPoint,
            Geometry::MultiLineString(_) => GeometryKind::MultiLineString,
            Geometry::MultiPolygon(_) => GeometryKind::MultiPolygon,
        }
    }

    /// Calls `f` on every coordinate, in storage order.
    pub fn for_each_coord(&self, mut f: impl FnMut(&Coord)) {
        match self {
            Geometry::Point(c) => f(c),
            Geometry::LineString(l) | Geometry::MultiPoint(l) => l.iter().for_each(f),
            Geometry::Polygon(rings) | Geometry::MultiLineString(rings) => rings.iter().flatten().for_each(f),
            Geometry::MultiPolygon(polys) => polys.iter().flatten().flatten().for_each(f),
        }
    }

    /// A copy with every coordinate passed through `f` (the one hook reprojection uses).
    pub fn try_map_coords<E>(&self, mut f: impl FnMut(Coord) -> Result<Coord, E>) -> Result<Geometry, E> {
        let mut line = |l: &Line| l.iter().map(|c| f(*c)).collect::<Result<Line, E>>();
        Ok(match self {
            Geometry::Point(c) => Geometry::Point(line(&vec![*c])?[0]),
            Geometry::LineString(l) => Geometry::LineString(line(l)?),
            Geometry::MultiPoint(l) => Geometry::MultiPoint(line(l)?),
            Geometry::Polygon(rings) => Geometry::Polygon(rings.iter().map(&mut line).collect::<Result<_, E>>()?),
            Geometry::MultiLineString(ls) => {
                Geometry::MultiLineString(ls.iter().map(&mut line).collect::<Result<_, E>>()?)
            }
            Geometry::MultiPolygon(polys) => Geometry::MultiPolygon(
                polys
                    .iter()
                    .map(|rings| rings.iter().map(&mut line).collect::<Result<Vec<_>, E>>())
                    .collect::<Result<_, E>>()?,
            ),
        })
    }

    pub fn coord_count(&self) -> usize {
        let mut n = 0;
        self.for_each_coord(|_| n += 1);
        n
    }

    /// Whether the coordinates carry Z (checked consistent by [`Geometry::validate`]).
    pub fn has_z(&self) -> bool {
        let mut z = false;
        self.for_each_coord(|c| z |= c.z.is_some());
        z
    }

    /// The 2-D envelope. Always `Some` for a valid geometry.
    pub fn bbox(&self) -> Option<Bbox> {
        let mut b: Option<Bbox> = None;
        self.for_each_coord(|c| {
            let p = Bbox { min_x: c.x, min_y: c.y, max_x: c.x, max_y: c.y };
            b = Some(match b {
                None => p,
                Some(acc) => acc.union(&p),
            });
        });
        b
    }

    /// Checks the structural rules every stored geometry obeys: finite coordinates, enough points,
    /// closed rings, no mixing of 2-D and 3-D coordinates. Self-intersection is *not* checked here:
    /// surveyed data often has tiny slivers that users must still be able to load and then fix.
    pub fn validate(&self) -> Result<(), GeometryError> {
        let mut index = 0usize;
        let mut with_z = 0usize;
        let mut bad: Option<GeometryError> = None;
        self.for_each_coord(|c| {
            if bad.is_none() {
                for v in [Some(c.x), Some(c.y), c.z].into_iter().flatten() {
                    if !v.is_finite() {
                        bad = Some(GeometryError::NotFinite { index, value: v.to_string() });
                    }
                }
            }
            with_z += usize::from(c.z.is_some());
            index += 1;
        });
        if let Some(e) = bad {
            return Err(e);
        }
        if with_z != 0 && with_z != index {
            return Err(GeometryError::MixedDimensions);
        }
        let line = |l: &Line| {
            if l.len() < 2 {
                Err(GeometryError::TooFewPoints { kind: "LineString", min: 2, got: l.len() })
            } else {
                Ok(())
            }
        };
        let polygon = |rings: &Vec<Line>| -> Result<(), GeometryError> {
            if rings.is_empty() {
                return Err(GeometryError::Empty("Polygon"));
            }
            for (i, r) in rings.iter().enumerate() {
                if r.len() < 4 {
                    return Err(GeometryError::TooFewPoints { kind: "Polygon ring", min: 4, got: r.len() });
                }
                let (first, last) = (r[0], r[r.len() - 1]);
                if first.x != last.x || first.y != last.y {
                    return Err(GeometryError::UnclosedRing {
                        ring: i,
                        first: first.to_string(),
                        last: last.to_string(),
                    });
                }
            }
            Ok(())
        };
        match self {
            Geometry::Point(_) => Ok(()),
            Geometry::LineString(l) => line(l),
            Geometry::Polygon(rings) => polygon(rings),
            Geometry::MultiPoint(ps) if ps.is_empty() => Err(GeometryError::Empty("MultiPoint")),
            Geometry::MultiPoint(_) => Ok(()),
            Geometry::MultiLineString(ls) if ls.is_empty() => Err(GeometryError::Empty("MultiLineString")),
            Geometry::MultiLineString(ls) => ls.iter().try_for_each(line),
            Geometry::MultiPolygon(ps) if ps.is_empty() => Err(GeometryError::Empty("MultiPolygon")),
            Geometry::MultiPolygon(ps) => ps.iter().try_for_each(polygon),
        }
    }

    /// Checks that longitudes/latitudes are on the globe (for geographic CRSs).
    pub fn validate_geographic(&self) -> Result<(), GeometryError> {
        let mut index = 0usize;
        let mut bad = None;
        self.for_each_coord(|c| {
            if bad.is_none() && !(-90.0..=90.0).contains(&c.y) {
                bad = Some(GeometryError::LatitudeOutOfRange { index, lat: c.y });
            }
            index += 1;
        });
        bad.map_or(Ok(()), Err)
    }

    /// Fits this geometry into a layer of kind `kind`, promoting single parts to multi parts
    /// (a Polygon into a MultiPolygon layer) and refusing anything else.
    pub fn conform_to(self, kind: GeometryKind) -> Result<Geometry, GeometryError> {
        let own = self.kind();
        if kind == GeometryKind::Geometry || own == kind {
            return Ok(self);
        }
        match (self, kind) {
            (Geometry::Point(c), GeometryKind::MultiPoint) => Ok(Geometry::MultiPoint(vec![c])),
            (Geometry::LineString(l), GeometryKind::MultiLineString) => Ok(Geometry::MultiLineString(vec![l])),
            (Geometry::Polygon(p), GeometryKind::MultiPolygon) => Ok(Geometry::MultiPolygon(vec![p])),
            _ => Err(GeometryError::WrongKind { expected: kind.name(), got: own.name() }),
        }
    }

    /// The 2-D `geo_types` equivalent, for algorithms (Z is dropped).
    pub fn to_geo(&self) -> geo_types::Geometry<f64> {
        use geo_types as g;
        let c = |c: &Coord| g::Coord { x: c.x, y: c.y };
        let ls = |l: &Line| g::LineString(l.iter().map(c).collect());
        let poly = |rings: &Vec<Line>| {
            let mut it = rings.iter();
            let outer = it.next().map(ls).unwrap_or_else(|| g::LineString(vec![]));
            g::Polygon::new(outer, it.map(ls).collect())
        };
        match self {
            Geometry::Point(p) => g::Geometry::Point(g::Point(c(p))),
            Geometry::LineString(l) => g::Geometry::LineString(ls(l)),
            Geometry::Polygon(r) => g::Geometry::Polygon(poly(r)),
            Geometry::MultiPoint(ps) => {
                g::Geometry::MultiPoint(g::MultiPoint(ps.iter().map(|p| g::Point(c(p))).collect()))
            }
            Geometry::MultiLineString(l) => {
                g::Geometry::MultiLineString(g::MultiLineString(l.iter().map(ls).collect()))
            }
            Geometry::MultiPolygon(p) => g::Geometry::MultiPolygon(g::MultiPolygon(p.iter().map(poly).collect())),
        }
    }

    /// The polygon of a bbox (counter-clockwise exterior ring).
    pub fn from_bbox(b: &Bbox) -> Geometry {
        Geometry::Polygon(vec![vec![
            Coord::xy(b.min_x, b.min_y),
            Coord::xy(b.max_x, b.min_y),
            Coord::xy(b.max_x, b.max_y),
            Coord::xy(b.min_x, b.max_y),
            Coord::xy(b.min_x, b.min_y),
        ]])
    }
}

/// An axis-aligned 2-D envelope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Bbox {
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Result<Self, ModelError> {
        let b = Bbox { min_x, min_y, max_x, max_y };
        let bad = |m: &str| ModelError::Invalid { what: "bbox", input: b.to_string(), message: m.to_owned() };
        if ![min_x, min_y, max_x, max_y].iter().all(|v| v.is_finite()) {
            return Err(bad("all four numbers must be finite"));
        }
        if min_x > max_x || min_y > max_y {
            return Err(bad("minimum greater than maximum (expected minx,miny,maxx,maxy)"));
        }
        Ok(b)
    }

    pub fn union(&self, o: &Bbox) -> Bbox {
        Bbox {
            min_x: self.min_x.min(o.min_x),
            min_y: self.min_y.min(o.min_y),
            max_x: self.max_x.max(o.max_x),
            max_y: self.max_y.max(o.max_y),
        }
    }

    pub fn intersects(&self, o: &Bbox) -> bool {
        self.min_x <= o.max_x && o.min_x <= self.max_x && self.min_y <= o.max_y && o.min_y <= self.max_y
    }

    pub fn contains_point(&self, x: f64, y: f64) -> bool {
        (self.min_x..=self.max_x).contains(&x) && (self.min_y..=self.max_y).contains(&y)
    }

    pub fn width(&self) -> f64 {
        self.max_x - self.min_x
    }

    pub fn height(&self) -> f64 {
        self.max_y - self.min_y
    }
}

impl fmt::Display for Bbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.min_x, self.min_y, self.max_x, self.max_y)
    }
}

impl FromStr for Bbox {
    type Err = ModelError;
    /// Parses `minx,miny,maxx,maxy` (the OGC API and CLI spelling). Six numbers (with heights) are
    /// accepted and the heights ignored, as OGC API – Features allows.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |m: String| ModelError::Invalid { what: "bbox", input: s.to_owned(), message: m };
        let nums = s
            .split(',')
            .map(|p| p.trim().parse::<f64>().map_err(|_| bad(format!("`{}` is not a number", p.trim()))))
            .collect::<Result<Vec<_>, _>>()?;
        match nums[..] {
            [a, b, c, d] => Bbox::new(a, b, c, d),
            [a, b, _, d, e, _] => Bbox::new(a, b, d, e),
            _ => Err(bad(format!("expected 4 numbers minx,miny,maxx,maxy, got {}", nums.len()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<Line> {
        vec![vec![Coord::xy(0., 0.), Coord::xy(1., 0.), Coord::xy(1., 1.), Coord::xy(0., 0.)]]
    }

    #[test]
    fn validation_names_what_is_wrong() {
        assert!(Geometry::Polygon(square()).validate().is_ok());
        let open = vec![vec![Coord::xy(0., 0.), Coord::xy(1., 0.), Coord::xy(1., 1.), Coord::xy(0., 1.)]];
        assert!(matches!(Geometry::Polygon(open).validate(), Err(GeometryError::UnclosedRing { ring: 0, .. })));
        assert!(matches!(
            Geometry::Point(Coord::xy(f64::NAN, 1.)).validate(),
            Err(GeometryError::NotFinite { index: 0, .. })
        ));
        assert_eq!(
            Geometry::LineString(vec![Coord::xy(0., 0.), Coord::xyz(1., 1., 1.)]).validate(),
            Err(GeometryError::MixedDimensions)
        );
        assert!(matches!(
            Geometry::LineString(vec![Coord::xy(0., 0.)]).validate(),
            Err(GeometryError::TooFewPoints { .. })
        ));
        assert!(matches!(
            Geometry::Point(Coord::xy(114., 95.)).validate_geographic(),
            Err(GeometryError::LatitudeOutOfRange { .. })
        ));
    }

    #[test]
    fn single_parts_promote_into_multi_layers_only() {
        let p = Geometry::Polygon(square());
        assert_eq!(p.clone().conform_to(GeometryKind::MultiPolygon).unwrap().kind(), GeometryKind::MultiPolygon);
        assert!(p.conform_to(GeometryKind::Point).is_err());
        assert_eq!(GeometryKind::Polygon.widen(GeometryKind::MultiPolygon), GeometryKind::MultiPolygon);
        assert_eq!(GeometryKind::Polygon.widen(GeometryKind::Point), GeometryKind::Geometry);
    }

    #[test]
    fn bbox_parsing() {
        let b: Bbox = "114.2,30.4,114.5,30.6".parse().unwrap();
        assert_eq!(b.max_y, 30.6);
        assert!("1,2,3".parse::<Bbox>().unwrap_err().to_string().contains("expected 4 numbers"));
        assert!("3,2,1,4".parse::<Bbox>().unwrap_err().to_string().contains("minimum greater"));
        assert!("a,2,1,4".parse::<Bbox>().unwrap_err().to_string().contains("`a` is not a number"));
    }
}
