//! Citizens' reports (我的上报) in process, on the demo data: a photo uploaded as an attachment, the
//! report created through OGC API – Features (which citizens may create in but not read), and
//! `/reports/mine` showing each user exactly their own reports with the status the office set.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

#[test]
fn citizens_see_their_own_reports_and_nobody_elses() {
    let env = demo().env();
    let (a, b, c, office) = (env.login("citizen_a"), env.login("citizen_b"), env.login("citizen_c"), env.login("wang"));

    // A citizen uploads the report's photo (resumable attachment upload, one chunk here) …
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let sha = shikong_replica::sha256_hex(&photo);
    let blob = format!("/sync/blobs/{sha}");
    let r = env
        .put(&blob)
        .token(&a)
        .header("content-type", "image/jpeg")
        .header("content-range", &format!("bytes 0-{}/{}", photo.len() - 1, photo.len()))
        .body(photo.clone())
        .send();
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(env.head(&blob).token(&a).send().status, StatusCode::OK);

    // … and reports through OGC API – Features, which citizens may create in but not read.
    let items = "/collections/citizen_report/items";
    let report = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.51]},
        "properties": {"类别": "1", "描述": "珞喻路井盖破损，有安全隐患", "地址": "珞喻路1037号", "照片": [sha]}});
    let r = env.post(items).token(&a).json(&report).send();
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    problem(&env.get(items).token(&a).send(), StatusCode::FORBIDDEN);
    // C reports too.
    let r = env
        .post(items)
        .token(&c)
        .json(&json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.37, 30.52]},
        "properties": {"类别": "2", "描述": "路灯不亮"}}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED);
    let c_id = r.json()["id"].as_str().unwrap().to_owned();

    // Nothing handled yet: no status, one version.
    let mine = env.get("/reports/mine").token(&a).send().json();
    assert_eq!(mine["type"], "FeatureCollection");
    assert_eq!(mine["features"].as_array().unwrap().len(), 1, "{mine}");
    let p = &mine["features"][0]["properties"];
    assert_eq!(p["status"], json!({"field": "办理状态", "code": null, "label": null}));
    assert_eq!(p["versions"], 1);

    // The office takes it on.
    let r = env.patch(&format!("{items}/{id}")).token(&office).json(&json!({"properties": {"办理状态": "2"}})).send();
    assert_eq!(r.status, StatusCode::OK);

    let r = env.get("/reports/mine").token(&a).send();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/geo+json");
    let mine = r.json();
    assert_eq!(mine["numberReturned"], 1, "{mine}");
    let f = &mine["features"][0];
    assert_eq!(f["id"], id.as_str());
    assert_eq!(f["geometry"]["coordinates"], json!([114.36, 30.51]));
    let p = &f["properties"];
    assert_eq!(p["layer"], "citizen_report");
    assert_eq!(p["layer_title"], "群众上报");
    assert_eq!(p["status"], json!({"field": "办理状态", "code": "2", "label": "处理中"}));
    assert_eq!(p["versions"], 2);
    assert_eq!(p["deleted"], false);
    assert_eq!(p["fields"]["描述"], "珞喻路井盖破损，有安全隐患");
    assert_eq!(p["fields"]["照片"], json!([sha]));
    let (created, updated) = (p["created_at"].as_str().unwrap(), p["updated_at"].as_str().unwrap());
    assert!(created.ends_with("+08:00") && updated.ends_with("+08:00"), "{p}");
    assert!(updated > created, "{p}");

    // Restricting by id: A's own id, C's id (not A's: absent), a bad id.
    let only = env.get(&format!("/reports/mine?id={id}&id={c_id}")).token(&a).send().json();
    assert_eq!(only["numberReturned"], 1, "{only}");
    assert_eq!(only["features"][0]["id"], id.as_str());
    let none = env.get(&format!("/reports/mine?id={c_id}")).token(&a).send().json();
    assert_eq!(none["numberReturned"], 0, "{none}");
    let p = problem(&env.get("/reports/mine?id=not-a-uuid").token(&a).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "id");
    problem(&env.get("/reports/mine?status=1").token(&a).send(), StatusCode::BAD_REQUEST);

    // B, who reported nothing, sees an empty list; C sees only C's report, still unhandled; staff
    // created none (they read the layer through OGC API – Features instead).
    let nothing = env.get("/reports/mine").token(&b).send().json();
    assert_eq!(nothing["features"], json!([]), "{nothing}");
    assert_eq!(nothing["numberReturned"], 0);
    let theirs = env.get("/reports/mine").token(&c).send().json();
    assert_eq!(theirs["numberReturned"], 1);
    assert_eq!(theirs["features"][0]["id"], c_id.as_str());
    assert_eq!(theirs["features"][0]["properties"]["status"]["code"], Json::Null);
    assert_eq!(theirs["features"][0]["properties"]["versions"], 1);
    let staff = env.get("/reports/mine").token(&office).send().json();
    assert_eq!(staff["features"], json!([]));
    let inspector = env.get("/reports/mine").token(&env.login("li")).send().json();
    assert_eq!(inspector["features"], json!([]));

    // Anonymous callers are told to log in.
    problem(&env.get("/reports/mine").send(), StatusCode::UNAUTHORIZED);
    let api = env.get("/api").send().json();
    assert!(api["paths"]["/reports/mine"]["get"].is_object());
}
