//! Batch geocoding of tables users upload (CSV in UTF-8 or GBK, or the first sheet of an XLSX):
//! reading them, geocoding one column of every row, and writing the result as CSV (with a BOM for
//! Excel), GeoJSON or GeoPackage. A table that cannot be read fails with its file and row.

use std::collections::BTreeSet;
use std::path::Path;

use shikong_formats::{FormatError, Limits};
use shikong_geocoder::{GeocodeResult, Geocoder, Options};
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, Value};

use crate::error::{GazetteerError, Result};

/// The columns batch geocoding appends to each input row (one list with the desktop's import,
/// which reads them back: `shikong_formats::columns`).
pub const BATCH_COLUMNS: [&str; 13] = shikong_formats::columns::GEOCODER_COLUMNS;

/// The appended cells for one result.
pub fn result_cells(r: &GeocodeResult) -> Vec<String> {
    let c = &r.codes;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    vec![
        r.status.as_str().to_owned(),
        format!("{:.3}", r.score),
        r.level.map(|l| l.as_str().to_owned()).unwrap_or_default(),
        s(&c.province),
        s(&c.city),
        s(&c.county),
        s(&c.town),
        s(&c.village),
        r.standard_address.clone(),
        r.point.map(|p| format!("{:.7}", p.lon)).unwrap_or_default(),
        r.point.map(|p| format!("{:.7}", p.lat)).unwrap_or_default(),
        r.point.map(|p| format!("{:?}", p.source)).unwrap_or_default(),
        r.reason.as_ref().map(|x| x.message()).unwrap_or_default(),
    ]
}

/// A table to geocode: headers and rows of cells (from CSV or the first sheet of an XLSX).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Reads CSV (UTF-8 or GBK) or XLSX bytes within the upload limits ([`Limits::table`]) with
/// `shikong_formats::table`: a table over them is a [`GazetteerError::TooLarge`] naming the
/// limit (module `upload`). XLSX cells read as the sheet shows them (dates ISO 8601).
pub fn read_table(bytes: &[u8], name: &str) -> Result<Table> {
    crate::upload::read_table_with(bytes, name, &Limits::table())
}

