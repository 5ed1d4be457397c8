//! Reading one page of another catalogue into records (pure: bytes in, records out).
//!
//! CSW 2.0.2 `GetRecordsResponse` (`csw:Record` full: `dc:identifier`, `dc:title`,
//! `dct:abstract`/`dc:description`, `dc:subject`, `dc:type`, `dct:modified`, `ows:BoundingBox` or
//! `ows:WGS84BoundingBox`, `dct:references`) with its `nextRecord`; an OGC API – Records items page
//! (GeoJSON features; the `next` link); capabilities (WMS/WMTS/WFS XML, OGC API `/collections`)
//! read by the service registry's parser, one record per layer. Elements are matched by local
//! name, so any namespace prefix works. Pages are bounded by the caller (bytes) and here (records
//! per page, characters per field), so a hostile source cannot make one page large.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shikong_protocol::api::services::ServiceLayer;

/// Most records taken from one page.
pub const MAX_PAGE_RECORDS: usize = 10_000;
/// Longest title, characters (longer are cut, on a character boundary).
const MAX_TITLE_CHARS: usize = 500;
/// Longest abstract, characters.
const MAX_ABSTRACT_CHARS: usize = 20_000;
/// Most keywords and links kept per record.
const MAX_LIST: usize = 200;
/// Longest remote identifier, characters (longer ones are refused: they would not be ids).
const MAX_ID_CHARS: usize = 1000;

/// One record read from a source, before storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Harvested {
    pub remote_id: String,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    /// lon/lat `[minx, miny, maxx, maxy]`.
    pub bbox: Option<[f64; 4]>,
    pub kind: String,
    pub modified: Option<String>,
    /// `(href, rel)` of the remote resource.
    pub links: Vec<(String, String)>,
}

impl Harvested {
    /// The stored form's JSON (everything, links included).
    pub fn raw(&self) -> Value {
        json!({
            "id": self.remote_id, "title": self.title, "abstract": self.abstract_text,
            "keywords": self.keywords, "bbox": self.bbox, "type": self.kind, "modified": self.modified,
            "links": self.links.iter().map(|(h, r)| json!({"href": h, "rel": r})).collect::<Vec<_>>(),
        })
    }

    /// Hash of the content (hex SHA-256 of the raw JSON): equal hashes, equal records.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.raw().to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A page of CSW records and where the next starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct CswPage {
    pub records: Vec<Harvested>,
    pub next: Option<u64>,
    pub matched: Option<u64>,
}

fn cut(s: &str, max: usize) -> String {
    let t = s.trim();
    match t.char_indices().nth(max) {
        Some((i, _)) => t[..i].to_owned(),
        None => t.to_owned(),
    }
}

fn text(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants().filter(roxmltree::Node::is_text).filter_map(|t| t.text()).collect::<String>()
}

fn children<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn first_text(n: roxmltree::Node<'_, '_>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| children(n, name).map(text).map(|t| t.trim().to_owned()).find(|t| !t.is_empty()))
}

fn pair(s: &str) -> Option<(f64, f64)> {
    let mut it = s.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}

/// An `ows:BoundingBox`'s corners as lon/lat: EPSG:4326 (and 4490) URNs are lat/lon ordered.
fn ows_bbox(n: roxmltree::Node<'_, '_>) -> Option<[f64; 4]> {
    let b = children(n, "WGS84BoundingBox").next().or_else(|| children(n, "BoundingBox").next())?;
    let (x0, y0) = pair(&first_text(b, &["LowerCorner"])?)?;
    let (x1, y1) = pair(&first_text(b, &["UpperCorner"])?)?;
    let crs = b.attribute("crs").unwrap_or("");
    let lat_first = b.tag_name().name() == "BoundingBox"
        && (crs.contains("EPSG::4326") || crs.contains("EPSG/0/4326") || crs.contains("EPSG::4490"));
    let bbox = if lat_first { [y0, x0, y1, x1] } else { [x0, y0, x1, y1] };
    bbox.iter().all(|v| v.is_finite()).then_some(bbox)
}

fn xml_doc(body: &[u8]) -> Result<roxmltree::Document<'_>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_owned())?;
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 4_000_000 };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| format!("the answer is not well-formed XML: {e}"))
}

