//! SensorThings API 1.1 under `/sta/v1.1` (issue 18): the service root, entity sets with query
//! options, deep insert, update and delete of store entities (with history: as-of reads and
//! HistoricalLocations), Observations into the time-series store, the dataArray bulk create,
//! `$expand`, PUT and JSON Patch, MultiDatastream Observations and generated FeaturesOfInterest.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::{BASE, Env, manholes, problem};

const ROOT: &str = "/sta/v1.1";

fn url(path: &str) -> String {
    format!("{ROOT}{path}")
}

fn get(env: &Env, path: &str) -> Json {
    let r = env.get(&url(path)).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
    r.json()
}

fn post(env: &Env, path: &str, body: &Json) -> Json {
    let r = env.post(&url(path)).token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text());
    let v = r.json();
    assert_eq!(r.header("location"), v["@iot.selfLink"].as_str().unwrap_or_default());
    v
}

/// A Thing with one Location and one Datastream (inline Sensor and ObservedProperty).
fn station(env: &Env, name: &str) -> Json {
    post(
        env,
        "/Things",
        &json!({
            "name": name,
            "description": "洪山区 井盖倾角监测站",
            "properties": {"asset": "manhole-000001"},
            "Locations": [{
                "name": format!("{name} 位置"),
                "description": "井盖",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [114.34, 30.50]}
            }],
            "Datastreams": [{
                "name": format!("{name} 倾角"),
                "description": "cover tilt",
                "unitOfMeasurement": {"name": "degree", "symbol": "deg", "definition": "http://unitsofmeasure.org/ucum#deg"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": "倾角计", "description": "tilt", "encodingType": "application/pdf", "metadata": "http://example.org/tilt.pdf"},
                "ObservedProperty": {"name": "倾角", "definition": "http://example.org/tilt", "description": "cover tilt"}
            }]
        }),
    )
}

fn id(v: &Json) -> i64 {
    v["@iot.id"].as_i64().unwrap_or_else(|| panic!("integer @iot.id in {v}"))
}

#[test]
fn service_root_lists_the_sets_and_conformance() {
    let env = manholes().env();
    let r = env.get(ROOT).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let doc = r.json();
    let sets = doc["value"].as_array().expect("value");
    assert_eq!(sets.len(), 9);
    assert_eq!(sets[0], json!({"name": "Things", "url": format!("{BASE}/sta/v1.1/Things")}));
    let conf = doc["serverSettings"]["conformance"].as_array().expect("conformance");
    assert!(conf.contains(&json!("http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel")), "{conf:?}");
    assert!(conf.contains(&json!("http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete")));
    // Unknown sets name the segment.
    let p = problem(&env.get(&url("/Thingz")).token(&env.token("wang")).send(), StatusCode::NOT_FOUND);
    assert_eq!(p["segment"], 1, "{p}");
}

#[test]
fn deep_insert_then_read_with_navigation_and_query_options() {
    let env = manholes().env();
    let a = station(&env, "站点A");
    let b = station(&env, "站点B");
    let (ta, tb) = (id(&a), id(&b));
    assert!(tb > ta, "integer ids grow: {ta} {tb}");
    assert_eq!(a["@iot.selfLink"], format!("{BASE}/sta/v1.1/Things({ta})"));
    assert_eq!(a["Datastreams@iot.navigationLink"], format!("{BASE}/sta/v1.1/Things({ta})/Datastreams"));
    assert_eq!(a["properties"]["asset"], "manhole-000001");

    // navigation both ways
    let ds = get(&env, &format!("/Things({ta})/Datastreams"));
    assert_eq!(ds["value"].as_array().map(Vec::len), Some(1), "{ds}");
    let d = &ds["value"][0];
    assert_eq!(d["name"], "站点A 倾角");
    let dsid = id(d);
    let thing = get(&env, &format!("/Datastreams({dsid})/Thing"));
    assert_eq!(id(&thing), ta);
    let sensor = get(&env, &format!("/Datastreams({dsid})/Sensor"));
    assert_eq!(sensor["name"], "倾角计");
    let locs = get(&env, &format!("/Things({ta})/Locations"));
    assert_eq!(locs["value"][0]["location"]["coordinates"], json!([114.34, 30.50]));
    let lid = id(&locs["value"][0]);
    let back = get(&env, &format!("/Locations({lid})/Things"));
    assert_eq!(back["value"].as_array().map(Vec::len), Some(1));
    // the Location is a feature of the store with its geometry (GIS sees it)
    let f = env.store().count("sta_location").expect("count");
    assert_eq!(f, 2);

    // query options
    let page = get(&env, "/Things?$filter=name eq '站点B'&$count=true");
    assert_eq!(page["@iot.count"], 1);
    assert_eq!(id(&page["value"][0]), tb);
    let page = get(&env, "/Things?$orderby=name desc&$top=1&$count=true");
    assert_eq!(page["value"][0]["name"], "站点B");
    assert_eq!(page["@iot.count"], 2);
    let next = page["@iot.nextLink"].as_str().expect("nextLink").to_owned();
    let r = env.get(&next).token(&env.token("wang")).send();
    assert_eq!(r.json()["value"][0]["name"], "站点A", "{next}");
    let page = get(&env, "/Things?$select=id,name&$skip=1");
    let keys: Vec<&String> = page["value"][0].as_object().expect("object").keys().collect();
    assert_eq!(keys, ["@iot.id", "@iot.selfLink", "name"]);
    let one = get(&env, &format!("/Things({ta})/name"));
    assert_eq!(one, json!({"name": "站点A"}));
    let r = env.get(&url(&format!("/Things({ta})/name/$value"))).token(&env.token("wang")).send();
    assert_eq!(r.text(), "站点A");
    let refs = get(&env, "/Things/$ref");
    assert_eq!(refs["value"][0], json!({"@iot.selfLink": format!("{BASE}/sta/v1.1/Things({ta})")}));

    // a bad filter names the option and the position
    let r = env.get(&url("/Things?$filter=name eq")).token(&env.token("wang")).send();
    let p = problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "$filter", "{p}");
    assert!(p["position"].as_u64().is_some(), "{p}");
    // a missing entity is a 404 naming it
    let p = problem(&env.get(&url("/Things(999)")).token(&env.token("wang")).send(), StatusCode::NOT_FOUND);
    assert_eq!(p["entity"], "Things(999)");
}

