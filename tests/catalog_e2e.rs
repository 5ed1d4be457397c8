//! The catalog read by real clients over HTTP: OWSLib's `CatalogueServiceWeb` (CSW 2.0.2
//! GetRecords with a text constraint) finds as many records as the OGC API – Records answer's
//! `numberMatched` for the same words, and reads a record by id in ISO 19139; GDAL's OAPIF driver
//! reads the `catalog` collection's records; OWSLib's `harvest` has the server harvest a CSW (its
//! own) and reads the transaction summary. The API itself is tested in process in
//! `sync-server/http/tests/catalog.rs`.

use crate::common::server::Server;
use crate::common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

const PASSWORD: &str = "城管巡查2025!";

struct Env {
    _dir: tempfile::TempDir,
    server: Server,
    http: Client,
    token: String,
    admin: String,
}

fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]);
    ok(&["import", "--data", &data, "--layer", "road", "--title", "道路", &fixture("roads.geojson")]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], &format!("{PASSWORD}\n"));
    ok_stdin(&["user", "add", "--data", &data, "--role", "admin", "boss"], &format!("{PASSWORD}\n"));
    let server = Server::start(&data, &[]);
    let http = Client::new();
    let login = |user: &str| {
        let r =
            http.post(server.url("/auth/login")).json(&json!({"username": user, "password": PASSWORD})).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
    };
    let (token, admin) = (login("wang"), login("boss"));
    Env { _dir: dir, server, http, token, admin }
}

fn records_matched(env: &Env, q: &str) -> u64 {
    let url = format!("{}/collections/catalog/items?q={}", env.server.base, shikong_protocol::url::encode_component(q));
    let r = env.http.get(url).bearer_auth(&env.token).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Json>().unwrap()["numberMatched"].as_u64().unwrap()
}

#[test]
fn owslib_csw_finds_what_the_records_api_finds() {
    let env = start();
    let script = r#"
import json, sys
from owslib.csw import CatalogueServiceWeb
from owslib.fes import PropertyIsLike
csw = CatalogueServiceWeb(sys.argv[1] + "/csw", headers={"Authorization": "Bearer " + sys.argv[2]})
out = {"title": csw.identification.title, "ops": [o.name for o in csw.operations], "hits": {}}
for word in sys.argv[3:]:
    csw.getrecords2(constraints=[PropertyIsLike("csw:AnyText", "%" + word + "%")], esn="full", maxrecords=50)
    out["hits"][word] = [csw.results["matches"], len(csw.records), sorted(r.title for r in csw.records.values())]
csw.getrecordbyid(id=["layer:manhole"], outputschema="http://www.isotc211.org/2005/gmd")
rec = csw.records["layer:manhole"]
out["iso"] = {"title": rec.identification[0].title if isinstance(rec.identification, list) else rec.identification.title,
              "bbox": [rec.identification[0].bbox.minx, rec.identification[0].bbox.maxx] if isinstance(rec.identification, list) else [rec.identification.bbox.minx, rec.identification.bbox.maxx]}
print(json.dumps(out, ensure_ascii=False))
"#;
    let words = ["井盖", "道路", "jinggai", "dataset"];
    let mut c = tool("python3", "python3");
    c.args(["-c", script, &env.server.base, &env.token]);
    c.args(words);
    let out = run_tool(c);
    let v: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(v["ops"].as_array().unwrap().iter().any(|o| o == "GetRecords"), "{v}");
    for w in words {
        let api = records_matched(&env, w);
        assert!(api > 0, "{w}");
        assert_eq!(v["hits"][w][0].as_u64(), Some(api), "{w}: {v}");
        assert_eq!(v["hits"][w][1].as_u64(), Some(api), "{w}: {v}");
    }
    assert!(v["hits"]["井盖"][2].as_array().unwrap().iter().any(|t| t == "井盖"), "{v}");
    assert_eq!(v["iso"]["title"], "井盖", "{v}");
    let minx: f64 =
        v["iso"]["bbox"][0].as_str().map_or_else(|| v["iso"]["bbox"][0].as_f64().unwrap(), |s| s.parse().unwrap());
    assert!((minx - 114.3421).abs() < 1e-3, "{v}");
}

#[test]
fn owslib_harvests_a_csw_through_the_harvest_operation() {
    let env = start();
    // The server harvests its own CSW: the platform's records come back as `harvest:` records.
    let script = r#"
import json, sys
from owslib.csw import CatalogueServiceWeb
csw = CatalogueServiceWeb(sys.argv[1] + "/csw", headers={"Authorization": "Bearer " + sys.argv[2]})
csw.harvest(sys.argv[1] + "/csw", "http://www.opengis.net/cat/csw/2.0.2", harvestinterval="PT12H")
print(json.dumps({"first": dict(csw.results)}, ensure_ascii=False))
"#;
    // The harvester reads the CSW anonymously: it gets the public records.
    let public = || -> u64 {
        let r = env.http.get(env.server.url("/collections/catalog/items?limit=1")).send().unwrap();
        r.json::<Json>().unwrap()["numberMatched"].as_u64().unwrap()
    };
    let own = public();
    let mut c = tool("python3", "python3");
    c.args(["-c", script, &env.server.base, &env.admin]);
    let out = run_tool(c);
    let v: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let total = |run: &str, what: &str| -> u64 {
        let x = &v[run][what];
        x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("{run} {what}: {v}"))
    };
    assert!(own > 0);
    assert_eq!((total("first", "inserted"), total("first", "updated")), (own, 0), "{v}");
    assert_eq!(public(), 2 * own, "the harvested copies are catalogued beside the originals");
    let sources =
        env.http.get(env.server.url("/harvests")).bearer_auth(&env.admin).send().unwrap().json::<Json>().unwrap();
    assert_eq!(sources["harvests"][0]["every_minutes"], 720, "{sources}");
}

#[test]
fn gdal_reads_the_catalog_collection() {
    let env = start();
    let header = format!("Authorization: Bearer {}", env.token);
    let mut c = tool("ogrinfo", "gdal-bin");
    c.args([
        "--config",
        "GDAL_HTTP_HEADERS",
        &header,
        "-ro",
        "-al",
        "-q",
        &format!("OAPIF:{}/collections/catalog", env.server.base),
    ]);
    let out = run_tool(c);
    assert!(out.contains("layer:manhole") && out.contains("井盖"), "{out}");
    assert!(out.contains("layer:road") && out.contains("process:hotspot"), "{out}");
    let mut c = tool("ogrinfo", "gdal-bin");
    c.args(["--config", "GDAL_HTTP_HEADERS", &header, "-ro", &format!("OAPIF:{}", env.server.base)]);
    let list = run_tool(c);
    assert!(list.contains("catalog"), "{list}");
}
