//! Imports of real files of every format the desktop takes, each through `stage_import` and
//! `commit_import` into a replica, read back from the replica: a GeoPackage and a zipped
//! Shapefile made by GDAL's `ogr2ogr` from one GeoJSON (GDAL is the reference writer users' files
//! come from; a missing `ogr2ogr` fails the test), and an XLSX with lon/lat columns written as
//! Excel writes one (typed cells: numbers, a date, text), Chinese headers and values, and a sheet
//! with bad rows that imports nothing and names sheet, row and column.

use std::io::Write as _;
use std::path::Path;

use shikong_model::{
    Bbox, CodeItem, Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value,
};
use shikong_replica::{ReplicaInfo, ReplicaLayer, ReplicaWriter};

use super::*;
use crate::testkit;

const AREA: &str = "光谷";

/// A point layer with a field of each kind a table carries: text, real, integer, date, a code.
fn survey() -> ReplicaLayer {
    let field = |id: &str, name: &str, ty| {
        let mut f = FieldDef::new(name, ty);
        f.id = id.into();
        f
    };
    let mut status = field("f5", "状态", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    status.required = true;
    ReplicaLayer {
        name: "survey".into(),
        title: Some("测点".into()),
        description: None,
        geometry_kind: GeometryKind::Point,
        has_z: false,
        schema: LayerSchema {
            fields: vec![
                field("f1", "名称", FieldType::Text),
                field("f2", "深度", FieldType::Real),
                field("f3", "数量", FieldType::Integer),
                field("f4", "日期", FieldType::Date),
                status,
            ],
        },
        public: false,
        citizen_reports: false,
    }
}

/// A device with an empty replica `AREA` holding [`survey`].
fn device() -> (tempfile::TempDir, Device) {
    let (dir, d) = testkit::device();
    let info = ReplicaInfo {
        id: uuid::Uuid::new_v4(),
        server_url: "http://127.0.0.1:9".into(),
        user: "王".into(),
        device: None,
        name: Some(AREA.into()),
        area: None,
        created_at: jiff::Timestamp::now(),
    };
    let path = dir.path().join("replicas").join(format!("{AREA}.gpkg"));
    ReplicaWriter::create(&path, &info, &[survey()]).unwrap().finish("0").unwrap();
    (dir, d)
}

/// The replica's features of `survey`, by name.
fn features(d: &Device) -> Vec<(String, Option<Geometry>, Properties)> {
    let r = d.open_replica(AREA).unwrap();
    let world = Bbox { min_x: -180.0, min_y: -90.0, max_x: 180.0, max_y: 90.0 };
    let mut out: Vec<_> = r
        .query_bbox("survey", &world)
        .unwrap()
        .into_iter()
        .map(|f| {
            let name = f.feature.properties.get("名称").map(Value::to_text).unwrap_or_default();
            (name, f.feature.geometry, f.feature.properties)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn stage(d: &Device, path: &Path, opts: &ImportOptions) -> Result<StagedImport, AppError> {
    d.stage_import(AREA, "survey", path, opts, &mut |_| {})
}

/// Stages and commits `path`; answers the features written.
fn import(d: &Device, path: &Path, opts: &ImportOptions) -> u64 {
    let s = stage(d, path, opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(s.summary().review, 0);
    d.commit_import(&s, &mut |_| {}).unwrap()
}

fn date(s: &str) -> Value {
    Value::Date(s.parse().unwrap())
}

/// The two features every file of these tests holds, as the replica must have them.
fn assert_the_two(d: &Device) {
    let got = features(d);
    assert_eq!(got.len(), 2, "{got:?}");
    let (name, g, p) = &got[0];
    assert_eq!(name, "光谷广场测点");
    assert_eq!(g, &Some(Geometry::Point(Coord::xy(114.398_7, 30.505_6))));
    assert_eq!(p.get("深度"), Some(&Value::Real(2.5)));
    assert_eq!(p.get("数量"), Some(&Value::Integer(7)));
    assert_eq!(p.get("日期"), Some(&date("2023-12-31")));
    assert_eq!(p.get("状态").map(Value::to_text).as_deref(), Some("2"));
    let (name, g, p) = &got[1];
    assert_eq!(name, "珞喻路井盖");
    assert_eq!(g, &Some(Geometry::Point(Coord::xy(114.343_7, 30.504_3))));
    assert_eq!(p.get("深度"), Some(&Value::Real(1.25)));
    assert_eq!(p.get("数量"), Some(&Value::Integer(3)));
    assert_eq!(p.get("日期"), Some(&date("2024-03-01")));
    assert_eq!(p.get("状态").map(Value::to_text).as_deref(), Some("1"));
}

const GEOJSON: &str = r#"{"type":"FeatureCollection","features":[
{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3437,30.5043]},"properties":{"名称":"珞喻路井盖","深度":1.25,"数量":3,"日期":"2024-03-01","状态":"1","备注":"东侧"}},
{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3987,30.5056]},"properties":{"名称":"光谷广场测点","深度":2.5,"数量":7,"日期":"2023-12-31","状态":"2","备注":"西侧"}}
]}"#;