#[test]
fn permissions_follow_the_sta_layers() {
    let env = manholes().env();
    station(&env, "站点A");
    // anonymous: log in first; a citizen may neither read nor write these layers
    let r = env.get(&url("/Things")).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = env.get(&url("/Things")).token(&env.token("zhang")).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = env.post(&url("/Things")).token(&env.token("zhang")).json(&json!({"name": "x"})).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // body errors name the member
    let r = env
        .post(&url("/Things"))
        .token(&env.token("wang"))
        .json(&json!({"name": "x", "Datastreams": [{"name": "d"}]}))
        .send();
    let p = problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "/Datastreams/0", "{p}");
    // nothing of the refused deep insert was written
    assert_eq!(get(&env, "/Things?$count=true")["@iot.count"], 1);
}

#[test]
fn patch_keeps_history_and_delete_cascades() {
    let env = manholes().env();
    let a = station(&env, "站点A");
    let ta = id(&a);
    let before = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r = env
        .patch(&url(&format!("/Things({ta})")))
        .token(&env.token("wang"))
        .json(&json!({"name": "站点A2", "description": null}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["name"], "站点A2");
    assert!(r.json().get("description").is_none());
    // as-of: the Thing as it was recorded before the PATCH
    let old = get(&env, &format!("/Things({ta})?as-of={before}"));
    assert_eq!(old["name"], "站点A");
    // moving the Thing: a new Location linked by PATCH is a HistoricalLocation
    let loc = post(
        &env,
        "/Locations",
        &json!({"name": "新位置", "description": "moved", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [114.35, 30.51]}}),
    );
    let r = env
        .patch(&url(&format!("/Things({ta})")))
        .token(&env.token("wang"))
        .json(&json!({"Locations": [{"@iot.id": id(&loc)}]}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let hl = get(&env, &format!("/Things({ta})/HistoricalLocations?$orderby=time desc"));
    let hl = hl["value"].as_array().expect("value").clone();
    assert_eq!(hl.len(), 2, "{hl:?}");
    let hid = hl[0]["@iot.id"].as_str().expect("string id").to_owned();
    let newest = get(&env, &format!("/HistoricalLocations('{hid}')/Locations"));
    assert_eq!(id(&newest["value"][0]), id(&loc));
    // delete: the Thing and its Datastreams
    let dsid = id(&get(&env, &format!("/Things({ta})/Datastreams"))["value"][0]);
    let r = env.delete(&url(&format!("/Things({ta})"))).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = env.get(&url(&format!("/Things({ta})"))).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env.get(&url(&format!("/Datastreams({dsid})"))).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

fn datastream_of(env: &Env, thing: &Json) -> i64 {
    id(&get(env, &format!("/Things({})/Datastreams", id(thing)))["value"][0])
}

#[test]
fn observations_go_to_the_time_series_store() {
    let env = manholes().env();
    let ds = datastream_of(&env, &station(&env, "站点A"));
    for (i, v) in [1.5, 2.5, 3.5, 4.5].iter().enumerate() {
        let o = post(
            &env,
            &format!("/Datastreams({ds})/Observations"),
            &json!({"phenomenonTime": format!("2026-03-01T00:0{i}:00Z"), "result": v}),
        );
        assert_eq!(o["@iot.id"], format!("{ds}-{}", 1_772_323_200_000_000i64 + i as i64 * 60_000_000));
    }
    // through /Observations with the Datastream linked in the body
    post(
        &env,
        "/Observations",
        &json!({"phenomenonTime": "2026-03-01T00:09:00Z", "result": 9, "Datastream": {"@iot.id": ds}}),
    );
    // refusals name the member
    let w = env.token("wang");
    let r =
        env.post(&url(&format!("/Datastreams({ds})/Observations"))).token(&w).json(&json!({"result": "high"})).send();
    assert_eq!(problem(&r, StatusCode::UNPROCESSABLE_ENTITY)["field"], "/result");
    let r = env
        .post(&url(&format!("/Datastreams({ds})/Observations")))
        .token(&w)
        .json(&json!({"result": 1, "phenomenonTime": "1999-01-01T00:00:00Z"}))
        .send();
    let p = problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "/phenomenonTime", "{p}");
    let r = env.post(&url("/Datastreams(999)/Observations")).token(&w).json(&json!({"result": 1})).send();
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = env.post(&url("/Observations")).token(&w).json(&json!({"result": 1})).send();
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["field"], "", "one Datastream or MultiDatastream");

    // newest first, a window by phenomenonTime, a page of two with its next link
    let page = get(
        &env,
        &format!(
            "/Datastreams({ds})/Observations?$filter=phenomenonTime ge 2026-03-01T00:01:00Z&$orderby=phenomenonTime desc&$top=2"
        ),
    );
    let results: Vec<&Json> = page["value"].as_array().expect("value").iter().map(|o| &o["result"]).collect();
    assert_eq!(results, [&json!(9.0), &json!(4.5)]);
    let next = page["@iot.nextLink"].as_str().expect("nextLink").to_owned();
    let r = env.get(&next).token(&w).send();
    let results: Vec<Json> = r.json()["value"].as_array().expect("value").iter().map(|o| o["result"].clone()).collect();
    assert_eq!(results, [json!(3.5), json!(2.5)], "{next}");
    // a filter on the result runs on the window's readings; $count counts them
    let page = get(&env, &format!("/Datastreams({ds})/Observations?$filter=result gt 3&$count=true"));
    assert_eq!(page["@iot.count"], 3);
    // one Observation by id, and its Datastream
    let oid = format!("{ds}-{}", 1_772_323_200_000_000i64);
    let o = get(&env, &format!("/Observations('{oid}')"));
    assert_eq!(o["result"], 1.5);
    assert_eq!(id(&get(&env, &format!("/Observations('{oid}')/Datastream"))), ds);
    assert_eq!(get(&env, "/Observations?$count=true&$top=1")["@iot.count"], 5);
}

#[test]
fn create_observations_answers_per_row() {
    let env = manholes().env();
    let ds = datastream_of(&env, &station(&env, "站点A"));
    let body = json!([
        {"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
         "dataArray@iot.count": 3,
         "dataArray": [["2026-03-01T01:00:00Z", 1], ["not a time", 2], ["2026-03-01T01:02:00+08:00", 3]]},
        {"Datastream": {"@iot.id": 999}, "components": ["phenomenonTime", "result"],
         "dataArray": [["2026-03-01T01:00:00Z", 1]]}
    ]);
    let r = env.post(&url("/CreateObservations")).token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rows = r.json();
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], format!("{BASE}/sta/v1.1/Observations('{ds}-1772326800000000')"));
    assert_eq!(rows[1], "error");
    assert!(rows[2].as_str().is_some_and(|s| s.starts_with("http")), "{rows:?}");
    assert_eq!(rows[3], "error", "unknown datastream");
    assert_eq!(get(&env, &format!("/Datastreams({ds})/Observations?$count=true"))["@iot.count"], 2);
    // a structural error refuses the body naming the member
    let bad = json!([{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "colour"], "dataArray": []}]);
    let r = env.post(&url("/CreateObservations")).token(&env.token("wang")).json(&bad).send();
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["field"], "/0/components/1");
}

