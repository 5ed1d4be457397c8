//! GeoPackage binary geometry (GeoPackage 1.4 §2.1.3): a small header (magic `GP`, flags, SRS id,
//! optional envelope) in front of ISO WKB. Both the central store and device replicas are
//! GeoPackages, so this encoding is what every stored geometry looks like on disk.

use crate::error::GeometryError;
use crate::geometry::{Bbox, Geometry};
use crate::wkb;

/// Encodes `g` with SRS id `srs_id`. Points carry no envelope (their bbox is the point, as GDAL
/// does); everything else carries an XY envelope so spatial indexes never decode the WKB.
pub fn encode(g: &Geometry, srs_id: i32) -> Vec<u8> {
    let env = match g {
        Geometry::Point(_) => None,
        _ => g.bbox(),
    };
    let mut out = Vec::with_capacity(8 + if env.is_some() { 32 } else { 0 } + 21 + 16 * g.coord_count());
    out.extend_from_slice(b"GP");
    out.push(0); // version 1
    let envelope_code: u8 = if env.is_some() { 1 } else { 0 };
    out.push((envelope_code << 1) | 1); // little-endian header, standard GeoPackageBinary
    out.extend_from_slice(&srs_id.to_le_bytes());
    if let Some(b) = env {
        for v in [b.min_x, b.max_x, b.min_y, b.max_y] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    wkb::write(g, &mut out);
    out
}

/// The parts of a header we use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub srs_id: i32,
    pub empty: bool,
    pub envelope: Option<Bbox>,
    /// Offset of the WKB after the header.
    pub wkb_offset: usize,
}

fn malformed(offset: usize, message: impl Into<String>) -> GeometryError {
    GeometryError::Malformed { format: "GeoPackage geometry", offset, message: message.into() }
}

/// Parses the header of a GeoPackage geometry blob.
pub fn header(blob: &[u8]) -> Result<Header, GeometryError> {
    if blob.len() < 8 || &blob[0..2] != b"GP" {
        return Err(malformed(0, "missing `GP` magic"));
    }
    let flags = blob[3];
    if flags & 0b0010_0000 != 0 {
        return Err(malformed(3, "extended GeoPackage geometry types are not supported"));
    }
    let le = flags & 1 == 1;
    let empty = flags & 0b0001_0000 != 0;
    let env_doubles = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 4,
        2 | 3 => 6,
        4 => 8,
        c => return Err(malformed(3, format!("envelope code {c} is invalid"))),
    };
    let srs = [blob[4], blob[5], blob[6], blob[7]];
    let srs_id = if le { i32::from_le_bytes(srs) } else { i32::from_be_bytes(srs) };
    let wkb_offset = 8 + env_doubles * 8;
    if blob.len() < wkb_offset {
        return Err(malformed(8, "envelope truncated"));
    }
    let read = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&blob[8 + i * 8..16 + i * 8]);
        if le { f64::from_le_bytes(a) } else { f64::from_be_bytes(a) }
    };
    let envelope = (env_doubles > 0).then(|| Bbox { min_x: read(0), max_x: read(1), min_y: read(2), max_y: read(3) });
    Ok(Header { srs_id, empty, envelope, wkb_offset })
}

/// Decodes a blob into its SRS id and geometry (`None` for an empty geometry).
pub fn decode(blob: &[u8]) -> Result<(i32, Option<Geometry>), GeometryError> {
    let h = header(blob)?;
    if h.empty {
        return Ok((h.srs_id, None));
    }
    match wkb::read(&blob[h.wkb_offset..]) {
        Ok(g) => Ok((h.srs_id, Some(g))),
        Err(GeometryError::Empty(_)) => Ok((h.srs_id, None)),
        Err(GeometryError::Malformed { format, offset, message }) => {
            Err(GeometryError::Malformed { format, offset: offset + h.wkb_offset, message })
        }
        Err(e) => Err(e),
    }
}

/// The envelope of a blob, from its header when present, otherwise by decoding (points).
/// `None` for empty geometries. This is what the R-tree triggers' `ST_MinX` family call.
pub fn envelope(blob: &[u8]) -> Result<Option<Bbox>, GeometryError> {
    let h = header(blob)?;
    if h.empty {
        return Ok(None);
    }
    if let Some(e) = h.envelope {
        return Ok(Some(e));
    }
    Ok(decode(blob)?.1.and_then(|g| g.bbox()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Coord;

    #[test]
    fn round_trip_with_envelope() {
        let line = Geometry::LineString(vec![Coord::xy(114.1, 30.2), Coord::xy(114.5, 30.7)]);
        let blob = encode(&line, 4490);
        let h = header(&blob).unwrap();
        assert_eq!(h.srs_id, 4490);
        assert_eq!(h.envelope.unwrap().max_y, 30.7);
        assert_eq!(decode(&blob).unwrap(), (4490, Some(line)));
        let pt = Geometry::Point(Coord::xy(114.3, 30.5));
        assert_eq!(envelope(&encode(&pt, 4490)).unwrap().unwrap().min_x, 114.3);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"XX\0\x01\0\0\0\0").is_err());
        assert!(decode(b"GP").is_err());
        let mut blob = encode(&Geometry::Point(Coord::xy(1., 2.)), 4490);
        blob.truncate(blob.len() - 3);
        assert!(decode(&blob).unwrap_err().to_string().contains("byte"));
    }
}
