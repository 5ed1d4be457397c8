//! ISO Well-Known Binary, the geometry encoding inside GeoPackage blobs.
//!
//! We write little-endian ISO WKB (Z as type + 1000), which is what the GeoPackage standard and
//! GDAL use. We read both byte orders, ISO and EWKB Z flags; M ordinates are read and dropped
//! (measures are not spatial and no shikong layer keeps them).

use crate::error::GeometryError;
use crate::geometry::{Coord, Geometry, Line};

/// Appends the WKB of `g` to `out`.
pub fn write(g: &Geometry, out: &mut Vec<u8>) {
    let z = g.has_z();
    match g {
        Geometry::Point(c) => {
            header(out, 1, z);
            coord(out, c, z);
        }
        Geometry::LineString(l) => {
            header(out, 2, z);
            line(out, l, z);
        }
        Geometry::Polygon(rings) => {
            header(out, 3, z);
            polygon(out, rings, z);
        }
        Geometry::MultiPoint(ps) => {
            header(out, 4, z);
            count(out, ps.len());
            for p in ps {
                header(out, 1, z);
                coord(out, p, z);
            }
        }
        Geometry::MultiLineString(ls) => {
            header(out, 5, z);
            count(out, ls.len());
            for l in ls {
                header(out, 2, z);
                line(out, l, z);
            }
        }
        Geometry::MultiPolygon(ps) => {
            header(out, 6, z);
            count(out, ps.len());
            for p in ps {
                header(out, 3, z);
                polygon(out, p, z);
            }
        }
    }
}

/// The WKB of `g` as a new vector.
pub fn to_vec(g: &Geometry) -> Vec<u8> {
    let mut v = Vec::with_capacity(21 + 16 * g.coord_count());
    write(g, &mut v);
    v
}

fn header(out: &mut Vec<u8>, ty: u32, z: bool) {
    out.push(1);
    out.extend_from_slice(&(ty + if z { 1000 } else { 0 }).to_le_bytes());
}

fn count(out: &mut Vec<u8>, n: usize) {
    // Geometries come from parsed input bounded far below u32::MAX coordinates.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn coord(out: &mut Vec<u8>, c: &Coord, z: bool) {
    out.extend_from_slice(&c.x.to_le_bytes());
    out.extend_from_slice(&c.y.to_le_bytes());
    if z {
        out.extend_from_slice(&c.z.unwrap_or(0.0).to_le_bytes());
    }
}

fn line(out: &mut Vec<u8>, l: &Line, z: bool) {
    count(out, l.len());
    for c in l {
        coord(out, c, z);
    }
}

fn polygon(out: &mut Vec<u8>, rings: &[Line], z: bool) {
    count(out, rings.len());
    for r in rings {
        line(out, r, z);
    }
}

