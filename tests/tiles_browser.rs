//! The web map page in a real browser: Debian's Chromium, headless, driven by Playwright
//! (`playwright-core`, no downloaded browser) through `sync-server/http/web/test/browser.mjs`.
//! The page must render the layer's features (checked with MapLibre's rendered-features query),
//! switch to a past date with the time slider (no features before the layer existed), identify a
//! feature at the slider's instant, and compare two dates side by side and as a swipe with the
//! list of changes and a feature's history. Over the demo city (`shikong demo`) with no parameters, `/map` must open on the city's
//! assets (not on the centre of every layer's union extent, which the country-wide divisions put
//! in Sichuan) with manholes rendered, and signing in with the page's form must bring in the
//! non-public street lamps. Screenshots go to `target/screenshots/map/` (map-now.png,
//! map-2024-01-01.png, map-2020-06-01.png, map-compare.png, map-swipe.png, demo-anonymous.png,
//! demo-signed-in.png, demo-signed-out.png).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value as Json;

use crate::common::*;
use crate::tiles_common::*;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../http/web")
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots/map")
}

/// Runs a driver of `web/test` with Node; its last line of output as JSON, asserted to say `ok`.
pub(crate) fn drive(script: &str, args: &[&str]) -> Json {
    let web = web_dir();
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix {}` (scripts/deps.sh test does)",
        web.display()
    );
    tool("chromium", "chromium");
    tool("node", "nodejs");
    let output = Command::new("node").arg(web.join("test").join(script)).args(args).output().expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output from the browser driver: {stderr}"));
    let r = json(line);
    assert_eq!(r["ok"], true, "browser run failed: {r:#}\nstderr: {stderr}");
    r
}

#[test]
fn the_web_map_renders_switches_date_and_compares() {
    let env = start(true);
    // Imagery as a time series: hillshades of 2019 and 2023 (GDAL-made MBTiles).
    let dir = env.dir.path();
    let y2019 = hillshade_mbtiles(dir, "hs2019", "315");
    let y2023 = hillshade_mbtiles(dir, "hs2023", "135");
    upload(&env, "hillshade", "date=2019-05-01&kind=hillshade", &y2019);
    upload(&env, "hillshade", "date=2023-08-01&kind=hillshade", &y2023);
    let out = screenshots();
    let r = drive("browser.mjs", &[&env.server.base, s(&out)]);
    println!(
        "WebGL renderer: {}; rendered now {}, 2024-01-01 {}, compare {} | {}",
        r["webgl"], r["now"], r["past"], r["compareLeft"], r["compareRight"]
    );
    // The grid spans ~0.04°; at zoom 14 in a 1200×800 window centred on it, every point shows.
    let now = r["now"].as_u64().unwrap();
    assert!(now >= 100 && now <= (N * N) as u64 * 2, "{r:#}");
    assert_eq!(r["sample"]["名称"].as_str().map(|s| s.ends_with("号井盖")), Some(true), "{r:#}");
    assert_eq!(r["past"], 0, "{r:#}");
    assert!(r["pastUrl"].as_str().unwrap().contains("as-of=2024-01-01"), "the tiles carry the instant: {r:#}");
    assert_eq!(r["pastValue"], "2024-01-01T23:59:59+08:00", "{r:#}");
    // The slider spans the layer's transaction time; identify read the feature from the server.
    assert!(r["slider"]["min"].as_u64().unwrap() < r["slider"]["max"].as_u64().unwrap(), "{r:#}");
    assert_eq!(r["slider"]["value"], "现在", "{r:#}");
    assert_eq!(r["identify"]["layer"], "manhole", "{r:#}");
    assert_eq!(r["identify"]["code"], r["identify"]["tileCode"], "{r:#}");
    assert_eq!(r["identify"]["version"], "1", "{r:#}");
    assert_eq!(r["compareLeft"], 0, "{r:#}");
    assert!(r["compareRight"].as_u64().unwrap() > 0, "{r:#}");
    // Everything of the grid was added between the two dates; a row opens its history.
    assert!(r["changes"]["manholeCreated"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!((r["history"]["versions"].as_u64(), r["history"]["op"].as_str()), (Some(1), Some("insert")), "{r:#}");
    assert!(r["swipeClip"].as_str().unwrap().starts_with("inset"), "{r:#}");
    assert!(r["back"].as_u64().unwrap() > 0, "{r:#}");
    // The imagery followed the date: 2023-08-01 is in effect on 2024-01-01 and now; 2019 before.
    assert_eq!(r["rasterPast"], "2023-08-01", "{r:#}");
    assert_eq!(r["raster2020"], "2019-05-01", "{r:#}");
    for f in ["map-now.png", "map-2024-01-01.png", "map-2020-06-01.png", "map-compare.png", "map-swipe.png"] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 10_000, "{f} is suspiciously small");
    }
}

#[test]
fn the_web_map_opens_on_the_demo_city_and_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    // Where the city's assets are: the manholes' extent (OGC API – Features collection).
    let http = reqwest::blocking::Client::new();
    let coll: Json = http.get(server.url("/collections/manhole")).send().unwrap().json().unwrap();
    let b: Vec<f64> =
        coll["extent"]["spatial"]["bbox"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(b.len() == 4 && b[2] - b[0] < 1.0, "the demo's manholes are in one district: {b:?}");
    let inside = |c: &Json| {
        let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        (b[0]..=b[2]).contains(&x) && (b[1]..=b[3]).contains(&y)
    };
    // A sensing station at the assets' centre (no reading yet; alarm at 10 m), for the live view.
    let at = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
    let thing = serde_json::json!({
        "name": "演示水位站", "description": "洪山区",
        "Locations": [{"name": "水位站位置", "description": "河道", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": at}}],
        "Datastreams": [{"name": "水位", "description": "water level",
            "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum#m"},
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "properties": {"thresholds": {"warningAbove": 5, "alarmAbove": 10}},
            "Sensor": {"name": "水位计", "description": "level", "encodingType": "application/pdf", "metadata": "http://example.org/l.pdf"},
            "ObservedProperty": {"name": "水位", "definition": "http://example.org/level", "description": "water level"}}]
    });
    let made = http.post(server.url("/sta/v1.1/Things")).bearer_auth(&wang).json(&thing).send().unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED, "{}", made.text().unwrap_or_default());
    // An alert rule on its datastream (above 10 m): the reading the page posts opens a case.
    let made: Json = made.json().unwrap();
    let dss: Json = http
        .get(server.url(&format!("/sta/v1.1/Things({})/Datastreams", made["@iot.id"])))
        .bearer_auth(&wang)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ds = dss["value"][0]["@iot.id"].as_i64().unwrap();
    let rule = serde_json::json!({"name": "演示水位超限", "scope": {"datastream": ds},
                                  "condition": {"kind": "above", "threshold": 10.0}});
    let made = http.post(server.url("/alerts/rules")).bearer_auth(&wang).json(&rule).send().unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED, "{}", made.text().unwrap_or_default());
    let out = screenshots();
    let r = drive("demo.mjs", &[&server.base, s(&out), "wang", "办公室密码123"]);
    let a = &r["anonymous"];
    println!(
        "demo: opened at {} zoom {:.2}; anonymous manholes {}; signed in lamps {} ({} of {} lamp tile requests with a token); linked {}",
        a["view"]["center"],
        a["view"]["zoom"].as_f64().unwrap(),
        a["manholes"],
        r["signedIn"]["lamps"],
        r["signedIn"]["lampTilesWithAuth"],
        r["signedIn"]["lampTiles"],
        r["linked"]["center"]
    );
    // Anonymous: opens on the assets at a zoom where they show, and renders them; public layers only.
    assert!(inside(&a["view"]["center"]), "opened at {} outside the manholes {b:?}: {r:#}", a["view"]["center"]);
    let zoom = a["view"]["zoom"].as_f64().unwrap();
    assert!((11.0..=16.0).contains(&zoom), "zoom {zoom}: {r:#}");
    assert!(a["manholes"].as_u64().unwrap() > 100, "{r:#}");
    let layers: Vec<&str> = a["layers"].as_array().unwrap().iter().filter_map(Json::as_str).collect();
    assert!(layers.contains(&"manhole-point") && !layers.contains(&"street_lamp-point"), "{layers:?}");
    assert_eq!((a["session"]["token"].as_bool(), a["formShown"].as_bool()), (Some(false), Some(true)), "{r:#}");
    // A wrong password: a message, no token.
    assert_eq!(r["wrong"]["message"], "用户名或密码错误", "{r:#}");
    assert_eq!(r["wrong"]["session"]["token"], false, "{r:#}");
    // Signed in: the lamps appear (their tiles need the token), the view did not jump.
    let si = &r["signedIn"];
    assert!(si["lamps"].as_u64().unwrap() > 50, "{r:#}");
    assert!(si["manholes"].as_u64().unwrap() > 100, "{r:#}");
    assert_eq!(si["session"]["user"]["username"], "wang", "{r:#}");
    assert!(si["who"].as_str().unwrap().contains("wang（内业）"), "{r:#}");
    assert_eq!((si["formShown"].as_bool(), si["tokenInUrl"].as_bool()), (Some(false), Some(false)), "{r:#}");
    assert!(si["tokenStored"].as_u64().unwrap() > 20 && si["cookie"] == "", "{r:#}");
    assert_eq!(si["view"]["center"], a["view"]["center"], "signing in moved the map: {r:#}");
    // Every lamp tile request the browser made (seen through Playwright) carried the token.
    assert_eq!(si["lampTilesWithAuth"], si["lampTiles"], "{r:#}");
    // The sensing station: drawn for the office, unknown with no reading; a reading posted in the
    // page reaches it over /events and turns it to alarm, and so does the alert it opens (its
    // `alert` message names the station and the case); its popup charts the raw reading.
    let st = &r["stations"];
    assert_eq!((st["before"].as_str(), st["posted"].as_u64()), (Some("unknown"), Some(201)), "{r:#}");
    let alert = &st["alert"];
    assert_eq!((alert["state"].as_str(), alert["map_state"].as_str()), (Some("open"), Some("alarm")), "{r:#}");
    assert_eq!((alert["datastream"].as_i64(), alert["value"].as_f64()), (Some(ds), Some(12.5)), "{r:#}");
    assert!(alert["case"].as_str().is_some_and(|c| !c.is_empty()), "{r:#}");
    assert_eq!(st["after"]["state"], "alarm", "{r:#}");
    assert_eq!(st["after"]["datastreams"][0]["result"], 12.5, "{r:#}");
    assert!(st["readings"].as_u64().unwrap() >= 1, "the reading came over the live channel: {r:#}");
    let drawn = st["rendered"].as_array().unwrap();
    assert!(!drawn.is_empty() && drawn.iter().all(|s| s == "alarm"), "drawn in the alarm colour: {r:#}");
    assert_eq!((st["chart"]["source"].as_str(), st["chart"]["points"].as_u64()), (Some("raw"), Some(1)), "{r:#}");
    assert_eq!(st["chart"]["svg"], true, "{r:#}");
    assert!(st["popup"].as_str().unwrap().contains("报警"), "{r:#}");
    // A reload keeps the session of the tab and the place (the URL's #zoom/lat/lon).
    assert!(r["reloaded"]["lamps"].as_u64().unwrap() > 0 && r["reloaded"]["session"]["token"] == true, "{r:#}");
    assert!(inside(&r["reloaded"]["view"]["center"]), "{r:#}");
    // Signed out: the token is revoked on the server, the lamps are gone, the manholes stay.
    let so = &r["signedOut"];
    assert_eq!(so["oldTokenStatus"], 401, "{r:#}");
    assert!(!so["layers"].as_array().unwrap().iter().any(|l| l == "street_lamp-point"), "{r:#}");
    assert!(
        so["manholes"].as_u64().unwrap() > 100 && so["session"]["token"] == false && so["formShown"] == true,
        "{r:#}"
    );
    // A revoked token left in the tab: told to sign in again, the public layers shown.
    let stale = &r["stale"];
    assert_eq!(stale["message"], "登录已过期，请重新登录", "{r:#}");
    assert!(stale["session"]["token"] == false && stale["formShown"] == true, "{r:#}");
    assert!(stale["layers"].as_array().unwrap().iter().any(|l| l == "manhole-point"), "{r:#}");
    // A link with a place opens there.
    let linked = &r["linked"];
    assert!((linked["zoom"].as_f64().unwrap() - 15.0).abs() < 0.01, "{r:#}");
    assert!((linked["center"][0].as_f64().unwrap() - 114.35).abs() < 1e-3, "{r:#}");
    for f in ["demo-anonymous.png", "demo-signed-in.png", "demo-signed-out.png"] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 10_000, "{f} is suspiciously small");
    }
}
