//! Shapefiles, usually handed over zipped (`.shp` + `.shx` + `.dbf` + `.prj` + `.cpg`).
//!
//! Attribute text in Chinese shapefiles is mostly GBK (ArcGIS default on Chinese Windows) and
//! sometimes UTF-8; the `.cpg` file says which when present. Without one we try UTF-8 and fall
//! back to GB18030. The CRS comes from the `.prj` WKT, recognised by name for the frames shikong
//! supports.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use dbase::{FieldType as DbfType, FieldValue};
use geo::Contains;
use shikong_model::{Coord, Crs, FieldType, Geometry, GeometryKind, Value, geometry::Line};

use crate::error::{FormatError, Location, Result};
use crate::limits::{Bounded, Exceeded, Limit, Limits, check_vertices, exceeded_in};
use crate::{Progress, RawValue, Record, Source, SourceOptions};

pub(crate) struct ShapefileSource {
    name: String,
    shp: Vec<u8>,
    shx: Option<Vec<u8>>,
    dbf: Vec<u8>,
    encoding: Option<&'static encoding_rs::Encoding>,
    crs: Crs,
    fields: Vec<(String, FieldType)>,
    kind: Option<GeometryKind>,
    progress: Progress,
    limits: Limits,
}

const PARTS: [&str; 5] = ["shp", "shx", "dbf", "prj", "cpg"];

/// The most a part may take: a line of text for `.prj`/`.cpg`, the Shapefile budget otherwise.
fn part_limit(ext: &str, limits: &Limits) -> u64 {
    if ext == "prj" || ext == "cpg" { limits.sidecar_bytes.min(limits.zip_bytes) } else { limits.zip_bytes }
}

/// The Shapefile parts in a zip. Declared sizes are checked before anything is inflated, and
/// every part is inflated through a [`Bounded`] reader (a lying header stops at the budget).
fn read_zip(path: &Path, name: &str, limits: &Limits) -> Result<HashMap<String, Vec<u8>>> {
    let file = std::fs::File::open(path).map_err(|e| FormatError::file(name, e.to_string()))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| FormatError::file(name, format!("not a readable zip: {e}")))?;
    if zip.len() as u64 > limits.zip_entries {
        let x = Exceeded::declared(Limit::ZipEntries, "the zip", zip.len() as u64, limits.zip_entries);
        return Err(FormatError::exceeded(name, None, x));
    }
    let part = |entry_name: &str| -> Option<(String, String, String)> {
        let lower = entry_name.to_lowercase();
        let (stem, ext) = lower.rsplit_once('.')?;
        (PARTS.contains(&ext) && !lower.starts_with("__macosx/"))
            .then(|| (lower.clone(), stem.to_owned(), ext.to_owned()))
    };
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| FormatError::file(name, e.to_string()))?;
        let entry_name = crate::limits::zip_entry_name(entry.name_raw());
        let Some((_, _, ext)) = part(&entry_name) else { continue };
        let max = part_limit(&ext, limits);
        if entry.size() > max {
            let what = format!("zip entry `{entry_name}` (uncompressed size)");
            return Err(FormatError::exceeded(
                name,
                None,
                Exceeded::declared(Limit::DecompressedBytes, what, entry.size(), max),
            ));
        }
        declared = declared.saturating_add(entry.size());
    }
    if declared > limits.zip_bytes {
        let x = Exceeded::declared(
            Limit::DecompressedBytes,
            "the shapefile parts together (uncompressed sizes)",
            declared,
            limits.zip_bytes,
        );
        return Err(FormatError::exceeded(name, None, x));
    }
    let mut parts = HashMap::new();
    let mut stems = Vec::new();
    let mut inflated = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| FormatError::file(name, e.to_string()))?;
        let entry_name = crate::limits::zip_entry_name(entry.name_raw());
        let Some((lower, stem, ext)) = part(&entry_name) else { continue };
        if ext == "shp" {
            stems.push(stem);
        }
        let max = part_limit(&ext, limits).min(limits.zip_bytes - inflated);
        let mut bytes = Vec::new();
        let mut r = Bounded::new(entry, Limit::DecompressedBytes, format!("zip entry `{entry_name}` (inflated)"), max);
        r.read_to_end(&mut bytes).map_err(|e| match exceeded_in(&e) {
            Some(x) => FormatError::exceeded(name, None, x.clone()),
            None => FormatError::file(name, format!("{entry_name}: {e}")),
        })?;
        inflated += bytes.len() as u64;
        parts.insert(lower, bytes);
    }
    match stems.as_slice() {
        [_] => Ok(parts),
        [] => Err(FormatError::file(name, "the zip holds no .shp file")),
        many => Err(FormatError::file(
            name,
            format!("the zip holds {} shapefiles ({}); import them one at a time", many.len(), many.join(", ")),
        )),
    }
}