/// Decodes one WKB geometry occupying all of `bytes`.
pub fn read(bytes: &[u8]) -> Result<Geometry, GeometryError> {
    let mut r = Reader { bytes, pos: 0 };
    let g = r.geometry()?;
    if r.pos != bytes.len() {
        return Err(r.err(format!("{} trailing bytes", bytes.len() - r.pos)));
    }
    Ok(g)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
struct Head {
    le: bool,
    ty: u32,
    z: bool,
    m: bool,
}

impl Reader<'_> {
    fn err(&self, message: String) -> GeometryError {
        GeometryError::Malformed { format: "WKB", offset: self.pos, message }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], GeometryError> {
        let end = self.pos + N;
        let slice = self.bytes.get(self.pos..end).ok_or_else(|| self.err("unexpected end".into()))?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(slice);
        Ok(a)
    }

    fn u32(&mut self, le: bool) -> Result<u32, GeometryError> {
        let b = self.take::<4>()?;
        Ok(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn f64(&mut self, le: bool) -> Result<f64, GeometryError> {
        let b = self.take::<8>()?;
        Ok(if le { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) })
    }

    fn head(&mut self) -> Result<Head, GeometryError> {
        let [order] = self.take::<1>()?;
        let le = match order {
            0 => false,
            1 => true,
            b => return Err(self.err(format!("byte order {b} is neither 0 nor 1"))),
        };
        let raw = self.u32(le)?;
        // EWKB flags (PostGIS) in the high bits, ISO dimension in the thousands.
        let (ewkb_z, ewkb_m, ewkb_srid) = (raw & 0x8000_0000 != 0, raw & 0x4000_0000 != 0, raw & 0x2000_0000 != 0);
        let base = raw & 0x0FFF_FFFF;
        if ewkb_srid {
            self.u32(le)?;
        }
        let (ty, iso_z, iso_m) = match base / 1000 {
            0 => (base, false, false),
            1 => (base - 1000, true, false),
            2 => (base - 2000, false, true),
            3 => (base - 3000, true, true),
            _ => return Err(self.err(format!("unknown geometry type code {raw}"))),
        };
        Ok(Head { le, ty, z: iso_z || ewkb_z, m: iso_m || ewkb_m })
    }

    fn coord(&mut self, h: Head) -> Result<Coord, GeometryError> {
        let x = self.f64(h.le)?;
        let y = self.f64(h.le)?;
        let z = if h.z { Some(self.f64(h.le)?) } else { None };
        if h.m {
            self.f64(h.le)?;
        }
        Ok(Coord { x, y, z })
    }

    fn len(&mut self, h: Head, min_item_bytes: usize) -> Result<usize, GeometryError> {
        let n = self.u32(h.le)? as usize;
        // Refuse counts the remaining bytes cannot hold, before allocating for them.
        if n.saturating_mul(min_item_bytes) > self.bytes.len() - self.pos {
            return Err(self.err(format!("count {n} exceeds the remaining {} bytes", self.bytes.len() - self.pos)));
        }
        Ok(n)
    }

    fn line(&mut self, h: Head) -> Result<Line, GeometryError> {
        let n = self.len(h, 16)?;
        (0..n).map(|_| self.coord(h)).collect()
    }

    fn rings(&mut self, h: Head) -> Result<Vec<Line>, GeometryError> {
        let n = self.len(h, 4)?;
        (0..n).map(|_| self.line(h)).collect()
    }

    fn part(&mut self, expected: u32) -> Result<Head, GeometryError> {
        let h = self.head()?;
        if h.ty != expected {
            return Err(self.err(format!("multi-geometry member of type {} where {expected} was expected", h.ty)));
        }
        Ok(h)
    }

    fn geometry(&mut self) -> Result<Geometry, GeometryError> {
        let h = self.head()?;
        match h.ty {
            1 => {
                let c = self.coord(h)?;
                if c.x.is_nan() && c.y.is_nan() {
                    return Err(GeometryError::Empty("Point"));
                }
                Ok(Geometry::Point(c))
            }
            2 => Ok(Geometry::LineString(self.line(h)?)),
            3 => Ok(Geometry::Polygon(self.rings(h)?)),
            4 => {
                let n = self.len(h, 21)?;
                let pts = (0..n)
                    .map(|_| {
                        let ph = self.part(1)?;
                        self.coord(ph)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Geometry::MultiPoint(pts))
            }
            5 => {
                let n = self.len(h, 9)?;
                let ls = (0..n)
                    .map(|_| {
                        let ph = self.part(2)?;
                        self.line(ph)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Geometry::MultiLineString(ls))
            }
            6 => {
                let n = self.len(h, 9)?;
                let ps = (0..n)
                    .map(|_| {
                        let ph = self.part(3)?;
                        self.rings(ph)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Geometry::MultiPolygon(ps))
            }
            7 => Err(GeometryError::Unsupported("GeometryCollection".into())),
            other => Err(GeometryError::Unsupported(format!("WKB type {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coord(z: bool) -> impl Strategy<Value = Coord> + Clone {
        (-180.0..180.0f64, -90.0..90.0f64, -100.0..9000.0f64).prop_map(move |(x, y, h)| Coord {
            x,
            y,
            z: z.then_some(h),
        })
    }

    fn geometry() -> impl Strategy<Value = Geometry> {
        any::<bool>().prop_flat_map(|z| {
            let line = || prop::collection::vec(coord(z), 2..6);
            let ring = move || {
                prop::collection::vec(coord(z), 3..6).prop_map(|mut r| {
                    r.push(r[0]);
                    r
                })
            };
            let rings = move || prop::collection::vec(ring(), 1..3);
            prop_oneof![
                coord(z).prop_map(Geometry::Point),
                line().prop_map(Geometry::LineString),
                rings().prop_map(Geometry::Polygon),
                prop::collection::vec(coord(z), 1..4).prop_map(Geometry::MultiPoint),
                prop::collection::vec(line(), 1..3).prop_map(Geometry::MultiLineString),
                prop::collection::vec(rings(), 1..3).prop_map(Geometry::MultiPolygon),
            ]
        })
    }

    proptest! {
        #[test]
        fn wkb_round_trips(g in geometry()) {
            prop_assert_eq!(read(&to_vec(&g)).unwrap(), g);
        }

        #[test]
        fn truncated_wkb_is_an_error_not_a_panic(g in geometry(), cut in 0usize..200) {
            let bytes = to_vec(&g);
            let cut = cut.min(bytes.len().saturating_sub(1));
            prop_assert!(read(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn reads_big_endian_and_ewkb() {
        // POINT(1 2) big-endian
        let mut be = vec![0u8];
        be.extend_from_slice(&1u32.to_be_bytes());
        be.extend_from_slice(&1f64.to_be_bytes());
        be.extend_from_slice(&2f64.to_be_bytes());
        assert_eq!(read(&be).unwrap(), Geometry::Point(Coord::xy(1., 2.)));
        // EWKB POINT Z with SRID
        let mut ew = vec![1u8];
        ew.extend_from_slice(&(1u32 | 0x8000_0000 | 0x2000_0000).to_le_bytes());
        ew.extend_from_slice(&4490u32.to_le_bytes());
        for v in [1f64, 2., 3.] {
            ew.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(read(&ew).unwrap(), Geometry::Point(Coord::xyz(1., 2., 3.)));
    }

    #[test]
    fn absurd_counts_are_refused_before_allocation() {
        let mut b = vec![1u8];
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&b).unwrap_err().to_string().contains("exceeds"));
    }
}