/// Runs GDAL's `ogr2ogr` with `args`; a machine without it fails the test (scripts/deps.sh test
/// installs `gdal-bin`).
fn ogr2ogr(args: &[&str]) {
    let out = std::process::Command::new("ogr2ogr")
        .args(args)
        .output()
        .expect("ogr2ogr (GDAL) runs: `scripts/deps.sh test` installs gdal-bin");
    assert!(out.status.success(), "ogr2ogr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn geojson_fixture(dir: &Path) -> String {
    let src = dir.join("测点.geojson");
    std::fs::write(&src, GEOJSON).unwrap();
    src.to_str().unwrap().to_owned()
}

#[test]
fn a_geopackage_written_by_gdal_is_imported_with_its_typed_columns() {
    let (dir, d) = device();
    let src = geojson_fixture(dir.path());
    let gpkg = dir.path().join("测点.gpkg");
    ogr2ogr(&["-f", "GPKG", gpkg.to_str().unwrap(), &src, "-nln", "测点"]);
    let s = stage(&d, &gpkg, &ImportOptions::default()).unwrap();
    assert_eq!((s.rows.len(), s.ignored.clone()), (2, vec!["备注".to_owned()]));
    assert_eq!(d.commit_import(&s, &mut |_| {}).unwrap(), 2);
    assert_the_two(&d);
    // Naming a layer the GeoPackage does not hold is refused with its layers.
    let opts = ImportOptions { source_layer: Some("管线".into()), ..ImportOptions::default() };
    let e = stage(&d, &gpkg, &opts).err().unwrap().to_string();
    assert!(e.contains("测点.gpkg") && e.contains("管线"), "{e}");
}

#[test]
fn a_zipped_shapefile_written_by_gdal_is_imported_with_its_dbf_fields() {
    let (dir, d) = device();
    let src = geojson_fixture(dir.path());
    let shp_dir = dir.path().join("shp");
    ogr2ogr(&["-f", "ESRI Shapefile", shp_dir.to_str().unwrap(), &src, "-nln", "survey", "-lco", "ENCODING=UTF-8"]);
    // Zipped as users send them: .shp, .shx, .dbf, .prj and .cpg in one archive.
    let zip_path = dir.path().join("测点.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let mut parts: Vec<_> = std::fs::read_dir(&shp_dir).unwrap().map(|e| e.unwrap().path()).collect();
    parts.sort();
    let exts: Vec<String> =
        parts.iter().map(|p| p.extension().unwrap().to_string_lossy().to_ascii_lowercase()).collect();
    for ext in ["shp", "shx", "dbf", "prj", "cpg"] {
        assert!(exts.iter().any(|e| e == ext), "GDAL wrote a .{ext}: {exts:?}");
    }
    for p in &parts {
        z.start_file(p.file_name().unwrap().to_string_lossy(), zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&std::fs::read(p).unwrap()).unwrap();
    }
    z.finish().unwrap();
    let s = stage(&d, &zip_path, &ImportOptions::default()).unwrap();
    assert_eq!((s.rows.len(), s.ignored.clone()), (2, vec!["备注".to_owned()]));
    assert_eq!(d.commit_import(&s, &mut |_| {}).unwrap(), 2);
    assert_the_two(&d);
    // The bare .shp beside its parts reads the same.
    let (_dir2, d2) = device();
    assert_eq!(import(&d2, &shp_dir.join("survey.shp"), &ImportOptions::default()), 2);
    assert_the_two(&d2);
}

/// A workbook as Excel writes one: sheet `测点` with Chinese headers, lon/lat in 经度/纬度,
/// numbers, a date cell, a code typed as a number and as text, a column no field matches, an
/// empty row; sheet `坏行` with a code outside the list (row 2) and a longitude that is not a
/// number (row 3, column B).
fn workbook(path: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let headers = ["名称", "经度", "纬度", "深度", "数量", "日期", "状态", "备注"];
    let ws = wb.add_worksheet();
    ws.set_name("测点").unwrap();
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "珞喻路井盖").unwrap();
    ws.write_number(1, 1, 114.3437).unwrap();
    ws.write_number(1, 2, 30.5043).unwrap();
    ws.write_number(1, 3, 1.25).unwrap();
    ws.write_number(1, 4, 3).unwrap();
    ws.write_datetime_with_format(1, 5, ExcelDateTime::from_ymd(2024, 3, 1).unwrap(), &day).unwrap();
    ws.write_number(1, 6, 1).unwrap();
    ws.write_string(1, 7, "东侧").unwrap();
    // Row 3 is left empty; row 4: coordinates and numbers typed as text, as pasted from elsewhere.
    ws.write_string(3, 0, "光谷广场测点").unwrap();
    ws.write_string(3, 1, " 114.3987 ").unwrap();
    ws.write_number(3, 2, 30.5056).unwrap();
    ws.write_string(3, 3, "2.5").unwrap();
    ws.write_number(3, 4, 7).unwrap();
    ws.write_datetime_with_format(3, 5, ExcelDateTime::from_ymd(2023, 12, 31).unwrap(), &day).unwrap();
    ws.write_string(3, 6, "2").unwrap();
    let bad = wb.add_worksheet();
    bad.set_name("坏行").unwrap();
    for (c, h) in headers.iter().enumerate() {
        bad.write_string(0, c as u16, *h).unwrap();
    }
    bad.write_string(1, 0, "状态不对").unwrap();
    bad.write_number(1, 1, 114.3).unwrap();
    bad.write_number(1, 2, 30.5).unwrap();
    bad.write_number(1, 6, 9).unwrap();
    bad.write_string(2, 0, "经度不对").unwrap();
    bad.write_string(2, 1, "东经114度").unwrap();
    bad.write_number(2, 2, 30.5).unwrap();
    bad.write_number(2, 6, 1).unwrap();
    wb.save(path).unwrap();
}

#[test]
fn an_xlsx_with_lon_lat_columns_is_imported_with_typed_cells() {
    let (dir, d) = device();
    let xlsx = dir.path().join("测点.xlsx");
    workbook(&xlsx);
    let mut steps = Vec::new();
    let s = d.stage_import(AREA, "survey", &xlsx, &ImportOptions::default(), &mut |p| steps.push(p)).unwrap();
    assert_eq!((s.rows.len(), s.summary().keep, s.ignored.clone()), (2, 2, vec!["备注".to_owned()]));
    assert_eq!(
        s.rows.iter().map(|r| r.location.as_str()).collect::<Vec<_>>(),
        ["sheet `测点`, row 2", "sheet `测点`, row 4"]
    );
    assert!(matches!(steps.last(), Some(ImportStep::Reading { done, total }) if done == total && *total > 0));
    assert_eq!(d.commit_import(&s, &mut |_| {}).unwrap(), 2);
    assert_the_two(&d);
    // The sheet is chosen by name; an unknown one is refused with the workbook's sheets.
    let opts = ImportOptions { source_layer: Some("第三页".into()), ..ImportOptions::default() };
    let e = stage(&d, &xlsx, &opts).err().unwrap().to_string();
    assert!(e.contains("测点.xlsx: no sheet `第三页` (sheets: 测点, 坏行)"), "{e}");
}

#[test]
fn bad_xlsx_rows_are_named_by_sheet_row_and_column_and_nothing_is_imported() {
    let (dir, d) = device();
    let xlsx = dir.path().join("测点.xlsx");
    workbook(&xlsx);
    let opts = ImportOptions { source_layer: Some("坏行".into()), ..ImportOptions::default() };
    let e = stage(&d, &xlsx, &opts).err().unwrap().to_string();
    assert!(e.starts_with("import: nothing was imported:\n") || e.contains("nothing was imported"), "{e}");
    assert!(e.contains("测点.xlsx, sheet `坏行`, row 2, field `状态`: "), "{e}");
    assert!(e.contains("测点.xlsx, sheet `坏行`, row 3, column B, field `经度`: `东经114度` is not a number"), "{e}");
    assert!(features(&d).is_empty(), "nothing was written");
    // Gauss-Krüger metres in x/y columns are not longitudes: refused, not placed off the globe.
    let gk = dir.path().join("高斯.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["名称", "状态", "X", "Y"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "测点").unwrap();
    ws.write_number(1, 1, 1).unwrap();
    ws.write_number(1, 2, 38_512_345.6).unwrap();
    ws.write_number(1, 3, 3_378_901.2).unwrap();
    wb.save(&gk).unwrap();
    let e = stage(&d, &gk, &ImportOptions::default()).err().unwrap().to_string();
    assert!(
        e.contains("高斯.xlsx, sheet `Sheet1`, row 2, column C, field `X`: `38512345.6` is not a longitude"),
        "{e}"
    );
    assert!(features(&d).is_empty());
}