fn read_siblings(path: &Path, name: &str, limits: &Limits) -> Result<HashMap<String, Vec<u8>>> {
    let mut parts = HashMap::new();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_lowercase();
    let dir = path.parent().unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(dir).map_err(|e| FormatError::file(name, e.to_string()))?;
    let mut total = 0u64;
    for entry in entries.flatten() {
        let p = entry.path();
        let Some(file) = p.file_name().and_then(|f| f.to_str()).map(str::to_lowercase) else { continue };
        if let Some((s, ext)) = file.rsplit_once('.')
            && s == stem
            && PARTS.contains(&ext)
        {
            let f = std::fs::File::open(&p).map_err(|e| FormatError::file(name, format!("{file}: {e}")))?;
            let max = part_limit(ext, limits).min(limits.zip_bytes - total);
            let mut bytes = Vec::new();
            Bounded::new(f, Limit::DecompressedBytes, format!("`{file}`"), max)
                .read_to_end(&mut bytes)
                .map_err(|e| FormatError::io(name, None, &e))?;
            total += bytes.len() as u64;
            parts.insert(file, bytes);
        }
    }
    Ok(parts)
}

/// Recognises the CRS of a `.prj` (ESRI WKT1) by the names ArcGIS and GDAL write.
fn crs_from_prj(prj: &str) -> Option<Crs> {
    let p = prj.to_lowercase();
    let projected = p.starts_with("projcs");
    if !projected {
        if p.contains("cgcs2000") || p.contains("china_2000") || p.contains("china geodetic coordinate system 2000") {
            return Some(Crs::CGCS2000);
        }
        if p.contains("wgs_1984") || p.contains("wgs 84") || p.contains("wgs_84") {
            return Some(Crs::WGS84);
        }
        return None;
    }
    if p.contains("pseudo-mercator") || p.contains("web_mercator") || p.contains("pseudo_mercator") {
        return Some(Crs::WEB_MERCATOR);
    }
    if !(p.contains("cgcs2000") || p.contains("china_2000"))
        || !p.contains("transverse_mercator") && !p.contains("gauss")
    {
        return None;
    }
    let num = |key: &str| -> Option<f64> {
        let i = p.find(key)?;
        let rest = &p[i + key.len()..];
        let start = rest.find(',')? + 1;
        let end = rest[start..].find(']')? + start;
        rest[start..end].trim().parse().ok()
    };
    let cm = num("\"central_meridian\"")?;
    let fe = num("\"false_easting\"")?;
    let cm_i = cm.round() as i32;
    let three = p.contains("3_degree") || p.contains("3-degree") || cm_i % 6 != 3;
    let code = match (three, fe > 1_000_000.0) {
        (true, true) => 4513 + (cm_i / 3 - 25),
        (true, false) => 4534 + (cm_i - 75) / 3,
        (false, true) => 4491 + ((cm_i + 3) / 6 - 13),
        (false, false) => 4502 + (cm_i - 75) / 6,
    };
    u32::try_from(code).ok().filter(|c| Crs::is_supported_epsg(*c)).map(Crs::Epsg)
}

