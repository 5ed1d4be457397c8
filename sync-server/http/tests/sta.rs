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
    let a = station(&env, "站点A");
    let ta = id(&a);
    let m = post(
        &env,
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
    let mid = id(&m);
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