#[test]
fn expand_datastreams_and_observations() {
    let env = manholes().env();
    let thing = station(&env, "站点A");
    let ds = datastream_of(&env, &thing);
    for m in 0..5 {
        post(
            &env,
            &format!("/Datastreams({ds})/Observations"),
            &json!({"phenomenonTime": format!("2026-03-01T02:0{m}:00Z"), "result": m}),
        );
    }
    let t = get(
        &env,
        &format!(
            "/Things({})?$expand=Datastreams($select=name;$expand=Observations($orderby=phenomenonTime desc;$top=2;$count=true)),Locations",
            id(&thing)
        ),
    );
    let d = &t["Datastreams"][0];
    assert_eq!(d["name"], "站点A 倾角");
    assert!(d.get("description").is_none(), "$select inside $expand: {d}");
    let obs: Vec<&Json> = d["Observations"].as_array().expect("Observations").iter().map(|o| &o["result"]).collect();
    assert_eq!(obs, [&json!(4.0), &json!(3.0)]);
    assert_eq!(d["Observations@iot.count"], 5);
    assert_eq!(t["Locations"][0]["name"], "站点A 位置");
    // an Observation expands its Datastream
    let page = get(&env, &format!("/Datastreams({ds})/Observations?$top=1&$expand=Datastream($select=id)"));
    assert_eq!(page["value"][0]["Datastream"]["@iot.id"], ds);
}

