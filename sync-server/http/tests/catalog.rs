//! The catalog in process: OGC API – Records (`/collections/catalog…`: `q` in Chinese, segmented
//! and by pinyin, `bbox`, `datetime`, `type`, `externalIds`, `sortby`, CQL2 `filter`, paging, one
//! record, queryables) and CSW 2.0.2 (`/csw`: capabilities, GetRecords in KVP with CQL and in
//! XML with OGC filters, GetRecordById as `csw:Record` and ISO 19139), built from the live store:
//! a layer created or edited shows at once, a private layer is hidden from who may not read it,
//! and `catalog` is a reserved layer name.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;
use crate::support::{ok_as_wang as ok, problem_as_wang as problem_at};

fn ids(page: &Json) -> Vec<String> {
    page["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

fn matched(page: &Json) -> u64 {
    page["numberMatched"].as_u64().unwrap()
}

fn enc(s: &str) -> String {
    shikong_protocol::url::encode_component(s)
}

/// Every event of an XML document, failing the test when it is not well-formed; its text.
fn well_formed(xml: &str) -> String {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match r.read_event().unwrap_or_else(|e| panic!("not well-formed ({e}): {xml}")) {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{xml}");
    xml.to_owned()
}

/// `numberOfRecordsMatched` of a CSW GetRecords answer.
fn csw_matched(xml: &str) -> u64 {
    let at = xml.find("numberOfRecordsMatched=\"").unwrap_or_else(|| panic!("{xml}")) + 24;
    xml[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn catalog_is_a_collection_of_records() {
    let env = catalogue().env();
    let cols = ok(&env, "/collections");
    let cat = cols["collections"].as_array().unwrap().iter().find(|c| c["id"] == "catalog").expect("listed");
    assert_eq!(cat["itemType"], "record");
    let doc = ok(&env, "/collections/catalog");
    assert_eq!((doc["itemType"].as_str(), doc["type"].as_str()), (Some("record"), Some("Catalog")));
    insta::assert_json_snapshot!("catalog_collection", doc);
    let q = ok(&env, "/collections/catalog/queryables");
    for p in ["title", "type", "keywords", "updated", "geometry"] {
        assert!(q["properties"][p].is_object(), "{p}: {q}");
    }
    let landing = ok(&env, "/");
    assert!(
        landing["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["href"].as_str().unwrap().ends_with("/collections/catalog"))
    );
    let conf = ok(&env, "/conformance");
    assert!(conf["conformsTo"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().contains("ogcapi-records-1")));
}

#[test]
fn every_layer_tile_set_style_and_process_has_a_record() {
    let env = catalogue().env();
    let all = ok(&env, "/collections/catalog/items?limit=1000");
    let got = ids(&all);
    for id in ["layer:manhole", "layer:road", "layer:address", "tiles:manhole", "style:default", "process:hotspot"] {
        assert!(got.contains(&id.to_owned()), "{id}: {got:?}");
    }
    assert_eq!(matched(&all) as usize, got.len());
    let r = ok(&env, "/collections/catalog/items/layer:manhole");
    assert_eq!(r["type"], "Feature");
    assert_eq!(r["geometry"]["type"], "Polygon");
    let p = &r["properties"];
    assert_eq!((p["type"].as_str(), p["title"].as_str()), (Some("dataset"), Some("井盖")));
    assert_eq!(p["language"]["code"], "zh-CN");
    assert_eq!(p["shikong:featureCount"], env.store().count("manhole").unwrap());
    assert!(p["shikong:fields"].as_array().unwrap().iter().any(|f| f["name"] == "depth"), "{p}");
    assert!(p["updated"].is_string() && p["created"].is_string(), "{p}");
    assert!(r["time"]["interval"][0].is_string());
    let rels: Vec<&str> = r["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert!(rels.contains(&"items") && rels.contains(&"tiles"), "{rels:?}");
    let body = problem_at(&env, "/collections/catalog/items/layer:nothing", StatusCode::NOT_FOUND);
    assert_eq!(body["record"], "layer:nothing");
}

#[test]
fn q_matches_chinese_words_segments_and_pinyin_ranked() {
    let env = catalogue().env();
    let page = ok(&env, &format!("/collections/catalog/items?q={}", enc("井盖")));
    let got = ids(&page);
    assert_eq!(got[0], "layer:manhole", "exact title first: {got:?}");
    assert!(got.contains(&"tiles:manhole".to_owned()), "{got:?}");
    assert!(!got.iter().any(|i| i.contains("road")), "{got:?}");
    // Written without a space: segmented into 道路 + 井盖, each matched in some record's text.
    support_edit_description(&env);
    let seg = ids(&ok(&env, &format!("/collections/catalog/items?q={}", enc("道路井盖"))));
    assert_eq!(seg, ["layer:road"], "segmented query");
    // By sound.
    for q in ["jinggai", "jg"] {
        let got = ids(&ok(&env, &format!("/collections/catalog/items?q={q}&type=dataset")));
        assert_eq!(got[0], "layer:manhole", "{q}: {got:?}");
    }
    let daolu = ids(&ok(&env, "/collections/catalog/items?q=daolu&type=dataset"));
    assert_eq!(daolu, ["layer:road"]);
    // Comma-separated terms: any of them.
    let any = ids(&ok(&env, &format!("/collections/catalog/items?q={}&type=dataset", enc("井盖,道路"))));
    assert_eq!(any.len(), 2, "{any:?}");
    assert_eq!(matched(&ok(&env, &format!("/collections/catalog/items?q={}", enc("水库")))), 0);
}

/// Gives the road layer a description naming the manholes along it.
fn support_edit_description(env: &Env) {
    edit_layer(env.store(), "road", |d| d.description = Some("城市道路中心线，含沿线井盖编号".into()));
}

#[test]
fn bbox_datetime_type_external_ids_sortby_filter() {
    let env = catalogue().env();
    let near = ok(&env, "/collections/catalog/items?bbox=114.34,30.50,114.36,30.52&type=dataset&limit=100");
    assert!(ids(&near).contains(&"layer:manhole".to_owned()), "{near}");
    let far = ok(&env, "/collections/catalog/items?bbox=10,10,11,11&limit=100");
    assert_eq!(matched(&far), 0, "{far}");

    let before = ok(&env, "/collections/catalog/items?datetime=../1990-01-01T00:00:00Z");
    assert_eq!(matched(&before), 0);
    let since = ok(&env, "/collections/catalog/items?datetime=2000-01-01T00:00:00Z/..&type=dataset");
    assert_eq!(matched(&since), 3);

    let types = ok(&env, "/collections/catalog/items?type=dataset,style&limit=100");
    for f in types["features"].as_array().unwrap() {
        assert!(["dataset", "style"].contains(&f["properties"]["type"].as_str().unwrap()), "{f}");
    }
    let ext = ids(&ok(&env, "/collections/catalog/items?externalIds=road"));
    assert_eq!(ext, ["layer:road", "tiles:road"]);

    let sorted = ok(&env, "/collections/catalog/items?type=dataset&sortby=-id");
    assert_eq!(ids(&sorted), ["layer:road", "layer:manhole", "layer:address"]);

    let f = enc("type = 'dataset' AND title LIKE '%井%'");
    assert_eq!(ids(&ok(&env, &format!("/collections/catalog/items?filter={f}"))), ["layer:manhole"]);
    let f = enc("featureCount > 1000");
    assert_eq!(matched(&ok(&env, &format!("/collections/catalog/items?filter={f}"))), 0);
    let f = enc("S_INTERSECTS(geometry, BBOX(114.34, 30.50, 114.36, 30.52)) AND type = 'dataset'");
    assert!(ids(&ok(&env, &format!("/collections/catalog/items?filter={f}"))).contains(&"layer:manhole".to_owned()));

    for (url, parameter) in [
        ("/collections/catalog/items?type=map", "type"),
        ("/collections/catalog/items?sortby=colour", "sortby"),
        ("/collections/catalog/items?filter=nope%20%3D%201", "filter"),
        ("/collections/catalog/items?limit=0", "limit"),
        ("/collections/catalog/items?colour=red", "colour"),
    ] {
        let body = problem_at(&env, url, StatusCode::BAD_REQUEST);
        assert_eq!(body["parameter"], parameter, "{url}: {body}");
    }
}

#[test]
fn pages_follow_next_links_without_gaps() {
    let env = catalogue().env();
    let total = matched(&ok(&env, "/collections/catalog/items?limit=1"));
    let mut url = "/collections/catalog/items?limit=3&sortby=id".to_owned();
    let mut seen = Vec::new();
    loop {
        let page = ok(&env, &url);
        seen.extend(ids(&page));
        match page["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next") {
            Some(l) => {
                let href = l["href"].as_str().unwrap();
                url = href[href.find("/collections").unwrap()..].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "id order, no repeats");
}

#[test]
fn records_follow_the_store_at_once() {
    let env = catalogue().env();
    let count =
        |env: &Env| ok(env, "/collections/catalog/items/layer:manhole")["properties"]["shikong:featureCount"].clone();
    let before = count(&env).as_u64().unwrap();
    let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.35, 30.51]},
        "properties": {"code": "HS-JG-0100", "名称": "新井盖", "depth": 1.0}});
    let r = env.post("/collections/manhole/items").token(&env.token("wang")).json(&new).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(count(&env).as_u64().unwrap(), before + 1);

    edit_layer(env.store(), "road", |d| d.title = Some("城市主干道".into()));
    let got = ids(&ok(&env, &format!("/collections/catalog/items?q={}", enc("主干道"))));
    assert_eq!(got[0], "layer:road", "{got:?}");

    import(env.store(), &fixture("manholes_v1.geojson"), "drain", Some("雨水口"));
    let got = ids(&ok(&env, &format!("/collections/catalog/items?q={}", enc("雨水口"))));
    assert!(got.contains(&"layer:drain".to_owned()), "{got:?}");
    let got = ids(&ok(&env, "/collections/catalog/items?q=yushuikou"));
    assert!(got.contains(&"layer:drain".to_owned()), "{got:?}");
}

#[test]
fn a_private_layer_has_no_record_for_who_may_not_read_it() {
    let env = catalogue().env();
    let anon = env.get("/collections/catalog/items?type=dataset").send();
    assert_eq!(anon.status, StatusCode::OK);
    assert_eq!(matched(&anon.json()), 0, "no layer is public: {}", anon.text());
    let r = env.get("/collections/catalog/items/layer:manhole").send();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // CSW answers the same.
    let csw = env.get("/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=hits&constraintLanguage=CQL_TEXT&constraint=dc%3Atype%20%3D%20%27dataset%27").send();
    assert_eq!(csw_matched(&csw.text()), 0);

    edit_layer(env.store(), "manhole", |d| d.public = true);
    let anon = env.get("/collections/catalog/items?type=dataset").send().json();
    assert_eq!(ids(&anon), ["layer:manhole"]);
}

#[test]
fn catalog_is_a_reserved_layer_name() {
    let env = empty().env();
    let mut tx = env.store().begin(shikong_store::TxMeta::by("cli:test")).unwrap();
    let def = shikong_store::LayerDef::new(
        "catalog",
        shikong_model::GeometryKind::Point,
        shikong_model::LayerSchema::default(),
    );
    let e = tx.create_layer(def).unwrap_err();
    assert!(matches!(e, shikong_store::StoreError::InvalidLayerName { .. }), "{e}");
    assert!(e.to_string().contains("reserved"), "{e}");
    let problem = shikong_http::ApiError::from(e);
    assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn csw_capabilities_and_describe_record() {
    let env = catalogue().env();
    let r = env.get("/csw?service=CSW&request=GetCapabilities").send();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("application/xml"));
    let caps = well_formed(&r.text());
    for op in ["GetCapabilities", "DescribeRecord", "GetRecords", "GetRecordById"] {
        assert!(caps.contains(&format!("name=\"{op}\"")), "{op}");
    }
    insta::assert_snapshot!("csw_capabilities", caps);
    let r = env.get("/csw?service=CSW&version=2.0.2&request=DescribeRecord&typeName=csw:Record").send();
    assert_eq!(r.status, StatusCode::OK);
    well_formed(&r.text());
    // Errors are OWS exception reports.
    for (url, code) in [
        ("/csw?request=GetCapabilities", "MissingParameterValue"),
        ("/csw?service=CSW&request=Nope", "InvalidParameterValue"),
        ("/csw?service=CSW&request=GetRecords&maxRecords=-1", "InvalidParameterValue"),
        (
            "/csw?service=CSW&request=GetRecords&constraintLanguage=CQL_TEXT&constraint=title%20LIKE",
            "InvalidParameterValue",
        ),
        ("/csw?service=CSW&request=Transaction", "OperationNotSupported"),
    ] {
        let r = env.get(url).send();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        let x = well_formed(&r.text());
        assert!(x.contains("ows:ExceptionReport") && x.contains(code), "{url}: {x}");
    }
}

#[test]
fn csw_get_records_hits_equal_the_records_api() {
    let env = catalogue().env();
    let wang = env.token("wang");
    for word in ["井盖", "道路", "jinggai", "manhole"] {
        let records = matched(&ok(&env, &format!("/collections/catalog/items?q={}", enc(word))));
        assert!(records > 0, "{word}");
        let cql = enc(&format!("AnyText LIKE '%{word}%'"));
        let kvp = format!(
            "/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=hits&constraintLanguage=CQL_TEXT&constraint_language_version=1.1.0&constraint={cql}"
        );
        let r = env.get(&kvp).token(&wang).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(csw_matched(&well_formed(&r.text())), records, "{word}: KVP CQL");
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<csw:GetRecords xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:ogc="http://www.opengis.net/ogc" service="CSW" version="2.0.2" resultType="results" startPosition="1" maxRecords="2" outputSchema="http://www.opengis.net/cat/csw/2.0.2">
  <csw:Query typeNames="csw:Record">
    <csw:ElementSetName>full</csw:ElementSetName>
    <csw:Constraint version="1.1.0"><ogc:Filter><ogc:PropertyIsLike wildCard="%" singleChar="_" escapeChar="\">
      <ogc:PropertyName>csw:AnyText</ogc:PropertyName><ogc:Literal>%{word}%</ogc:Literal>
    </ogc:PropertyIsLike></ogc:Filter></csw:Constraint>
  </csw:Query>
</csw:GetRecords>"#
        );
        let r = env.post("/csw").token(&wang).header("content-type", "application/xml").body(xml).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let x = well_formed(&r.text());
        assert_eq!(csw_matched(&x), records, "{word}: POST filter");
        let returned = x.matches("<csw:Record>").count() as u64;
        assert_eq!(returned, records.min(2), "{x}");
    }
    // OGC filter: And of a type and a bounding box (lat/lon order of EPSG::4326).
    let xml = r#"<csw:GetRecords xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml" service="CSW" version="2.0.2" resultType="hits">
  <csw:Query typeNames="csw:Record"><csw:Constraint version="1.1.0"><ogc:Filter><ogc:And>
    <ogc:PropertyIsEqualTo><ogc:PropertyName>dc:type</ogc:PropertyName><ogc:Literal>dataset</ogc:Literal></ogc:PropertyIsEqualTo>
    <ogc:BBOX><ogc:PropertyName>ows:BoundingBox</ogc:PropertyName><gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>30.50 114.34</gml:lowerCorner><gml:upperCorner>30.52 114.36</gml:upperCorner></gml:Envelope></ogc:BBOX>
  </ogc:And></ogc:Filter></csw:Constraint></csw:Query></csw:GetRecords>"#;
    let r = env.post("/csw").token(&wang).body(xml).send();
    let records = matched(&ok(&env, "/collections/catalog/items?type=dataset&bbox=114.34,30.50,114.36,30.52"));
    assert_eq!(csw_matched(&well_formed(&r.text())), records);
    // Paging: startPosition / maxRecords / nextRecord.
    let r = env.get("/csw?service=CSW&request=GetRecords&typeNames=csw:Record&resultType=results&elementSetName=brief&startPosition=2&maxRecords=2").token(&wang).send();
    let x = well_formed(&r.text());
    assert!(x.contains("numberOfRecordsReturned=\"2\"") && x.contains("nextRecord=\"4\""), "{x}");
    // Hostile bodies are refused with an exception report.
    let deep = format!("<a>{}</a>", "<b>".repeat(100) + &"</b>".repeat(100));
    let r = env.post("/csw").body(deep).send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = env.post("/csw").body("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>").send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[test]
fn csw_get_record_by_id_in_both_schemas() {
    let env = catalogue().env();
    let wang = env.token("wang");
    let r = env
        .get("/csw?service=CSW&version=2.0.2&request=GetRecordById&id=layer:manhole&outputSchema=http://www.isotc211.org/2005/gmd&elementSetName=full")
        .token(&wang)
        .send();
    assert_eq!(r.status, StatusCode::OK);
    // Compared without the indentation between elements.
    let iso: String = well_formed(&r.text()).lines().map(str::trim).collect();
    assert!(
        iso.contains("<gmd:MD_Metadata") && iso.contains("<gco:CharacterString>井盖</gco:CharacterString>"),
        "{iso}"
    );
    assert!(iso.contains("<gmd:westBoundLongitude><gco:Decimal>114.34"), "{iso}");
    let r = env.get("/csw?service=CSW&request=GetRecordById&id=layer:manhole&elementSetName=full").token(&wang).send();
    let dc: String = well_formed(&r.text()).lines().map(str::trim).collect();
    assert!(dc.contains("<dc:title>井盖</dc:title>") && dc.contains("<ows:LowerCorner>114.34"), "{dc}");
    // Not readable anonymously: an empty answer.
    let r = env.get("/csw?service=CSW&request=GetRecordById&id=layer:manhole").send();
    assert!(!well_formed(&r.text()).contains("井盖"));
}

/// The `gmd:MD_Metadata` element of a GetRecordById answer.
fn md_metadata(xml: &str) -> String {
    let a = xml.find("<gmd:MD_Metadata").unwrap_or_else(|| panic!("{xml}"));
    let b = xml.rfind("</gmd:MD_Metadata>").unwrap() + "</gmd:MD_Metadata>".len();
    xml[a..b].to_owned()
}

fn iso_of(env: &Env, id: &str) -> String {
    let url = format!(
        "/csw?service=CSW&version=2.0.2&request=GetRecordById&id={}&outputSchema=http://www.isotc211.org/2005/gmd",
        enc(id)
    );
    let r = env.get(&url).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK);
    md_metadata(&well_formed(&r.text()))
}

#[test]
fn iso_19139_round_trips_through_import() {
    let env = catalogue().env();
    let exported = iso_of(&env, "layer:manhole");
    let doc = exported
        .replace("<gmd:MD_Metadata>", "<gmd:MD_Metadata xmlns:gmd=\"http://www.isotc211.org/2005/gmd\" xmlns:gco=\"http://www.isotc211.org/2005/gco\">")
        .replace(">layer:manhole<", ">ext:manhole-copy<");
    let post = |token: Option<&str>, body: String| {
        env.post("/collections/catalog/items")
            .maybe_token(token)
            .header("content-type", "application/xml")
            .body(body)
            .send()
    };
    let wang = env.token("wang");
    let r = post(Some(&wang), doc.clone());
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.header("location").ends_with("/collections/catalog/items/ext%3Amanhole-copy"), "{:?}", r.headers);
    assert_eq!(r.json()["properties"]["title"], "井盖");
    // Export → import → export: the same document.
    assert_eq!(iso_of(&env, "ext:manhole-copy"), exported.replace(">layer:manhole<", ">ext:manhole-copy<"));
    // Found like the platform's own records, by both protocols.
    let got = ids(&ok(&env, &format!("/collections/catalog/items?q={}", enc("井盖"))));
    assert!(got.contains(&"ext:manhole-copy".to_owned()), "{got:?}");
    // Again: replaced.
    assert_eq!(post(Some(&wang), doc.clone()).status, StatusCode::OK);

    // Who may, and what is refused.
    assert_eq!(post(None, doc.clone()).status, StatusCode::UNAUTHORIZED);
    assert_eq!(post(Some(&env.token("li")), doc.clone()).status, StatusCode::FORBIDDEN);
    let r = post(Some(&wang), doc.replace(">ext:manhole-copy<", ">layer:road<"));
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = post(
        Some(&wang),
        doc.replace("<gco:CharacterString>井盖</gco:CharacterString>", "<gco:CharacterString></gco:CharacterString>"),
    );
    assert_eq!(
        (r.status, r.json()["element"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("title")),
        "{}",
        r.text()
    );
    // The west bound made 200°: out of range.
    let west = doc.find("<gmd:westBoundLongitude>").expect("a west bound");
    let at = west + doc[west..].find("<gco:Decimal>").unwrap() + "<gco:Decimal>".len();
    let end = at + doc[at..].find('<').unwrap();
    let r = post(Some(&wang), format!("{}200{}", &doc[..at], &doc[end..]));
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(post(Some(&wang), "<x>".into()).status, StatusCode::BAD_REQUEST);
}
