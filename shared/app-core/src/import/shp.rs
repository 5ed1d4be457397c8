//! Export of a layer as a zipped Shapefile (`.shp`, `.shx`, `.dbf`, `.cpg` = UTF-8, `.prj` =
//! CGCS2000), what GIS desktops and older systems still ask for. dBase limits what a column can be:
//! names of at most 10 bytes (Chinese names are cut by characters and kept unique), text of at
//! most 254 bytes (cut by characters), numbers as numeric columns, everything else as text.
//! Features without a geometry are left out (a Shapefile has one shape type).

use std::io::Write as _;
use std::path::Path;

use shikong_model::{FieldType, Geometry, GeometryKind, Value};
use shikong_replica::ReplicaFeature;

use crate::AppError;

const PRJ_CGCS2000: &str = r#"GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;

/// Longest dBase column name, in bytes.
const NAME_BYTES: usize = 10;
/// Longest dBase text cell, in bytes.
const TEXT_BYTES: usize = 254;

/// `s` cut at a character boundary to at most `max` bytes.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > max {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// dBase column names for `names`: cut to [`NAME_BYTES`] and made unique with a number.
pub(crate) fn column_names(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let mut name = cut(n, NAME_BYTES).to_owned();
        let mut k = 1;
        while out.iter().any(|o| o.eq_ignore_ascii_case(&name)) {
            let suffix = format!("_{k}");
            name = format!("{}{suffix}", cut(n, NAME_BYTES - suffix.len()));
            k += 1;
        }
        out.push(name);
    }
    out
}

/// The columns: `(name in the file, field name, type)`.
type Columns = Vec<(String, String, FieldType)>;

fn shape_of(g: &Geometry) -> Option<shapefile::Shape> {
    use shapefile::{Point, PolygonRing, Shape};
    let pts = |l: &[shikong_model::Coord]| l.iter().map(|c| Point::new(c.x, c.y)).collect::<Vec<_>>();
    Some(match g {
        Geometry::Point(c) => Shape::Point(Point::new(c.x, c.y)),
        Geometry::MultiPoint(cs) => Shape::Multipoint(shapefile::Multipoint::new(pts(cs))),
        Geometry::LineString(l) => Shape::Polyline(shapefile::Polyline::new(pts(l))),
        Geometry::MultiLineString(ls) => {
            Shape::Polyline(shapefile::Polyline::with_parts(ls.iter().map(|l| pts(l)).collect()))
        }
        Geometry::Polygon(rings) => Shape::Polygon(shapefile::Polygon::with_rings(
            rings
                .iter()
                .enumerate()
                .map(|(i, r)| if i == 0 { PolygonRing::Outer(pts(r)) } else { PolygonRing::Inner(pts(r)) })
                .collect(),
        )),
        Geometry::MultiPolygon(polys) => Shape::Polygon(shapefile::Polygon::with_rings(
            polys
                .iter()
                .flat_map(|p| {
                    p.iter()
                        .enumerate()
                        .map(|(i, r)| if i == 0 { PolygonRing::Outer(pts(r)) } else { PolygonRing::Inner(pts(r)) })
                })
                .collect(),
        )),
    })
}