impl ShapefileSource {
    pub(crate) fn open(path: &Path, opts: &SourceOptions) -> Result<Self> {
        let name = path.display().to_string();
        let is_zip = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        let mut parts =
            if is_zip { read_zip(path, &name, &opts.limits)? } else { read_siblings(path, &name, &opts.limits)? };
        // Moved out, not copied: the parts can be gigabytes.
        let mut take = |ext: &str| {
            let key = parts.keys().find(|k| k.ends_with(&format!(".{ext}"))).cloned()?;
            parts.remove(&key)
        };
        let shp = take("shp").ok_or_else(|| FormatError::file(&name, "missing .shp"))?;
        let dbf = take("dbf").ok_or_else(|| FormatError::file(&name, "missing .dbf (attributes)"))?;
        let encoding = match (&opts.encoding, take("cpg")) {
            (Some(label), _) => Some(
                encoding_rs::Encoding::for_label(label.as_bytes())
                    .ok_or_else(|| FormatError::file(&name, format!("unknown text encoding `{label}`")))?,
            ),
            (None, Some(cpg)) => {
                let label = String::from_utf8_lossy(&cpg).trim().to_owned();
                let label = match label.as_str() {
                    "936" | "CP936" => "GBK",
                    "65001" => "UTF-8",
                    other => other,
                };
                encoding_rs::Encoding::for_label(label.as_bytes())
            }
            (None, None) => None,
        };
        let crs = match (opts.crs, take("prj")) {
            (Some(c), _) => c,
            (None, Some(prj)) => crs_from_prj(&String::from_utf8_lossy(&prj)).ok_or_else(|| {
                FormatError::file(
                    &name,
                    "the .prj names a CRS shikong does not recognise; pass it explicitly (--crs EPSG:…)",
                )
            })?,
            (None, None) => {
                return Err(FormatError::file(&name, "no .prj file: pass the CRS explicitly (--crs EPSG:4490)"));
            }
        };
        let mut s = ShapefileSource {
            name,
            shp,
            shx: take("shx"),
            dbf,
            encoding,
            crs,
            fields: Vec::new(),
            kind: None,
            progress: Progress::default(),
            limits: opts.limits.clone(),
        };
        let dbf_reader = s.dbf_reader(s.encoding.unwrap_or(encoding_rs::UTF_8))?;
        let fields = dbf_reader
            .fields()
            .iter()
            .filter(|f| !f.name().eq_ignore_ascii_case("DeletionFlag"))
            .map(|f| {
                let ty = match f.field_type() {
                    DbfType::Character | DbfType::Memo => FieldType::Text,
                    DbfType::Integer => FieldType::Integer,
                    DbfType::Numeric | DbfType::Float | DbfType::Double | DbfType::Currency => FieldType::Real,
                    DbfType::Logical => FieldType::Bool,
                    DbfType::Date => FieldType::Date,
                    DbfType::DateTime => FieldType::DateTime,
                };
                (f.name().to_owned(), ty)
            })
            .collect();
        drop(dbf_reader);
        s.fields = fields;
        let header = *shapefile::ShapeReader::new(Cursor::new(&s.shp))
            .map_err(|e| FormatError::file(&s.name, format!(".shp header: {e}")))?
            .header();
        s.kind = match header.shape_type {
            shapefile::ShapeType::Point | shapefile::ShapeType::PointM | shapefile::ShapeType::PointZ => {
                Some(GeometryKind::Point)
            }
            shapefile::ShapeType::Polyline | shapefile::ShapeType::PolylineM | shapefile::ShapeType::PolylineZ => {
                Some(GeometryKind::MultiLineString)
            }
            shapefile::ShapeType::Polygon | shapefile::ShapeType::PolygonM | shapefile::ShapeType::PolygonZ => {
                Some(GeometryKind::MultiPolygon)
            }
            shapefile::ShapeType::Multipoint
            | shapefile::ShapeType::MultipointM
            | shapefile::ShapeType::MultipointZ => Some(GeometryKind::MultiPoint),
            _ => None,
        };
        Ok(s)
    }

    fn dbf_reader(&self, enc: &'static encoding_rs::Encoding) -> Result<dbase::Reader<Cursor<&[u8]>>> {
        dbase::ReaderBuilder::new()
            .with_encoding(dbase::encoding::EncodingRs::from(enc))
            .build(Cursor::new(self.dbf.as_slice()))
            .map_err(|e| FormatError::file(&self.name, format!(".dbf: {e}")))
    }

