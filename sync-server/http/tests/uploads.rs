//! Hostile uploads (issue 14, allocation and decompression bombs): tables to geocode whose XLSX
//! declares or holds a cell at `XFD1048576`, zip bombs with honest and with lying headers, a CSV
//! with a 100 MB field; OGC write bodies with too many vertices or JSON values; raster uploads
//! over the byte limit. Each is built in the test (nothing big is committed), refused quickly
//! with a 413 problem+json naming the limit, and leaves nothing behind: no job, no file, no
//! feature.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_formats::limits::hostile::{Entry, xlsx};

use crate::support::*;

/// A refusal took less than this (a bomb is never inflated past the budget, nothing dense is
/// allocated; loose for a busy test machine).
const QUICK: Duration = Duration::from_secs(15);

#[track_caller]
fn too_large(r: &Resp, limit: &str) -> Json {
    let p = problem(r, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(p["type"], "https://shikong.invalid/problems/too-large", "{p}");
    assert_eq!(p["limit"], limit, "{p}");
    p
}

/// The files of `DATA/geocode-jobs` (none: a refused upload made no job).
fn job_files(env: &Env) -> Vec<String> {
    match std::fs::read_dir(env.dir.path().join("geocode-jobs")) {
        Err(_) => Vec::new(),
        Ok(d) => d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
    }
}

#[test]
fn hostile_tables_to_geocode_are_refused_with_413_and_make_no_job() {
    let env = demo().env_with(|c| c.max_body = 128 << 20);
    let citizen = env.token("zhang");
    let post = |body: Vec<u8>| {
        let t = Instant::now();
        let r = env.post(&format!("/geocode/batch?column={}", enc("地址"))).token(&citizen).body(body).send();
        assert!(t.elapsed() < QUICK, "took {:?}", t.elapsed());
        r
    };

    // One cell at XFD1048576: declared in <dimension>, or only where it is.
    let cells = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#;
    let p = too_large(&post(xlsx(Some("A1:XFD1048576"), cells, None, vec![])), "table-rows");
    assert_eq!((p["sheet"].as_str(), p["declared"].as_bool()), (Some("Sheet1"), Some(true)), "{p}");
    assert_eq!(p["value"], 1_048_575);
    let p = too_large(&post(xlsx(None, cells, None, vec![])), "table-rows");
    assert_eq!(
        (p["row"].as_u64(), p["field"].as_str(), p["declared"].as_bool()),
        (Some(1_048_576), Some("XFD"), Some(false)),
        "{p}"
    );
    assert_eq!(
        p["detail"],
        "upload, sheet `Sheet1`, row 1048576, column `XFD`: the table has more than 1000000 rows; the limit is 1000000 (table-rows)"
    );

    // A zip bomb: 1 GiB of shared strings in about a megabyte, honest and lying about its size.
    let bomb = || Entry::bomb("xl/sharedStrings.xml", b' ', 1024);
    let honest = xlsx(None, cells, Some(bomb()), vec![]);
    assert!(honest.len() < 4 << 20);
    let p = too_large(&post(honest), "decompressed-bytes");
    assert_eq!((p["declared"].as_bool(), p["value"].as_u64()), (Some(true), Some(1 << 30)), "{p}");
    let p = too_large(&post(xlsx(None, cells, Some(bomb().declaring(1000)), vec![])), "decompressed-bytes");
    assert_eq!((p["declared"].as_bool(), p["max"].as_u64()), (Some(false), Some(256 << 20)), "{p}");

    // A CSV whose second row is one 100 MB field (its quote never closes).
    let mut csv = "地址,名称\n武汉市洪山区,甲\n\"".as_bytes().to_vec();
    csv.resize(csv.len() + (100 << 20), b'x');
    let p = too_large(&post(csv), "row-bytes");
    assert_eq!((p["row"].as_u64(), p["file"].as_str()), (Some(3), Some("upload")), "{p}");

    assert_eq!(job_files(&env), Vec::<String>::new(), "a refused upload makes no job and no file");
    // The server still works.
    let r = post("地址\n武汉市洪山区\n".into());
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

#[test]
fn write_bodies_over_the_vertex_and_value_limits_are_refused() {
    let env = manholes().env();
    let office = env.token("wang");
    let count = || {
        let fc = env.get("/collections/manhole/items?limit=10000").token(&office).send().json();
        fc["features"].as_array().map(Vec::len)
    };
    let before = count();
    let line = |n: usize| {
        // Whole degrees keep the body under the 16 MB body limit; the count is refused first.
        let coords = vec![[114, 30]; n];
        json!({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": {}})
    };
    let t = Instant::now();
    let r = env
        .post("/collections/manhole/items")
        .token(&office)
        .header("content-type", "application/geo+json")
        .body(line(1_000_001).to_string())
        .send();
    assert!(t.elapsed() < QUICK, "took {:?}", t.elapsed());
    let p = too_large(&r, "body-vertices");
    assert_eq!((p["field"].as_str(), p["value"].as_u64()), (Some("geometry"), Some(1_000_001)), "{p}");

    // Five million JSON values in under 16 MB: refused while parsing, before any tree is built.
    let mut body = br#"{"type":"Feature","geometry":null,"properties":{"x":["#.to_vec();
    body.extend(std::iter::repeat_n(&b"0,"[..], 5_000_001).flatten());
    body.extend_from_slice(b"0]}}");
    let t = Instant::now();
    let r = env.post("/collections/manhole/items").token(&office).body(body).send();
    assert!(t.elapsed() < QUICK, "took {:?}", t.elapsed());
    too_large(&r, "json-values");
    assert_eq!(count(), before, "nothing was written");
}

#[test]
fn raster_uploads_over_the_byte_limit_are_refused_and_leave_no_file() {
    let env = manholes().env_with(|c| c.max_raster_upload = 1 << 20);
    let admin = env.token("admin");
    let incoming = env.dir.path().join("tiles/incoming");
    let leftovers = || std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    // Without a Content-Length header: counted as it arrives.
    let r = env.post("/tiles/rasters/ortho?date=2024-01-01").token(&admin).body(vec![0u8; 2 << 20]).send();
    let p = too_large(&r, "upload-bytes");
    assert_eq!((p["declared"].as_bool(), p["max"].as_u64()), (Some(false), Some(1 << 20)), "{p}");
    // With a Content-Length over the limit: refused before reading.
    let r = env
        .post("/tiles/rasters/ortho?date=2024-01-01")
        .token(&admin)
        .header("content-length", &(2u64 << 20).to_string())
        .body(vec![0u8; 2 << 20])
        .send();
    let p = too_large(&r, "upload-bytes");
    assert_eq!(p["declared"], true, "{p}");
    assert_eq!(leftovers(), 0, "the partial upload is removed");
    let sets = env.get("/tiles").send().json();
    assert!(!sets.to_string().contains("ortho"), "{sets}");
}