/// Writes `features` as a zipped Shapefile at `path`; answers the features written.
pub(crate) fn write_zip(
    path: &Path,
    layer: &str,
    kind: GeometryKind,
    fields: &[(String, FieldType)],
    features: &[ReplicaFeature],
    tick: &mut dyn FnMut(usize),
) -> Result<u64, AppError> {
    let name = path.display().to_string();
    let fail = |m: String| AppError::input("export", format!("{name}: {m}"));
    if kind == GeometryKind::Geometry {
        return Err(fail(
            "a layer of mixed geometry types cannot be one Shapefile; export GeoPackage or GeoJSON".into(),
        ));
    }
    let mut names = vec!["entity_id".to_owned(), "code".to_owned()];
    names.extend(fields.iter().map(|f| f.0.clone()));
    let mut cols: Columns =
        column_names(&names).into_iter().zip(names.iter().cloned()).map(|(c, n)| (c, n, FieldType::Text)).collect();
    for (c, f) in cols.iter_mut().skip(2).zip(fields) {
        c.2 = f.1;
    }
    let mut builder = dbase::TableWriterBuilder::with_encoding(dbase::Unicode);
    for (c, _, ty) in &cols {
        let field = dbase::FieldName::try_from(c.as_str()).map_err(|e| fail(format!("column `{c}`: {e}")))?;
        builder = match ty {
            FieldType::Integer => builder.add_numeric_field(field, 20, 0),
            FieldType::Real => builder.add_numeric_field(field, 20, 8),
            _ => builder.add_character_field(field, TEXT_BYTES as u8),
        };
    }
    let tmp = path.with_extension("shp-tmp");
    std::fs::create_dir_all(&tmp).map_err(AppError::io(&tmp))?;
    let shp = tmp.join(format!("{layer}.shp"));
    let result = (|| {
        let mut w = shapefile::Writer::from_path(&shp, builder).map_err(|e| fail(e.to_string()))?;
        let mut n = 0u64;
        for (i, f) in features.iter().enumerate() {
            let Some(shape) = f.feature.geometry.as_ref().and_then(shape_of) else { continue };
            let mut rec = dbase::Record::default();
            for (k, (c, field, ty)) in cols.iter().enumerate() {
                let v = match k {
                    0 => dbase::FieldValue::Character(Some(f.feature.id.to_string())),
                    1 => dbase::FieldValue::Character(Some(f.feature.code.clone())),
                    _ => match (ty, f.feature.properties.get(field)) {
                        (_, None | Some(Value::Null)) if matches!(ty, FieldType::Integer | FieldType::Real) => {
                            dbase::FieldValue::Numeric(None)
                        }
                        (_, None | Some(Value::Null)) => dbase::FieldValue::Character(None),
                        (FieldType::Integer, Some(Value::Integer(x))) => dbase::FieldValue::Numeric(Some(*x as f64)),
                        (FieldType::Real, Some(Value::Real(x))) => dbase::FieldValue::Numeric(Some(*x)),
                        (_, Some(Value::Attachments(a))) => {
                            dbase::FieldValue::Character(Some(cut(&a.join(","), TEXT_BYTES).to_owned()))
                        }
                        (_, Some(v)) => dbase::FieldValue::Character(Some(cut(&v.to_text(), TEXT_BYTES).to_owned())),
                    },
                };
                rec.insert(c.clone(), v);
            }
            let written = match shape {
                shapefile::Shape::Point(p) => w.write_shape_and_record(&p, &rec),
                shapefile::Shape::Multipoint(p) => w.write_shape_and_record(&p, &rec),
                shapefile::Shape::Polyline(p) => w.write_shape_and_record(&p, &rec),
                shapefile::Shape::Polygon(p) => w.write_shape_and_record(&p, &rec),
                _ => continue,
            };
            written.map_err(|e| fail(format!("feature {}: {e}", f.feature.code)))?;
            n += 1;
            tick(i);
        }
        drop(w);
        std::fs::write(tmp.join(format!("{layer}.cpg")), "UTF-8").map_err(AppError::io(&tmp))?;
        std::fs::write(tmp.join(format!("{layer}.prj")), PRJ_CGCS2000).map_err(AppError::io(&tmp))?;
        let out = std::fs::File::create(path).map_err(AppError::io(path))?;
        let mut zip = zip::ZipWriter::new(out);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for ext in ["shp", "shx", "dbf", "cpg", "prj"] {
            let part = tmp.join(format!("{layer}.{ext}"));
            let bytes = std::fs::read(&part).map_err(AppError::io(&part))?;
            zip.start_file(format!("{layer}.{ext}"), opts).map_err(|e| fail(e.to_string()))?;
            zip.write_all(&bytes).map_err(AppError::io(path))?;
        }
        zip.finish().map_err(|e| fail(e.to_string()))?;
        Ok(n)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbase_names_and_text_are_cut_by_characters() {
        assert_eq!(cut("所属道路", 10), "所属道");
        assert_eq!(cut("abc", 10), "abc");
        let names = column_names(&["所属道路名称".into(), "所属道路编号".into(), "entity_id".into()]);
        assert_eq!(names, ["所属道", "所属_1", "entity_id"]);
        assert!(names.iter().all(|n| n.len() <= NAME_BYTES));
    }
}