/// One `csw:GetRecordsResponse` page. An `ows:ExceptionReport` is an error with its text.
pub fn csw_page(body: &[u8]) -> Result<CswPage, String> {
    let doc = xml_doc(body)?;
    let root = doc.root_element();
    match root.tag_name().name() {
        "GetRecordsResponse" => {}
        "ExceptionReport" => return Err(format!("the catalogue refused: {}", cut(&text(root), 300))),
        other => return Err(format!("expected a csw:GetRecordsResponse, found <{other}>")),
    }
    let results = root
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "SearchResults")
        .ok_or("the answer has no csw:SearchResults")?;
    let num = |a: &str| results.attribute(a).and_then(|v| v.trim().parse::<u64>().ok());
    let (matched, returned, next) = (num("numberOfRecordsMatched"), num("numberOfRecordsReturned"), num("nextRecord"));
    let mut records = Vec::new();
    for r in results.children().filter(roxmltree::Node::is_element) {
        if records.len() >= MAX_PAGE_RECORDS {
            return Err(format!("more than {MAX_PAGE_RECORDS} records in one page"));
        }
        let Some(id) = first_text(r, &["identifier"]) else { continue };
        if id.chars().count() > MAX_ID_CHARS {
            continue;
        }
        let keywords: Vec<String> = children(r, "subject")
            .map(|k| cut(&text(k), MAX_TITLE_CHARS))
            .filter(|k| !k.is_empty())
            .take(MAX_LIST)
            .collect();
        let links = children(r, "references")
            .chain(children(r, "URI"))
            .map(|l| {
                (cut(&text(l), 2000), l.attribute("scheme").or(l.attribute("protocol")).unwrap_or("related").to_owned())
            })
            .filter(|(h, _)| h.starts_with("http://") || h.starts_with("https://"))
            .take(MAX_LIST)
            .collect();
        records.push(Harvested {
            title: cut(&first_text(r, &["title"]).unwrap_or_else(|| id.clone()), MAX_TITLE_CHARS),
            abstract_text: cut(&first_text(r, &["abstract", "description"]).unwrap_or_default(), MAX_ABSTRACT_CHARS),
            keywords,
            bbox: ows_bbox(r),
            kind: first_text(r, &["type"]).map_or_else(|| "dataset".to_owned(), |t| cut(&t, 100)),
            modified: first_text(r, &["modified", "date"]).map(|t| cut(&t, 64)),
            links,
            remote_id: id,
        });
    }
    // The last page: nextRecord 0 (or absent), past the matches, or nothing returned.
    let done = match (next, matched) {
        (None | Some(0), _) => true,
        (Some(n), Some(m)) => n > m,
        (Some(_), None) => false,
    } || returned == Some(0)
        || (returned.is_none() && records.is_empty());
    Ok(CswPage { records, next: if done { None } else { next }, matched })
}

/// An OGC API – Records items page (GeoJSON) and its `next` link.
pub fn records_page(body: &[u8]) -> Result<(Vec<Harvested>, Option<String>), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let features = v["features"].as_array().ok_or("the answer has no `features` list")?;
    if features.len() > MAX_PAGE_RECORDS {
        return Err(format!("more than {MAX_PAGE_RECORDS} records in one page"));
    }
    let next = v["links"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["rel"] == "next"))
        .and_then(|l| l["href"].as_str())
        .map(str::to_owned);
    let records = features.iter().filter_map(record_feature).collect();
    Ok((records, next))
}

fn record_feature(f: &Value) -> Option<Harvested> {
    let id = match &f["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if id.chars().count() > MAX_ID_CHARS {
        return None;
    }
    let p = &f["properties"];
    let s = |k: &str| p[k].as_str().map(str::to_owned);
    let keywords = p["keywords"]
        .as_array()
        .map(|ks| ks.iter().filter_map(Value::as_str).map(|k| cut(k, MAX_TITLE_CHARS)).take(MAX_LIST).collect())
        .unwrap_or_default();
    let bbox = f["bbox"].as_array().and_then(|b| json_bbox(b)).or_else(|| geometry_bbox(&f["geometry"]));
    let links = f["links"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| {
                    Some((l["href"].as_str()?.to_owned(), l["rel"].as_str().unwrap_or("related").to_owned()))
                })
                .filter(|(h, _)| h.starts_with("http://") || h.starts_with("https://"))
                .take(MAX_LIST)
                .collect()
        })
        .unwrap_or_default();
    Some(Harvested {
        title: cut(&s("title").unwrap_or_else(|| id.clone()), MAX_TITLE_CHARS),
        abstract_text: cut(&s("description").unwrap_or_default(), MAX_ABSTRACT_CHARS),
        keywords,
        bbox,
        kind: s("type").map_or_else(|| "dataset".to_owned(), |t| cut(&t, 100)),
        modified: s("updated").or_else(|| s("created")).map(|t| cut(&t, 64)),
        links,
        remote_id: id,
    })
}