#[test]
fn create_through_navigation_and_result_format_data_array() {
    let env = manholes().env();
    let a = station(&env, "站点A");
    let ta = id(&a);
    let first = get(&env, &format!("/Things({ta})/Datastreams?$expand=Sensor,ObservedProperty"));
    let (sensor, prop) = (id(&first["value"][0]["Sensor"]), id(&first["value"][0]["ObservedProperty"]));
    // POST under a Thing links the new Datastream to it; existing Sensor and ObservedProperty by id
    let d = post(
        &env,
        &format!("/Things({ta})/Datastreams"),
        &json!({"name": "水位", "description": "water level",
                "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum#m"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"@iot.id": sensor}, "ObservedProperty": {"@iot.id": prop}}),
    );
    assert_eq!(id(&get(&env, &format!("/Datastreams({})/Thing", id(&d)))), ta);
    assert_eq!(get(&env, &format!("/Sensors({sensor})/Datastreams?$count=true"))["@iot.count"], 2);
    // a missing reference is a 404 naming the member; nothing written
    let r = env
        .post(&url(&format!("/Things({ta})/Datastreams")))
        .token(&env.token("wang"))
        .json(&json!({"name": "x", "unitOfMeasurement": {"name": null, "symbol": null, "definition": null},
                      "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                      "Sensor": {"@iot.id": 999}, "ObservedProperty": {"@iot.id": prop}}))
        .send();
    assert_eq!(problem(&r, StatusCode::NOT_FOUND)["field"], "/Sensor");
    assert_eq!(get(&env, &format!("/Things({ta})/Datastreams?$count=true"))["@iot.count"], 2);
    // a new Location naming an existing Thing is added to the Thing's Locations
    let l = post(
        &env,
        "/Locations",
        &json!({"name": "备用位置", "description": "spare", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [114.36, 30.52]}, "Things": [{"@iot.id": ta}]}),
    );
    let locs = get(&env, &format!("/Things({ta})/Locations?$count=true"));
    assert_eq!(locs["@iot.count"], 2);
    assert_eq!(id(&get(&env, &format!("/Locations({})/Things", id(&l)))["value"][0]), ta);
    // $resultFormat=dataArray
    let ds = id(&d);
    for m in 0..3 {
        post(
            &env,
            &format!("/Datastreams({ds})/Observations"),
            &json!({"phenomenonTime": format!("2026-03-01T03:0{m}:00Z"), "result": m}),
        );
    }
    let page =
        get(&env, &format!("/Datastreams({ds})/Observations?$resultFormat=dataArray&$select=phenomenonTime,result"));
    let g = &page["value"][0];
    assert_eq!(g["Datastream@iot.navigationLink"], format!("{BASE}/sta/v1.1/Datastreams({ds})"));
    assert_eq!(g["components"], json!(["phenomenonTime", "result"]));
    assert_eq!(g["dataArray@iot.count"], 3);
    assert_eq!(g["dataArray"][0], json!(["2026-03-01T03:00:00Z", 0.0]));
}

fn send(env: &Env, method: &str, path: &str, body: &Json) -> crate::support::Resp {
    let call = match method {
        "PUT" => env.put(&url(path)),
        "PATCH" => env.patch(&url(path)),
        _ => env.post(&url(path)),
    };
    call.token(&env.token("wang")).json(body).send()
}

#[test]
fn put_json_patch_and_references_sent_whole() {
    let env = manholes().env();
    let a = station(&env, "站点A");
    let ta = id(&a);
    // PUT replaces: what the body leaves out is cleared; `@iot.id` in it is ignored
    let r = send(&env, "PUT", &format!("/Things({ta})"), &json!({"@iot.id": ta, "name": "站点A2"}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = get(&env, &format!("/Things({ta})"));
    assert_eq!(t["name"], "站点A2");
    assert!(t.get("description").is_none() && t.get("properties").is_none(), "{t}");
    assert_eq!(get(&env, &format!("/Things({ta})/Locations?$count=true"))["@iot.count"], 1, "links stay");
    let r = send(&env, "PUT", &format!("/Things({ta})"), &json!({"description": "无名"}));
    assert!(problem(&r, StatusCode::BAD_REQUEST)["detail"].as_str().unwrap_or_default().contains("name"));
    // JSON Patch (an array body): applied to the entity, validated like a PATCH
    let sensor = id(&get(&env, &format!("/Things({ta})/Datastreams?$expand=Sensor"))["value"][0]["Sensor"]);
    let ops = json!([{"op": "test", "path": "/name", "value": "倾角计"},
                     {"op": "replace", "path": "/description", "value": "双轴倾角计"},
                     {"op": "add", "path": "/properties", "value": {"型号": "SCA100T"}}]);
    let r = send(&env, "PATCH", &format!("/Sensors({sensor})"), &ops);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = get(&env, &format!("/Sensors({sensor})"));
    assert_eq!((s["description"].as_str(), s["properties"]["型号"].as_str()), (Some("双轴倾角计"), Some("SCA100T")));
    // a failed test refuses the whole patch, naming the operation; nothing changes
    let ops = json!([{"op": "replace", "path": "/description", "value": "x"}, {"op": "test", "path": "/name", "value": "别的"}]);
    let r = send(&env, "PATCH", &format!("/Sensors({sensor})"), &ops);
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["field"], "/1/value");
    assert_eq!(get(&env, &format!("/Sensors({sensor})"))["description"], "双轴倾角计");
    // a linked entity sent whole (as frost-sta-client does) is a reference to it
    let prop =
        id(&get(&env, &format!("/Things({ta})/Datastreams?$expand=ObservedProperty"))["value"][0]["ObservedProperty"]);
    let d = post(
        &env,
        "/Datastreams",
        &json!({"name": "第二路", "unitOfMeasurement": {"name": null, "symbol": null, "definition": null},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Thing": {"@iot.id": ta, "name": "站点A2", "description": "whatever the client holds"},
                "Sensor": s, "ObservedProperty": {"@iot.id": prop, "name": "倾角"}}),
    );
    assert_eq!(id(&get(&env, &format!("/Datastreams({})/Thing", id(&d)))), ta);
    assert_eq!(get(&env, "/Things?$count=true")["@iot.count"], 1, "no new Thing");
    // a Datastream without a unit symbol still takes readings (its series' unit is "1")
    let o = post(
        &env,
        &format!("/Datastreams({})/Observations", id(&d)),
        &json!({"result": 3, "phenomenonTime": "2026-03-01T00:00:00Z"}),
    );
    assert_eq!(o["result"], 3.0);
}

const MEASUREMENT: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement";
const TRUTH: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation";

#[test]
fn multi_datastream_observations_are_arrays_of_typed_components() {
    let env = manholes().env();
    let (_, mid) = air_quality(&env);
    let m = get(&env, &format!("/MultiDatastreams({mid})"));
    assert_eq!(m["unitOfMeasurements"][0]["symbol"], "ug/m3");
    assert_eq!(get(&env, &format!("/MultiDatastreams({mid})/ObservedProperties?$count=true"))["@iot.count"], 2);
    for (i, (pm, over)) in [(35.5, false), (80.25, true), (60.0, true)].iter().enumerate() {
        let o = post(
            &env,
            "/Observations",
            &json!({"phenomenonTime": format!("2026-03-01T0{i}:00:00+08:00"), "result": [pm, over],
                    "MultiDatastream": {"@iot.id": mid}}),
        );
        assert_eq!(o["result"], json!([pm, over]));
        assert!(o["@iot.id"].as_str().is_some_and(|s| s.starts_with('M')), "{o}");
    }
    // the result has one value per component, of the component's type; nothing stored otherwise
    let bad = send(&env, "POST", &format!("/MultiDatastreams({mid})/Observations"), &json!({"result": [1.0]}));
    assert_eq!(problem(&bad, StatusCode::UNPROCESSABLE_ENTITY)["field"], "/result");
    let bad = send(&env, "POST", &format!("/MultiDatastreams({mid})/Observations"), &json!({"result": [1.0, "yes"]}));
    assert_eq!(problem(&bad, StatusCode::UNPROCESSABLE_ENTITY)["field"], "/result/1");
    let page =
        get(&env, &format!("/MultiDatastreams({mid})/Observations?$orderby=phenomenonTime desc&$top=2&$count=true"));
    assert_eq!(page["@iot.count"], 3, "{page}");
    let results: Vec<&Json> = page["value"].as_array().expect("value").iter().map(|o| &o["result"]).collect();
    assert_eq!(results, [&json!([60.0, true]), &json!([80.25, true])]);
    assert!(page["@iot.nextLink"].is_string(), "{page}");
    // a time window and a residual filter
    let later = get(
        &env,
        &format!(
            "/MultiDatastreams({mid})/Observations?$filter=phenomenonTime ge 2026-03-01T01:00:00%2B08:00 and resultTime eq null"
        ),
    );
    assert_eq!(later["value"].as_array().map(Vec::len), Some(2), "{later}");
    // one Observation, and its way back
    let oid = page["value"][0]["@iot.id"].as_str().expect("id").to_owned();
    let one = get(&env, &format!("/Observations('{oid}')"));
    assert_eq!(one["result"], json!([60.0, true]));
    assert_eq!(
        one["MultiDatastream@iot.navigationLink"],
        format!("{BASE}/sta/v1.1/Observations('{oid}')/MultiDatastream")
    );
    assert_eq!(id(&get(&env, &format!("/Observations('{oid}')/MultiDatastream"))), mid);
    // dataArray: MultiDatastream rows, and the dataArray answer format
    let body = json!([{"MultiDatastream": {"@iot.id": mid}, "components": ["phenomenonTime", "result"],
                       "dataArray": [["2026-03-02T00:00:00Z", [12.0, false]], ["2026-03-02T01:00:00Z", [1.0]]]}]);
    let r = env.post(&url("/CreateObservations")).token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let answers = r.json();
    assert!(answers[0].as_str().is_some_and(|s| s.contains("Observations('M")), "{answers}");
    assert_eq!(answers[1], "error");
    let page = get(
        &env,
        &format!(
            "/MultiDatastreams({mid})/Observations?$resultFormat=dataArray&$select=result&$orderby=phenomenonTime desc&$top=1"
        ),
    );
    assert_eq!(
        page["value"][0]["MultiDatastream@iot.navigationLink"],
        format!("{BASE}/sta/v1.1/MultiDatastreams({mid})")
    );
    assert_eq!(page["value"][0]["dataArray"], json!([[[12.0, false]]]));
}

#[test]
fn features_of_interest_come_from_the_location_or_the_observation() {
    let env = manholes().env();
    let a = station(&env, "站点A");
    let ds = datastream_of(&env, &a);
    let o1 = post(
        &env,
        &format!("/Datastreams({ds})/Observations"),
        &json!({"result": 1, "phenomenonTime": "2026-03-01T00:00:00Z"}),
    );
    let o2 = post(
        &env,
        &format!("/Datastreams({ds})/Observations"),
        &json!({"result": 2, "phenomenonTime": "2026-03-01T00:01:00Z"}),
    );
    // generated once from the Thing's Location, shared by later Observations
    let f = get(&env, &format!("/Observations('{}')/FeatureOfInterest", o1["@iot.id"].as_str().unwrap_or_default()));
    assert_eq!(f["name"], "站点A 位置");
    assert_eq!(f["encodingType"], "application/geo+json");
    assert_eq!(f["feature"]["coordinates"], json!([114.34, 30.50]));
    let fid = id(&f);
    let o2id = o2["@iot.id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id(&get(&env, &format!("/Observations('{o2id}')?$expand=FeatureOfInterest"))["FeatureOfInterest"]), fid);
    assert_eq!(get(&env, "/FeaturesOfInterest?$count=true")["@iot.count"], 1);
    let obs = get(&env, &format!("/FeaturesOfInterest({fid})/Observations?$orderby=result desc&$count=true"));
    assert_eq!(obs["@iot.count"], 2);
    assert_eq!(obs["value"][0]["result"], 2.0);
    // an Observation linking another FeatureOfInterest moves the stream to it
    let other = post(
        &env,
        "/FeaturesOfInterest",
        &json!({"name": "井室", "description": "chamber", "encodingType": "application/geo+json",
                "feature": {"type": "Point", "coordinates": [114.341, 30.501]}}),
    );
    let o3 = post(
        &env,
        "/Observations",
        &json!({"result": 3, "phenomenonTime": "2026-03-01T00:02:00Z", "Datastream": {"@iot.id": ds},
                "FeatureOfInterest": {"@iot.id": id(&other)}}),
    );
    let o3id = o3["@iot.id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id(&get(&env, &format!("/Observations('{o3id}')/FeatureOfInterest"))), id(&other));
    let missing = send(
        &env,
        "POST",
        "/Observations",
        &json!({"result": 4, "Datastream": {"@iot.id": ds}, "FeatureOfInterest": {"@iot.id": 999}}),
    );
    assert_eq!(problem(&missing, StatusCode::NOT_FOUND)["field"], "/FeatureOfInterest");
    // deleting it unlinks the stream: the next Observation takes the generated one again
    let r = env.delete(&url(&format!("/FeaturesOfInterest({})", id(&other)))).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let o5 = post(
        &env,
        &format!("/Datastreams({ds})/Observations"),
        &json!({"result": 5, "phenomenonTime": "2026-03-01T00:05:00Z"}),
    );
    let o5id = o5["@iot.id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id(&get(&env, &format!("/Observations('{o5id}')/FeatureOfInterest"))), fid);
    assert_eq!(get(&env, "/FeaturesOfInterest?$count=true")["@iot.count"], 1);
}

/// Rows of a time-series table (`sk_ts_*`) for series ids `lo..=hi`, read beside the server
/// (the SQLite file is in WAL mode: a second reader is fine).
fn series_rows(env: &Env, table: &str, lo: i64, hi: i64) -> i64 {
    let c = rusqlite::Connection::open(env.dir.path().join("timeseries.sqlite")).expect("the series file");
    let column = if table == "sk_ts_datastreams" { "id" } else { "datastream" };
    c.query_row(&format!("SELECT count(*) FROM {table} WHERE {column} BETWEEN ?1 AND ?2"), [lo, hi], |r| r.get(0))
        .expect("count")
}

#[test]
fn observations_are_corrected_moved_and_deleted() {
    let env = manholes().env();
    let w = env.token("wang");
    let ds = datastream_of(&env, &station(&env, "站点A"));
    for (i, v) in [1.0, 2.0, 4.0].iter().enumerate() {
        let body = json!({"phenomenonTime": format!("2026-03-01T00:0{i}:00Z"), "result": v});
        post(&env, &format!("/Datastreams({ds})/Observations"), &body);
    }
    let oid = |min: i64| format!("{ds}-{}", 1_772_323_200_000_000i64 + min * 60_000_000);
    let path = |min: i64| format!("/Observations('{}')", oid(min));
    // a new result is a correction: the store keeps the value it replaced
    let r = send(&env, "PATCH", &path(1), &json!({"result": 3}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let o = r.json();
    assert_eq!((o["@iot.id"].as_str(), o["result"].as_f64()), (Some(oid(1).as_str()), Some(3.0)));
    assert_eq!(o["@iot.selfLink"], format!("{BASE}/sta/v1.1{}", path(1)));
    assert_eq!(get(&env, &path(1))["result"], 3.0);
    assert_eq!(series_rows(&env, "sk_ts_corrections", ds, ds), 1);
    // a new phenomenonTime is a move (here with a new result, through its Datastream): the id follows
    let moved = json!({"phenomenonTime": "2026-03-01T08:05:00+08:00", "result": 5});
    let r = send(&env, "PATCH", &format!("/Datastreams({ds})/Observations('{}')", oid(2)), &moved);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!((r.json()["@iot.id"].as_str(), r.json()["result"].as_f64()), (Some(oid(5).as_str()), Some(5.0)));
    assert_eq!(env.get(&url(&path(2))).token(&w).send().status, StatusCode::NOT_FOUND);
    // PUT of what GET answered (links, its own Datastream) with a new result; a JSON Patch
    let mut back = get(&env, &path(0));
    back["result"] = json!(0.5);
    back["Datastream"] = json!({"@iot.id": ds});
    let r = send(&env, "PUT", &path(0), &back);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["result"], 0.5);
    let r = send(&env, "PATCH", &path(0), &json!([{"op": "replace", "path": "/result", "value": 0.25}]));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(get(&env, &path(0))["result"], 0.25);
    // refusals name the member; nothing changes
    for (body, status, field) in [
        (json!({"resultQuality": "good"}), StatusCode::UNPROCESSABLE_ENTITY, "/resultQuality"),
        (json!({"Datastream": {"@iot.id": ds + 1000}}), StatusCode::UNPROCESSABLE_ENTITY, "/Datastream"),
        (json!({"result": "high"}), StatusCode::UNPROCESSABLE_ENTITY, "/result"),
        (json!({"phenomenonTime": "2026-03-01T00:01:00Z"}), StatusCode::CONFLICT, "/phenomenonTime"),
        (json!({"phenomenonTime": "2036-03-01T00:00:00Z"}), StatusCode::UNPROCESSABLE_ENTITY, "/phenomenonTime"),
    ] {
        let r = send(&env, "PATCH", &path(0), &body);
        assert_eq!(problem(&r, status)["field"], field, "{body}");
    }
    assert_eq!(get(&env, &path(0))["result"], 0.25);
    let r = send(&env, "PUT", &path(0), &json!({"phenomenonTime": "2026-03-01T00:00:00Z"}));
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["field"], "/result");
    let r =
        send(&env, "PATCH", &format!("/Datastreams({})/Observations('{}')", ds + 1000, oid(0)), &json!({"result": 1}));
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another Datastream's path");
    // a citizen may not delete readings
    assert_eq!(env.delete(&url(&path(0))).token(&env.token("zhang")).send().status, StatusCode::FORBIDDEN);
    // DELETE: gone (a second time: 404), the value kept by the store with the moved one's
    let r = env.delete(&url(&path(1))).token(&w).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(env.get(&url(&path(1))).token(&w).send().status, StatusCode::NOT_FOUND);
    assert_eq!(env.delete(&url(&path(1))).token(&w).send().status, StatusCode::NOT_FOUND);
    assert_eq!(series_rows(&env, "sk_ts_deletions", ds, ds), 2, "the moved reading and the deleted one");
    let page = get(&env, &format!("/Datastreams({ds})/Observations?$count=true"));
    let left: Vec<(String, f64)> = page["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|o| (o["@iot.id"].as_str().unwrap_or_default().to_owned(), o["result"].as_f64().unwrap_or_default()))
        .collect();
    assert_eq!(left, [(oid(0), 0.25), (oid(5), 5.0)]);
}

/// A MultiDatastream with a measurement and a truth component on a new station; (Thing, id).
fn air_quality(env: &Env) -> (i64, i64) {
    let ta = id(&station(env, "空气站"));
    let m = post(
        env,
        &format!("/Things({ta})/MultiDatastreams"),
        &json!({
            "name": "空气质量", "description": "PM2.5 与超标",
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation",
            "multiObservationDataTypes": [MEASUREMENT, TRUTH],
            "unitOfMeasurements": [{"name": "µg/m³", "symbol": "ug/m3", "definition": "http://unitsofmeasure.org/ucum#ug/m3"},
                                   {"name": "flag", "symbol": null, "definition": null}],
            "Sensor": {"name": "颗粒物传感器", "description": "pm", "encodingType": "application/pdf", "metadata": "http://example.org/pm.pdf"},
            "ObservedProperties": [{"name": "PM2.5", "definition": "http://example.org/pm25", "description": "fine particles"},
                                   {"name": "超标", "definition": "http://example.org/exceeds", "description": "over the limit"}]
        }),
    );
    (ta, id(&m))
}

/// The series ids of MultiDatastream `m`'s components (`multi::series`): `lo..=hi`.
fn components(m: i64) -> (i64, i64) {
    (-(m * 1000 + 1000), -(m * 1000 + 1))
}

#[test]
fn multi_datastream_observations_are_changed_and_deleted_whole() {
    let env = manholes().env();
    let w = env.token("wang");
    let (_, m) = air_quality(&env);
    let mut ids = Vec::new();
    for (i, (pm, over)) in [(35.5, false), (80.25, true)].iter().enumerate() {
        let body = json!({"phenomenonTime": format!("2026-03-01T0{i}:00:00+08:00"), "result": [pm, over]});
        ids.push(post(&env, &format!("/MultiDatastreams({m})/Observations"), &body)["@iot.id"].clone());
    }
    let path = |id: &Json| format!("/Observations('{}')", id.as_str().unwrap_or_default());
    let r = send(&env, "PATCH", &path(&ids[0]), &json!({"result": [36.0, true]}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["result"], json!([36.0, true]));
    let r = send(&env, "PATCH", &path(&ids[0]), &json!({"result": [1.0, "yes"]}));
    assert_eq!(problem(&r, StatusCode::UNPROCESSABLE_ENTITY)["field"], "/result/1");
    // both components move together
    let r = send(&env, "PATCH", &path(&ids[0]), &json!({"phenomenonTime": "2026-03-01T02:00:00+08:00"}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let moved = r.json();
    assert_eq!(moved["result"], json!([36.0, true]));
    assert_ne!(moved["@iot.id"], ids[0]);
    assert_eq!(get(&env, &path(&moved["@iot.id"]))["result"], json!([36.0, true]));
    assert_eq!(env.get(&url(&path(&ids[0]))).token(&w).send().status, StatusCode::NOT_FOUND);
    let onto = send(&env, "PATCH", &path(&ids[1]), &json!({"phenomenonTime": "2026-03-01T02:00:00+08:00"}));
    assert_eq!(problem(&onto, StatusCode::CONFLICT)["field"], "/phenomenonTime");
    // DELETE removes every component
    let r = env.delete(&url(&path(&moved["@iot.id"]))).token(&w).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(env.get(&url(&path(&moved["@iot.id"]))).token(&w).send().status, StatusCode::NOT_FOUND);
    let (lo, hi) = components(m);
    assert_eq!(series_rows(&env, "sk_ts_readings", lo, hi), 2, "the other Observation's two components");
    assert_eq!(get(&env, &format!("/MultiDatastreams({m})/Observations?$count=true"))["@iot.count"], 1);
}

#[test]
fn deleting_streams_deletes_their_readings() {
    let env = manholes().env();
    let w = env.token("wang");
    let (ta, m) = air_quality(&env);
    let ds = datastream_of(&env, &get(&env, &format!("/Things({ta})")));
    let other = datastream_of(&env, &station(&env, "站点B"));
    for d in [ds, other] {
        post(
            &env,
            &format!("/Datastreams({d})/Observations"),
            &json!({"phenomenonTime": "2026-03-01T00:00:00Z", "result": 1}),
        );
    }
    let r = send(&env, "PATCH", &format!("/Observations('{ds}-1772323200000000')"), &json!({"result": 2}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mo = post(&env, &format!("/MultiDatastreams({m})/Observations"), &json!({"result": [12.0, false]}));
    let mo = format!("/Observations('{}')", mo["@iot.id"].as_str().unwrap_or_default());
    // a Datastream deleted: its readings, roll-ups, correction and definition go
    let r = env.delete(&url(&format!("/Datastreams({ds})"))).token(&w).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = env.get(&url(&format!("/Observations('{ds}-1772323200000000')"))).token(&w).send();
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    for table in ["sk_ts_readings", "sk_ts_rollups", "sk_ts_corrections", "sk_ts_datastreams"] {
        assert_eq!(series_rows(&env, table, ds, ds), 0, "{table}");
    }
    // the Thing deleted: its MultiDatastream goes, with every component's readings
    let (lo, hi) = components(m);
    assert_eq!(series_rows(&env, "sk_ts_readings", lo, hi), 2);
    let r = env.delete(&url(&format!("/Things({ta})"))).token(&w).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(env.get(&url(&mo)).token(&w).send().status, StatusCode::NOT_FOUND);
    for table in ["sk_ts_readings", "sk_ts_rollups", "sk_ts_datastreams"] {
        assert_eq!(series_rows(&env, table, lo, hi), 0, "{table}");
    }
    // another station's stream keeps its reading
    assert_eq!(get(&env, &format!("/Datastreams({other})/Observations?$count=true"))["@iot.count"], 1);
    assert_eq!(series_rows(&env, "sk_ts_rollups", other, other), 3);
}