/// Geocodes `column` of every row (the header named so, else one that matches it but for case,
/// spaces and a BOM: `shikong_formats::columns::position`); `progress(done, total)` now and then.
pub fn geocode_table(
    geo: &Geocoder,
    t: &Table,
    column: &str,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<GeocodeResult>> {
    let i = shikong_formats::columns::position(&t.headers, column)
        .ok_or_else(|| GazetteerError::NoColumn { column: column.to_owned(), columns: t.headers.clone() })?;
    let total = t.rows.len();
    let mut out = Vec::with_capacity(total);
    for (n, r) in t.rows.iter().enumerate() {
        out.push(geo.geocode(r.get(i).map_or("", String::as_str), opts));
        if n % 1000 == 0 {
            progress(n, total);
        }
    }
    progress(total, total);
    Ok(out)
}

/// The result table as CSV (input columns + [`BATCH_COLUMNS`]), with a BOM for Excel.
pub fn table_csv(t: &Table, results: &[GeocodeResult]) -> Result<Vec<u8>> {
    let fail =
        |e: &dyn std::fmt::Display| GazetteerError::Output(FormatError::file("result table (CSV)", e.to_string()));
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut h = t.headers.clone();
    h.extend(BATCH_COLUMNS.iter().map(|c| (*c).to_owned()));
    w.write_record(&h).map_err(|e| fail(&e))?;
    for (row, r) in t.rows.iter().zip(results) {
        let mut cells = row.clone();
        cells.resize(t.headers.len(), String::new());
        cells.extend(result_cells(r));
        w.write_record(&cells).map_err(|e| fail(&e))?;
    }
    w.into_inner().map_err(|e| fail(&e))
}

/// The result table as a GeoJSON FeatureCollection (rows without a point have null geometry).
pub fn table_geojson(t: &Table, results: &[GeocodeResult]) -> Vec<u8> {
    let feats: Vec<serde_json::Value> = t
        .rows
        .iter()
        .zip(results)
        .map(|(row, r)| {
            let mut props = serde_json::Map::new();
            for (h, v) in t.headers.iter().zip(row) {
                props.insert(h.clone(), serde_json::Value::String(v.clone()));
            }
            for (h, v) in BATCH_COLUMNS.iter().zip(result_cells(r)) {
                props.insert((*h).to_owned(), serde_json::Value::String(v));
            }
            let geometry = r.point.map_or(
                serde_json::Value::Null,
                |p| serde_json::json!({"type": "Point", "coordinates": [p.lon, p.lat]}),
            );
            serde_json::json!({"type": "Feature", "geometry": geometry, "properties": props})
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": feats}).to_string().into_bytes()
}

/// The result table as a GeoPackage (every column text, plus the point geometry in CGCS2000).
pub fn table_gpkg(t: &Table, results: &[GeocodeResult], path: &Path) -> Result<()> {
    let mut cols: Vec<FieldDef> = Vec::new();
    let mut seen = BTreeSet::new();
    for h in t.headers.iter().map(String::as_str).chain(BATCH_COLUMNS) {
        let mut name = h.to_owned();
        while !seen.insert(name.to_lowercase()) {
            name.push('_');
        }
        cols.push(FieldDef::new(name, FieldType::Text));
    }
    let mut w =
        shikong_formats::GpkgWriter::create(path, "geocoded", "geocoded", GeometryKind::Point, false, 4490, &cols)?;
    for (row, r) in t.rows.iter().zip(results) {
        let mut cells: Vec<Value> = row.iter().map(|c| Value::Text(c.clone())).collect();
        cells.resize(t.headers.len(), Value::Null);
        cells.extend(result_cells(r).into_iter().map(Value::Text));
        let g = r.point.map(|p| Geometry::Point(Coord::xy(p.lon, p.lat)));
        w.write(g.as_ref(), &cells)?;
    }
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use shikong_geocoder::{GazetteerBuilder, Level, Status};

    use super::*;

    fn geocoder() -> Geocoder {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        for (level, code, name) in [
            (Level::Province, "42", "湖北省"),
            (Level::City, "4201", "武汉市"),
            (Level::County, "420111", "洪山区"),
            (Level::Town, "420111001", "珞南街道"),
        ] {
            b.add_division(level, code, name, "test", 0).unwrap();
        }
        b.set_point("420111", 114.343, 30.499).unwrap();
        Geocoder::new(b.build().unwrap()).unwrap()
    }

    fn table(csv: &str) -> Table {
        read_table(csv.as_bytes(), "upload.csv").unwrap()
    }

    #[test]
    fn csv_in_utf8_with_bom_or_gbk() {
        let t = table("\u{feff}名称,地址\n井盖一,武汉市洪山区\n井盖二\n");
        assert_eq!(t.headers, ["名称", "地址"]);
        assert_eq!(t.rows, [vec!["井盖一", "武汉市洪山区"], vec!["井盖二"]]);
        let (gbk, _, _) = encoding_rs::GBK.encode("地址\n洪山区\n");
        let t = read_table(&gbk, "gbk.csv").unwrap();
        assert_eq!((t.headers, t.rows), (vec!["地址".to_owned()], vec![vec!["洪山区".to_owned()]]));
    }

    #[test]
    fn unreadable_tables_name_the_file() {
        let e = read_table(b"PK\x03\x04 not really a zip", "upload.xlsx").unwrap_err();
        assert!(e.is_bad_input());
        assert!(e.to_string().starts_with("upload.xlsx: not a readable XLSX"), "{e}");
    }

    #[test]
    fn the_address_column_is_found_as_headers_are_matched() {
        let t = table("名称, 地址 \n井盖一,武汉市洪山区珞南街道\n");
        let r = geocode_table(&geocoder(), &t, "地址", &Options::default(), &mut |_, _| {}).unwrap();
        assert_eq!(r[0].status, Status::Match);
    }

    #[test]
    fn a_missing_column_lists_the_columns() {
        let e =
            geocode_table(&geocoder(), &table("名称,地点\n"), "地址", &Options::default(), &mut |_, _| {}).unwrap_err();
        assert!(e.is_bad_input());
        assert_eq!(e.to_string(), "no column `地址` (columns: 名称, 地点)");
    }

    #[test]
    fn results_keep_the_input_columns_and_append_the_answer() {
        let t = table("名称,地址\n井盖一,武汉市洪山区珞南街道\n井盖二,\n");
        let mut seen = Vec::new();
        let results =
            geocode_table(&geocoder(), &t, "地址", &Options::default(), &mut |d, n| seen.push((d, n))).unwrap();
        assert_eq!(seen.last(), Some(&(2, 2)));
        assert_eq!(results.iter().map(|r| r.status).collect::<Vec<_>>(), [Status::Match, Status::NoMatch]);
        assert_eq!(results[0].codes.town.as_deref(), Some("420111001"));

        let csv = String::from_utf8(table_csv(&t, &results).unwrap()).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(format!("\u{feff}名称,地址,{}", BATCH_COLUMNS.join(",")).as_str()));
        assert!(lines.next().is_some_and(|l| l.starts_with("井盖一,武汉市洪山区珞南街道,match,")));
        assert!(lines.next().is_some_and(|l| l.starts_with("井盖二,,nomatch,")));

        let json: serde_json::Value = serde_json::from_slice(&table_geojson(&t, &results)).unwrap();
        assert_eq!(json["features"][0]["properties"]["town_code"], "420111001");
        assert_eq!(json["features"][1]["geometry"], serde_json::Value::Null);

        let dir = tempfile::tempdir().unwrap();
        table_gpkg(&t, &results, &dir.path().join("out.gpkg")).unwrap();
        assert!(matches!(table_gpkg(&t, &results, &dir.path().join("out.gpkg")), Err(GazetteerError::Output(_))));
    }
}