fn json_bbox(b: &[Value]) -> Option<[f64; 4]> {
    let n: Vec<f64> = b.iter().filter_map(Value::as_f64).collect();
    match n.as_slice() {
        [a, b, c, d] => Some([*a, *b, *c, *d]),
        [a, b, _, d, e, _] => Some([*a, *b, *d, *e]),
        _ => None,
    }
}

/// The envelope of a GeoJSON geometry's coordinates.
fn geometry_bbox(g: &Value) -> Option<[f64; 4]> {
    fn walk(v: &Value, b: &mut [f64; 4]) {
        match v.as_array() {
            Some(a) if a.len() >= 2 && a[0].is_number() => {
                if let (Some(x), Some(y)) = (a[0].as_f64(), a[1].as_f64()) {
                    *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                }
            }
            Some(a) => a.iter().for_each(|c| walk(c, b)),
            None => {}
        }
    }
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    walk(&g["coordinates"], &mut b);
    b.iter().all(|v| v.is_finite()).then_some(b)
}

/// One record per layer of a registered-style capabilities document (`service`: the kind's wire
/// name, `url`: the capabilities' address, linked from every record).
pub fn layer_records(layers: Vec<ServiceLayer>, service: &str, url: &str) -> Vec<Harvested> {
    layers
        .into_iter()
        .map(|l| Harvested {
            title: cut(l.title.as_deref().unwrap_or(&l.name), MAX_TITLE_CHARS),
            abstract_text: format!("{} 图层 {}", service.to_ascii_uppercase(), l.name),
            keywords: vec![l.name.clone(), service.to_owned()],
            bbox: l.bbox,
            kind: "service".to_owned(),
            modified: None,
            links: vec![(url.to_owned(), service.to_owned())],
            remote_id: l.name,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csw_page_and_its_next_record() {
        let xml = r#"<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2"
            xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/"
            xmlns:ows="http://www.opengis.net/ows">
          <csw:SearchResults numberOfRecordsMatched="3" numberOfRecordsReturned="1" nextRecord="2">
            <csw:Record><dc:identifier>r1</dc:identifier><dc:title>道路井盖</dc:title>
              <dc:subject>井盖</dc:subject><dct:abstract>说明</dct:abstract><dct:modified>2026-01-01</dct:modified>
              <ows:BoundingBox crs="urn:ogc:def:crs:EPSG::4326"><ows:LowerCorner>30 114</ows:LowerCorner>
              <ows:UpperCorner>31 115</ows:UpperCorner></ows:BoundingBox></csw:Record>
          </csw:SearchResults></csw:GetRecordsResponse>"#;
        let p = csw_page(xml.as_bytes()).unwrap();
        assert_eq!(p.next, Some(2));
        assert_eq!(p.records[0].title, "道路井盖");
        assert_eq!(p.records[0].bbox, Some([114.0, 30.0, 115.0, 31.0]));
        assert_eq!(p.records[0].keywords, vec!["井盖"]);
        let last = xml.replace(r#"nextRecord="2""#, r#"nextRecord="0""#);
        assert_eq!(csw_page(last.as_bytes()).unwrap().next, None);
        assert!(csw_page(b"<ows:ExceptionReport xmlns:ows='o'>bad</ows:ExceptionReport>").unwrap_err().contains("bad"));
    }

    #[test]
    fn a_records_page_and_its_next_link() {
        let body = br#"{"type":"FeatureCollection","features":[{"id":"a","type":"Feature",
            "geometry":{"type":"Polygon","coordinates":[[[1,2],[3,2],[3,4],[1,2]]]},
            "properties":{"title":"T","keywords":["k"],"type":"dataset"}}],
            "links":[{"rel":"next","href":"http://x/items?offset=1"}]}"#;
        let (r, next) = records_page(body).unwrap();
        assert_eq!(r[0].bbox, Some([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(next.as_deref(), Some("http://x/items?offset=1"));
        assert_ne!(r[0].hash(), Harvested { title: "U".into(), ..r[0].clone() }.hash());
    }
}
