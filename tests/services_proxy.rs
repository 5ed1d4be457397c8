//! The service proxy with a real client: one `shikong serve` (A) serves a hillshade as WMTS, a
//! second (B) registers A's WMTS as an outside service, and GDAL's WMTS driver reads it through
//! B's proxy with an API key (`?key=`): the same pixels as read from A directly, A's address in
//! no answer B gives. Registration, quotas, fences and health are tested in process
//! (`sync-server/http/tests/services.rs`).

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::*;
use crate::tiles_common::*;

fn stats_max(file: &std::path::Path) -> (String, f64) {
    let stats = gdal("gdalinfo", &["-stats", s(file)]);
    let max = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("STATISTICS_MAXIMUM="))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("statistics");
    (stats, max)
}

#[test]
fn gdal_reads_another_servers_wmts_through_the_proxy_with_a_key() {
    let a = start(false);
    let b = start(false);
    let dir = a.dir.path();
    let mb = hillshade_mbtiles(dir, "proxied", "315");
    upload(&a, "hillshade", "date=2023-08-01&kind=hillshade", &mb);
    let a_origin = a.server.url("");
    let a_origin = a_origin.trim_end_matches('/');

    // B's administrator registers A's WMTS and makes a key for it.
    let r = b
        .http
        .post(b.server.url("/services"))
        .bearer_auth(&b.admin)
        .json(&json!({"url": format!("{a_origin}/wmts"), "type": "wmts", "title": "A 的影像"}))
        .send()
        .unwrap();
    let status = r.status();
    let svc: Json = json(&r.text().unwrap());
    assert_eq!(status, StatusCode::CREATED, "{svc}");
    let id = svc["id"].as_str().unwrap();
    assert!(svc["layers"].as_array().unwrap().iter().any(|l| l["name"] == "hillshade"), "{svc}");
    let r = b
        .http
        .post(b.server.url("/keys"))
        .bearer_auth(&b.admin)
        .json(&json!({"name": "gdal", "quota": 10000, "services": [id]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let key = json(&r.text().unwrap())["key"].as_str().unwrap().to_owned();

    // The capabilities through B never name A.
    let caps_url = b.server.url(&format!("/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetCapabilities&key={key}"));
    let caps = b.http.get(&caps_url).send().unwrap();
    assert_eq!(caps.status(), StatusCode::OK);
    let text = caps.text().unwrap();
    assert!(!text.contains(a_origin), "A's address reached the client:\n{text}");
    assert!(text.contains(&b.server.url(&format!("/services/{id}/proxy/~key/{key}/"))), "{text}");

    // GDAL through the proxy reads what GDAL reads from A directly.
    let info = gdal("gdalinfo", &[&format!("WMTS:{caps_url}")]);
    assert!(info.contains("Driver: WMTS"), "{info}");
    assert!(!info.contains(a_origin), "A's address in what GDAL saw:\n{info}");
    let window = ["-projwin_srs", "EPSG:4326", "-projwin", "114.33", "30.53", "114.37", "30.50"];
    let via_proxy = dir.join("via-proxy.tif");
    let direct = dir.join("direct.tif");
    let mut args = vec!["-q"];
    args.extend(window);
    let proxied_src = format!("WMTS:{caps_url}");
    gdal("gdal_translate", &[args.as_slice(), &[proxied_src.as_str(), s(&via_proxy)]].concat());
    let direct_src = format!("WMTS:{}", a.server.url("/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"));
    gdal("gdal_translate", &[args.as_slice(), &[direct_src.as_str(), s(&direct)]].concat());
    let (proxied_stats, max) = stats_max(&via_proxy);
    assert!(max > 100.0, "GDAL read no hillshade through the proxy:\n{proxied_stats}");
    let (direct_stats, _) = stats_max(&direct);
    let numbers =
        |s: &str| s.lines().filter(|l| l.trim().starts_with("STATISTICS_")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(numbers(&proxied_stats), numbers(&direct_stats), "the proxy changed the pixels");

    // Without the key, B refuses.
    let r = b
        .http
        .get(b.server.url(&format!("/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetCapabilities")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