    fn read_with(
        &mut self,
        enc: &'static encoding_rs::Encoding,
        on_record: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let shapes = match &self.shx {
            Some(shx) => {
                shapefile::ShapeReader::with_shx(Cursor::new(self.shp.as_slice()), Cursor::new(shx.as_slice()))
            }
            None => shapefile::ShapeReader::new(Cursor::new(self.shp.as_slice())),
        }
        .map_err(|e| FormatError::file(&self.name, format!(".shp: {e}")))?;
        let total = shapes.shape_count().unwrap_or(0) as u64;
        self.progress = Progress::new(total);
        let dbf = self.dbf_reader(enc)?;
        let mut reader = shapefile::Reader::new(shapes, dbf);
        for (i, item) in reader.iter_shapes_and_records().enumerate() {
            let at = Location::Feature(i + 1);
            let (shape, mut rec) = item.map_err(|e| FormatError::at(&self.name, at, e.to_string()))?;
            let geometry = convert(shape).map_err(|m| FormatError::at(&self.name, at, m))?;
            if let Some(g) = &geometry {
                check_vertices(g, self.limits.geometry_vertices, "the shape")
                    .map_err(|x| FormatError::exceeded(&self.name, Some(at), x))?;
            }
            let mut properties = Vec::with_capacity(self.fields.len());
            for (name, _) in &self.fields {
                let v = match rec.remove(name) {
                    None => Value::Null,
                    Some(FieldValue::Character(s)) => s.map_or(Value::Null, Value::Text),
                    Some(FieldValue::Memo(s)) => Value::Text(s),
                    Some(FieldValue::Numeric(n)) => n.map_or(Value::Null, Value::Real),
                    Some(FieldValue::Float(n)) => n.map_or(Value::Null, |f| Value::Real(f64::from(f))),
                    Some(FieldValue::Double(f) | FieldValue::Currency(f)) => Value::Real(f),
                    Some(FieldValue::Integer(n)) => Value::Integer(i64::from(n)),
                    Some(FieldValue::Logical(b)) => b.map_or(Value::Null, Value::Bool),
                    Some(FieldValue::Date(Some(d))) => {
                        jiff::civil::Date::new(d.year() as i16, d.month() as i8, d.day() as i8)
                            .map(Value::Date)
                            .map_err(|e| FormatError::at(&self.name, at, e.to_string()).field(name))?
                    }
                    Some(FieldValue::Date(None)) => Value::Null,
                    Some(FieldValue::DateTime(_)) => Value::Null,
                };
                properties.push((name.clone(), RawValue::Typed(v)));
            }
            on_record(Record { location: at, geometry, properties })?;
            self.progress.set(i as u64 + 1);
        }
        Ok(())
    }
}

fn no_z<T>(_: &T) -> Option<f64> {
    None
}

fn pt(x: f64, y: f64, z: Option<f64>) -> Coord {
    Coord { x, y, z }
}

/// Shapefile polygons are flat lists of rings (outer clockwise, holes counter-clockwise); holes
/// belong to the outer ring that contains them.
fn polygon(rings: Vec<(bool, Line)>) -> std::result::Result<Geometry, String> {
    let mut polys: Vec<Vec<Line>> = Vec::new();
    let mut holes = Vec::new();
    for (outer, ring) in rings {
        if outer {
            polys.push(vec![ring]);
        } else {
            holes.push(ring);
        }
    }
    for hole in holes {
        let probe = geo::Point::new(hole[0].x, hole[0].y);
        let owner = polys.iter_mut().find(|p| {
            let ls = geo::LineString(p[0].iter().map(|c| geo::coord! { x: c.x, y: c.y }).collect());
            geo::Polygon::new(ls, vec![]).contains(&probe)
        });
        match owner {
            Some(p) => p.push(hole),
            None => return Err("a polygon hole lies outside every outer ring".into()),
        }
    }
    Ok(match polys.len() {
        0 => return Err("a polygon without an outer ring".into()),
        _ => Geometry::MultiPolygon(polys),
    })
}

fn convert(shape: shapefile::Shape) -> std::result::Result<Option<Geometry>, String> {
    use shapefile::{PolygonRing, Shape};
    macro_rules! rings {
        ($p:expr, $z:expr) => {
            polygon(
                $p.into_inner()
                    .into_iter()
                    .map(|r| match r {
                        PolygonRing::Outer(v) => (true, v.into_iter().map(|q| pt(q.x, q.y, $z(&q))).collect()),
                        PolygonRing::Inner(v) => (false, v.into_iter().map(|q| pt(q.x, q.y, $z(&q))).collect()),
                    })
                    .collect(),
            )
            .map(Some)
        };
    }
    macro_rules! lines {
        ($p:expr, $z:expr) => {
            Ok(Some(Geometry::MultiLineString(
                $p.into_inner()
                    .into_iter()
                    .map(|part| part.into_iter().map(|q| pt(q.x, q.y, $z(&q))).collect())
                    .collect(),
            )))
        };
    }
    match shape {
        Shape::NullShape => Ok(None),
        Shape::Point(p) => Ok(Some(Geometry::Point(pt(p.x, p.y, None)))),
        Shape::PointM(p) => Ok(Some(Geometry::Point(pt(p.x, p.y, None)))),
        Shape::PointZ(p) => Ok(Some(Geometry::Point(pt(p.x, p.y, Some(p.z))))),
        Shape::Polyline(p) => lines!(p, no_z),
        Shape::PolylineM(p) => lines!(p, no_z),
        Shape::PolylineZ(p) => lines!(p, |q: &shapefile::PointZ| Some(q.z)),
        Shape::Polygon(p) => rings!(p, no_z),
        Shape::PolygonM(p) => rings!(p, no_z),
        Shape::PolygonZ(p) => rings!(p, |q: &shapefile::PointZ| Some(q.z)),
        Shape::Multipoint(p) => {
            Ok(Some(Geometry::MultiPoint(p.into_inner().into_iter().map(|q| pt(q.x, q.y, None)).collect())))
        }
        Shape::MultipointM(p) => {
            Ok(Some(Geometry::MultiPoint(p.into_inner().into_iter().map(|q| pt(q.x, q.y, None)).collect())))
        }
        Shape::MultipointZ(p) => {
            Ok(Some(Geometry::MultiPoint(p.into_inner().into_iter().map(|q| pt(q.x, q.y, Some(q.z))).collect())))
        }
        Shape::Multipatch(_) => Err("multipatch shapes are not supported".into()),
    }
}

impl Source for ShapefileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn declared_fields(&self) -> Option<Vec<(String, FieldType)>> {
        Some(self.fields.clone())
    }

    fn declared_kind(&self) -> Option<GeometryKind> {
        self.kind
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        if let Some(enc) = self.encoding {
            return self.read_with(enc, on_record);
        }
        // No .cpg: UTF-8 when every text decodes, otherwise GB18030. Decide before emitting
        // anything, so the callback never sees a record twice.
        let utf8_ok = self.read_with(encoding_rs::UTF_8, &mut |_| Ok(())).is_ok();
        let enc = if utf8_ok { encoding_rs::UTF_8 } else { encoding_rs::GB18030 };
        self.encoding = Some(enc);
        self.read_with(enc, on_record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prj_recognition() {
        let cgcs = r#"GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;
        assert_eq!(crs_from_prj(cgcs), Some(Crs::CGCS2000));
        let wgs = r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;
        assert_eq!(crs_from_prj(wgs), Some(Crs::WGS84));
        let gk = r#"PROJCS["CGCS2000_3_Degree_GK_CM_114E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",114.0],PARAMETER["Scale_Factor",1.0],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]"#;
        assert_eq!(crs_from_prj(gk), Some(Crs::Epsg(4547)));
        let gk38 = gk.replace("500000.0", "38500000.0");
        assert_eq!(crs_from_prj(&gk38), Some(Crs::Epsg(4526)));
        assert_eq!(crs_from_prj(r#"PROJCS["Beijing_1954_GK_Zone_20",GEOGCS["GCS_Beijing_1954"]]"#), None);
    }
}
