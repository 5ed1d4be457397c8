//! Sync routes in process: replica size estimates checked against replicas actually cut from the
//! demo data, with the same refusals as the cut itself; attachments (resumable upload) are
//! exercised by the citizen reports in `reports.rs`. Push, pull and convergence over real sockets
//! with many devices stay in the end-to-end tests.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// `(features per layer, file bytes)` of a replica cut for `req`.
fn cut(env: &Env, token: &str, req: &Json) -> (Vec<(String, u64)>, u64) {
    let r = env.post("/sync/replicas").token(token).json(req).send();
    assert_eq!(r.status, StatusCode::CREATED);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.gpkg");
    std::fs::write(&path, &r.body).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let counts = req["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{l}\""), [], |r| r.get(0)).unwrap();
            (l.to_owned(), u64::try_from(n).unwrap())
        })
        .collect();
    (counts, r.body.len() as u64)
}

#[test]
fn replica_estimates_are_close_to_the_files_cut() {
    let env = demo().env();
    let li = env.login("li");
    let area = "POLYGON((114.30 30.45,114.42 30.45,114.42 30.56,114.30 30.56,114.30 30.45))";
    let requests = [
        json!({"protocol": 1, "layers": ["manhole"]}),
        json!({"protocol": 1, "layers": ["manhole", "street_lamp", "road", "address_point", "poi"]}),
        json!({"protocol": 1, "layers": ["manhole", "street_lamp", "address_point"], "area": area}),
        json!({"protocol": 1, "layers": ["division"], "name": "行政区划"}),
        json!({"protocol": 1, "layers": ["citizen_report"]}),
    ];
    let mut worst: f64 = 0.0;
    for req in &requests {
        let started = std::time::Instant::now();
        let r = env.post("/sync/replicas/estimate").token(&li).json(req).send();
        assert_eq!(r.status, StatusCode::OK, "{req}");
        let est = r.json();
        let estimated_in = started.elapsed();
        let started = std::time::Instant::now();
        let (counts, real) = cut(&env, &li, req);
        let cut_in = started.elapsed();
        // Counts are exact.
        for (layer, n) in &counts {
            let l = est["layers"].as_array().unwrap().iter().find(|l| l["layer"] == layer.as_str()).unwrap();
            assert_eq!(l["features"], *n, "{layer}: {est}");
        }
        assert_eq!(est["features"], counts.iter().map(|c| c.1).sum::<u64>());
        let parts = est["overhead_bytes"].as_u64().unwrap()
            + est["gazetteer_bytes"].as_u64().unwrap()
            + est["layers"].as_array().unwrap().iter().map(|l| l["bytes"].as_u64().unwrap()).sum::<u64>();
        assert_eq!(est["bytes"], parts);
        let estimate = est["bytes"].as_u64().unwrap();
        let error = (estimate as f64 - real as f64) / real as f64;
        println!(
            "estimate {estimate} B, real {real} B ({:+.1} %), gazetteer {} B, layers {}; {estimated_in:?} vs cut {cut_in:?}",
            error * 100.0,
            est["gazetteer_bytes"],
            req["layers"]
        );
        worst = worst.max(error.abs());
        assert!(error.abs() < 0.5, "estimate {estimate} vs real {real} for {req}: {est}");
    }
    println!("worst estimate error: {:.1} %", worst * 100.0);

    // The same refusals as POST /sync/replicas.
    let unknown = json!({"protocol": 1, "layers": ["manhole", "no_such_layer"]});
    let p = problem(&env.post("/sync/replicas/estimate").token(&li).json(&unknown).send(), StatusCode::NOT_FOUND);
    assert_eq!(p["sync"]["code"], "unknown-layer", "{p}");
    problem(&env.post("/sync/replicas/estimate").json(&requests[0]).send(), StatusCode::UNAUTHORIZED);
    let zhang = env.login("zhang");
    let p =
        problem(&env.post("/sync/replicas/estimate").token(&zhang).json(&requests[4]).send(), StatusCode::FORBIDDEN);
    assert!(p["detail"].as_str().unwrap().contains("citizen_report"), "{p}");
    let bad_area = json!({"protocol": 1, "layers": ["manhole"], "area": "POINT(114 30)"});
    problem(&env.post("/sync/replicas/estimate").token(&li).json(&bad_area).send(), StatusCode::BAD_REQUEST);
    let api = env.get("/api").send().json();
    assert!(api["paths"]["/sync/replicas/estimate"]["post"].is_object());
}

#[test]
fn a_replica_is_a_geopackage_of_the_layers_asked_for() {
    let env = manholes().env();
    let li = env.token("li");
    let req = json!({"protocol": 1, "layers": ["manhole"], "name": "巡查平板"});
    let r = env.post("/sync/replicas").token(&li).json(&req).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/geopackage+sqlite3");
    let id = r.header("x-shikong-replica").to_owned();
    assert!(r.header("content-disposition").contains(&format!("replica-{id}.gpkg")));
    let (counts, _) = cut(&env, &li, &req);
    assert_eq!(counts, [("manhole".to_owned(), 3)]);
    // Citizens get no replica of a protected layer; a bad body names the problem.
    let zhang = env.token("zhang");
    problem(&env.post("/sync/replicas").token(&zhang).json(&req).send(), StatusCode::FORBIDDEN);
    let p = problem(&env.post("/sync/replicas").token(&li).body("{").send(), StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("invalid sync message"), "{p}");
}

// ---------------------------------------------------------------------------------------------
// Hardening (issue 14): honest attribution, batches naming an entity twice, attachment values,
// permissions that follow revocation, attachment downloads, crash windows, partial uploads.

mod hardening {
    use std::sync::LazyLock;

    use axum::http::StatusCode;
    use serde_json::{Value as Json, json};
    use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
    use shikong_model::{EntityId, Value};
    #[allow(unused_imports)] // supertraits of `dyn Store`, in scope for their methods
    use shikong_store::{FeatureKey, FeatureStore, SyncBookkeeping};

    use crate::support::*;

    /// The manholes with an attachment field `照片` (the fixture's layer has none).
    fn photos() -> &'static Template {
        static T: LazyLock<Template> = LazyLock::new(|| {
            Template::build(&USERS, |store, _| {
                import(store, &fixture("manholes_v1.geojson"), "manhole", Some("井盖"));
                edit_layer(store, "manhole", |d| {
                    d.schema.fields.push(shikong_model::FieldDef::new("照片", shikong_model::FieldType::Attachments));
                });
            })
        });
        &T
    }

    fn admin_actor() -> shikong_auth::Actor {
        shikong_auth::Actor::local("test")
    }

    /// Registers a replica of `layers` for the caller; returns its id.
    fn replica(env: &Env, token: &str, layers: &[&str]) -> String {
        let r = env.post("/sync/replicas").token(token).json(&json!({"protocol": 1, "layers": layers})).send();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.header("x-shikong-replica").to_owned()
    }

    /// The id of a manhole by code, and its current version.
    fn manhole(env: &Env, code: &str) -> (EntityId, i64) {
        let f = env.state.store().get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap();
        (f.feature.id, f.version)
    }

    /// A device change setting `props` on an entity still at version 1 without a document (its
    /// document is the deterministic base every party derives), made by a new actor.
    fn change(env: &Env, code: &str, meta: &EditMeta, props: &[(&str, Value)]) -> (EntityId, Vec<u8>) {
        let layer = env.state.store().layer("manhole").unwrap();
        let f = env.state.store().get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap();
        assert_eq!(f.version, 1, "{code} must be unedited");
        let mut doc = EntityDoc::base(layer.schema(), &f.feature).unwrap();
        let props = props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let c = doc.edit(layer.schema(), Actor::random(), meta, Edit::SetFields(props)).unwrap().unwrap();
        (f.feature.id, c)
    }

    fn meta(user: &str, device: Option<&str>) -> EditMeta {
        EditMeta { user: user.into(), device: device.map(str::to_owned), time: jiff::Timestamp::now() }
    }

    fn b64(bytes: &[u8]) -> String {
        use base64ct::Encoding;
        base64ct::Base64::encode_string(bytes)
    }

    /// `POST /sync/push` of `entries` (entity, changes) for the replica; the answer.
    fn push(env: &Env, token: &str, replica: &str, entries: &[(EntityId, Vec<Vec<u8>>)]) -> (StatusCode, Json) {
        let entities: Vec<Json> = entries
            .iter()
            .map(|(id, cs)| {
                json!({"layer": "manhole", "entity": id.to_string(), "changes": cs.iter().map(|c| b64(c)).collect::<Vec<_>>()})
            })
            .collect();
        let body = json!({"protocol": 1, "replica": replica, "batch": uuid::Uuid::new_v4(), "entities": entities});
        let r = env.post("/sync/push").token(token).json(&body).send();
        (r.status, r.json_or_text())
    }

    fn outcome(resp: &Json, id: EntityId) -> Json {
        resp["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["entity"] == id.to_string())
            .cloned()
            .unwrap_or(Json::Null)
    }

    fn property(env: &Env, code: &str, field: &str) -> Option<Value> {
        env.state
            .store()
            .get("manhole", &FeatureKey::Code(code.into()), None)
            .unwrap()
            .unwrap()
            .feature
            .properties
            .get(field)
            .cloned()
    }

    /// Uploads bytes in one chunk as `token`.
    fn upload(env: &Env, token: &str, bytes: &[u8], mime: &str) -> String {
        let sha = shikong_replica::sha256_hex(bytes);
        let r = env
            .put(&format!("/sync/blobs/{sha}"))
            .token(token)
            .header("content-type", mime)
            .header("content-range", &format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()))
            .body(bytes.to_vec())
            .send();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        sha
    }

    /// A device-bound token for `user` (enrolment, as a tablet gets one); `(token, device id)`.
    fn enrolled(env: &Env, user: &str) -> (String, String) {
        let e = env.state.auth.create_enrolment(&admin_actor(), user, None).unwrap();
        let body = json!({"code": e.secret.expose(), "device": {"name": "平板-07", "platform": "android"}});
        let r = env.post("/auth/enrol").json(&body).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let j = r.json();
        (j["token"].as_str().unwrap().to_owned(), j["device"].as_str().unwrap().to_owned())
    }

    #[test]
    fn a_pushed_change_is_attributed_to_the_caller_or_refused() {
        let env = photos().env();
        let li = env.token("li");
        let rep = replica(&env, &li, &["manhole"]);

        // li sends a change whose message claims wang wrote it: refused, nothing written.
        let (id, forged) = change(&env, "HS-JG-0001", &meta("wang", None), &[("depth", Value::Real(7.5))]);
        let (status, resp) = push(&env, &li, &rep, &[(id, vec![forged])]);
        assert_eq!(status, StatusCode::OK, "{resp}");
        let o = outcome(&resp, id);
        assert_eq!((o["outcome"].as_str(), o["code"].as_str()), (Some("rejected"), Some("forbidden")), "{resp}");
        assert!(o["reason"].as_str().unwrap().contains("wang"), "{o}");
        assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(1.2)));
        assert!(env.state.store().sync_doc("manhole", id).unwrap().is_none(), "no document stored");

        // The same edit claiming li is taken; the version is li's.
        let (_, honest) = change(&env, "HS-JG-0001", &meta("li", Some("li 的笔记本")), &[("depth", Value::Real(7.5))]);
        let (_, resp) = push(&env, &li, &rep, &[(id, vec![honest.clone()])]);
        assert_eq!(outcome(&resp, id)["outcome"], "accepted", "{resp}");
        let h = env.state.store().history("manhole", &FeatureKey::Id(id)).unwrap();
        assert_eq!(h.last().unwrap().tx.author, "li");

        // A device-bound token: the change must name that device.
        let (tablet, device) = enrolled(&env, "li");
        let rep2 = replica(&env, &tablet, &["manhole"]);
        let (id2, other) = change(&env, "HS-JG-0002", &meta("li", Some("平板-99")), &[("depth", Value::Real(3.0))]);
        let (_, resp) = push(&env, &tablet, &rep2, &[(id2, vec![other])]);
        let o = outcome(&resp, id2);
        assert_eq!((o["outcome"].as_str(), o["code"].as_str()), (Some("rejected"), Some("forbidden")), "{resp}");
        assert!(o["reason"].as_str().unwrap().contains("平板-99"), "{o}");
        // A free label is not a device id either: a session without a device cannot claim one.
        let (_, claims_id) = change(&env, "HS-JG-0002", &meta("li", Some(&device)), &[("depth", Value::Real(3.0))]);
        let (_, resp) = push(&env, &li, &rep, &[(id2, vec![claims_id.clone()])]);
        assert_eq!(outcome(&resp, id2)["code"], "forbidden", "{resp}");
        let (_, resp) = push(&env, &tablet, &rep2, &[(id2, vec![claims_id])]);
        assert_eq!(outcome(&resp, id2)["outcome"], "accepted", "{resp}");
        let h = env.state.store().history("manhole", &FeatureKey::Id(id2)).unwrap();
        assert_eq!(h.last().unwrap().tx.device.as_deref(), Some(device.as_str()));
        // What the server already holds may be sent again (a resent batch, a merged document).
        let wang = env.token("wang");
        let rep_w = replica(&env, &wang, &["manhole"]);
        let (_, resp) = push(&env, &wang, &rep_w, &[(id, vec![honest])]);
        assert_eq!(outcome(&resp, id)["outcome"], "unchanged", "{resp}");
        assert_eq!(property(&env, "HS-JG-0002", "depth"), Some(Value::Real(3.0)));
    }

    #[test]
    fn an_admin_pushing_someone_elses_replica_is_refused_whole() {
        let env = photos().env();
        let (li, admin) = (env.token("li"), env.token("admin"));
        let rep = replica(&env, &li, &["manhole"]);
        // li's edit waits in li's replica; an admin syncs that replica file with their own token,
        // with an edit of their own in the same batch.
        let (a, lis) = change(&env, "HS-JG-0001", &meta("li", None), &[("depth", Value::Real(7.5))]);
        let (b, admins) = change(&env, "HS-JG-0002", &meta("admin", None), &[("depth", Value::Real(8.5))]);
        let before = env.state.store().latest_tx().unwrap();
        let (status, p) = push(&env, &admin, &rep, &[(a, vec![lis.clone()]), (b, vec![admins])]);
        // One precise refusal for the whole batch: whose the replica's changes are, and who must
        // push them; nothing was written (not even the admin's own edit), no audit of a write.
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
        assert_eq!((p["sync"]["code"].as_str(), p["owner"].as_str()), (Some("forbidden"), Some("li")), "{p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(&rep) && detail.contains("`li`") && detail.contains("pushed by `li`"), "{detail}");
        assert!(detail.contains("nothing was applied"), "{detail}");
        assert_eq!(env.state.store().latest_tx().unwrap(), before, "no transaction");
        assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(1.2)));
        assert!(env.state.store().sync_doc("manhole", a).unwrap().is_none());
        assert!(env.state.store().sync_doc("manhole", b).unwrap().is_none());
        // The admin may still pull and verify it (support), and li pushes li's edit as li.
        let pulled = env.get(&format!("/sync/pull?replica={rep}&cursor=0")).token(&admin).send();
        assert_eq!(pulled.status, StatusCode::OK, "{}", pulled.text());
        let (status, resp) = push(&env, &li, &rep, &[(a, vec![lis])]);
        assert_eq!(status, StatusCode::OK, "{resp}");
        assert_eq!(outcome(&resp, a)["outcome"], "accepted", "{resp}");
        assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(7.5)));
    }

    #[test]
    fn the_same_entity_twice_in_one_batch_keeps_both_edits() {
        let env = photos().env();
        let li = env.token("li");
        let rep = replica(&env, &li, &["manhole"]);
        // Two concurrent edits of different fields of one manhole (two tablets' changes, say),
        // sent as two entries of one batch.
        let (id, a) = change(&env, "HS-JG-0001", &meta("li", None), &[("depth", Value::Real(9.5))]);
        let (_, b) = change(&env, "HS-JG-0001", &meta("li", None), &[("material", Value::Text("混凝土".into()))]);
        let (other, c) = change(&env, "HS-JG-0003", &meta("li", None), &[("depth", Value::Real(0.5))]);
        let (status, resp) = push(&env, &li, &rep, &[(id, vec![a]), (other, vec![c]), (id, vec![b])]);
        assert_eq!(status, StatusCode::OK, "{resp}");
        assert_eq!(outcome(&resp, id)["outcome"], "accepted", "{resp}");
        assert_eq!(outcome(&resp, other)["outcome"], "accepted", "{resp}");
        assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(9.5)), "the first entry's edit survives");
        assert_eq!(property(&env, "HS-JG-0001", "material"), Some(Value::Text("混凝土".into())));
        assert_eq!(property(&env, "HS-JG-0003", "depth"), Some(Value::Real(0.5)));
        // One version for the entity, one document holding both changes.
        assert_eq!(manhole(&env, "HS-JG-0001").1, 2);
        let (_, doc) = env.state.store().sync_doc("manhole", id).unwrap().unwrap();
        let layer = env.state.store().layer("manhole").unwrap();
        let state = EntityDoc::load(&doc).unwrap().state(layer.schema()).unwrap();
        assert_eq!(state.feature.properties.get("depth"), Some(&Value::Real(9.5)));
        assert_eq!(state.feature.properties.get("material"), Some(&Value::Text("混凝土".into())));
    }

    #[test]
    fn attachment_values_are_checked_before_any_file_lookup() {
        let env = photos().env();
        let li = env.token("li");
        let rep = replica(&env, &li, &["manhole"]);
        // A file outside the attachment folder that an absolute "hash" would name.
        let secret = env.dir.path().join("secret.txt");
        std::fs::write(&secret, "not an attachment").unwrap();
        let real = upload(&env, &li, b"a real photo", "image/jpeg");
        let bad = [
            "a".to_owned(),
            "井".to_owned(),
            "ab".to_owned(),
            secret.display().to_string(),
            format!("../{real}"),
            real.to_uppercase(),
        ];
        for (i, value) in bad.iter().enumerate() {
            let code = format!("HS-JG-000{}", 1 + i % 3);
            let (id, c) = change(&env, &code, &meta("li", None), &[("照片", Value::Attachments(vec![value.clone()]))]);
            let (status, resp) = push(&env, &li, &rep, &[(id, vec![c])]);
            assert_eq!(status, StatusCode::OK, "{value}: {resp}");
            let o = outcome(&resp, id);
            assert_eq!(
                (o["outcome"].as_str(), o["code"].as_str()),
                (Some("rejected"), Some("invalid")),
                "{value}: {resp}"
            );
            assert_eq!(manhole(&env, &code).1, 1, "{value}: nothing written");
        }
        // The blob routes answer 400 for anything but 64 lowercase hex digits, before any lookup.
        let secret_url = secret.display().to_string().replace('/', "%2F");
        for value in
            ["ab", "%E4%BA%95", secret_url.as_str(), &real.to_uppercase(), &format!("{}%E4%BA%95", &real[..61])]
        {
            let url = format!("/sync/blobs/{value}");
            let p = problem(&env.get(&url).token(&li).send(), StatusCode::BAD_REQUEST);
            assert_eq!(p["parameter"], "sha", "{value}: {p}");
            assert_eq!(env.head(&url).token(&li).send().status, StatusCode::BAD_REQUEST, "{value}");
            let r = env.put(&url).token(&li).header("content-range", "bytes 0-1/2").body(b"ab".to_vec()).send();
            problem(&r, StatusCode::BAD_REQUEST);
        }
        // A well-formed value is taken.
        let (id, c) =
            change(&env, "HS-JG-0002", &meta("li", None), &[("照片", Value::Attachments(vec![real.clone()]))]);
        let (_, resp) = push(&env, &li, &rep, &[(id, vec![c])]);
        assert_eq!(outcome(&resp, id)["outcome"], "accepted", "{resp}");
    }

    /// Pulls from `cursor` until the last page; the entities' ids, the revoked layers and the
    /// final cursor.
    fn pull_all(env: &Env, token: &str, replica: &str, cursor: &str) -> (Vec<String>, Json, String) {
        let mut cursor = cursor.to_owned();
        let mut ids = Vec::new();
        let mut revoked = Json::Null;
        loop {
            let r = env.get(&format!("/sync/pull?replica={replica}&cursor={}", enc(&cursor))).token(token).send();
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let page: shikong_protocol::PullPage = serde_json::from_slice(&r.body).unwrap();
            ids.extend(page.entities.iter().map(|e| e.entity.to_string()));
            let j = r.json();
            if !j["revoked"].is_null() {
                revoked = j["revoked"].clone();
            }
            cursor = page.cursor;
            if !page.more {
                return (ids, revoked, cursor);
            }
        }
    }

    fn office_edit(env: &Env, code: &str, depth: f64) -> String {
        let (id, _) = manhole(env, code);
        let wang = env.token("wang");
        let r = env
            .patch(&format!("/collections/manhole/items/{id}"))
            .token(&wang)
            .json(&json!({"properties": {"depth": depth}}))
            .send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        id.to_string()
    }

    #[test]
    fn pull_stops_sending_a_layer_the_caller_may_no_longer_read() {
        let env = photos().env();
        let li = env.token("li");
        let rep = replica(&env, &li, &["manhole"]);
        let start = env.state.store().latest_tx().unwrap().0.to_string();
        let first = office_edit(&env, "HS-JG-0001", 2.5);
        let (ids, revoked, cursor) = pull_all(&env, &li, &rep, &start);
        assert_eq!((ids, revoked), (vec![first], Json::Null));

        // li is demoted to citizen: the layer is not public, so nothing more comes, and the page
        // says why; the cursor of the layer stays where it was.
        env.state.auth.set_role(&admin_actor(), "li", shikong_auth::Role::Citizen).unwrap();
        let second = office_edit(&env, "HS-JG-0002", 3.5);
        let (ids, revoked, after) = pull_all(&env, &li, &rep, &cursor);
        assert!(ids.is_empty(), "{ids:?}");
        assert_eq!(revoked[0]["layer"], "manhole", "{revoked}");
        assert_eq!(revoked[0]["code"], "forbidden", "{revoked}");
        assert!(revoked[0]["reason"].as_str().unwrap().contains("manhole"), "{revoked}");
        assert_eq!(after, cursor);

        // Restored: the pull continues where it stopped.
        env.state.auth.set_role(&admin_actor(), "li", shikong_auth::Role::Inspector).unwrap();
        let (ids, revoked, _) = pull_all(&env, &li, &rep, &after);
        assert_eq!((ids, revoked), (vec![second], Json::Null));

        // A citizen allowed by a rule, whose rule is then removed.
        let zhang = env.token("zhang");
        let rule = shikong_auth::Rule {
            layer: "manhole".into(),
            subject: shikong_auth::Subject::Role(shikong_auth::Role::Citizen),
            grants: shikong_auth::Grants { read: true, create: false, edit: false, publish: false },
        };
        env.state.auth.set_rule(&admin_actor(), &rule).unwrap();
        let rep_z = replica(&env, &zhang, &["manhole"]);
        let start = env.state.store().latest_tx().unwrap().0.to_string();
        env.state.auth.remove_rule(&admin_actor(), "manhole", &rule.subject).unwrap();
        office_edit(&env, "HS-JG-0003", 4.5);
        let (ids, revoked, _) = pull_all(&env, &zhang, &rep_z, &start);
        assert!(ids.is_empty(), "{ids:?}");
        assert_eq!(revoked[0]["code"], "forbidden", "{revoked}");
    }

    #[test]
    fn attachments_are_served_to_readers_of_a_layer_that_references_them() {
        let env = photos().env();
        let (li, zhang, wang, admin) = (env.token("li"), env.token("zhang"), env.token("wang"), env.token("admin"));
        let rep = replica(&env, &li, &["manhole"]);
        let photo: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sha = upload(&env, &li, &photo, "image/jpeg");
        let (id, c) = change(&env, "HS-JG-0001", &meta("li", None), &[("照片", Value::Attachments(vec![sha.clone()]))]);
        let (_, resp) = push(&env, &li, &rep, &[(id, vec![c])]);
        assert_eq!(outcome(&resp, id)["outcome"], "accepted", "{resp}");
        let url = format!("/sync/blobs/{sha}");

        // Readers of the layer get it, with safe headers.
        for t in [&li, &wang] {
            let r = env.get(&url).token(t).send();
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.bytes(), photo);
            assert_eq!(r.header("content-type"), "image/jpeg");
            assert_eq!(r.header("x-content-type-options"), "nosniff");
        }
        // A citizen who cannot read `manhole` does not, and HEAD does not confirm it either.
        let p = problem(&env.get(&url).token(&zhang).send(), StatusCode::FORBIDDEN);
        assert!(p["detail"].as_str().unwrap().contains(&sha), "{p}");
        assert_eq!(env.head(&url).token(&zhang).send().status, StatusCode::NOT_FOUND);
        assert_eq!(env.head(&url).token(&li).send().status, StatusCode::OK);
        problem(&env.get(&url).send(), StatusCode::UNAUTHORIZED);

        // Unreferenced: its uploader (and admins) only. A document is served as a download.
        let page = upload(&env, &zhang, b"<html><script>alert(1)</script></html>", "text/html");
        let page_url = format!("/sync/blobs/{page}");
        let r = env.get(&page_url).token(&zhang).send();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_ne!(r.header("content-type"), "text/html");
        assert!(r.header("content-disposition").starts_with("attachment"), "{:?}", r.headers);
        problem(&env.get(&page_url).token(&li).send(), StatusCode::FORBIDDEN);
        assert_eq!(env.get(&page_url).token(&admin).send().status, StatusCode::OK);

        // Referenced through OGC API – Features by office staff: readers of the layer get it.
        let doc = upload(&env, &admin, b"scan of a work order", "application/pdf");
        let (id2, _) = manhole(&env, "HS-JG-0002");
        let r = env
            .patch(&format!("/collections/manhole/items/{id2}"))
            .token(&wang)
            .json(&json!({"properties": {"照片": [doc]}}))
            .send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = env.get(&format!("/sync/blobs/{doc}")).token(&li).send();
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("content-disposition").starts_with("attachment"));
        problem(&env.get(&format!("/sync/blobs/{doc}")).token(&zhang).send(), StatusCode::FORBIDDEN);
    }

    /// Where the server keeps a finished attachment.
    fn blob_file(env: &Env, sha: &str) -> std::path::PathBuf {
        env.dir.path().join("blobs").join(&sha[..2]).join(sha)
    }

    #[test]
    fn an_attachment_renamed_into_place_but_not_recorded_is_recovered() {
        let env = photos().env();
        let li = env.token("li");
        let rep = replica(&env, &li, &["manhole"]);
        // The server died between the rename and the record: the file is there, the row is not.
        let crashed = |bytes: &[u8]| {
            let sha = shikong_replica::sha256_hex(bytes);
            let f = blob_file(&env, &sha);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, bytes).unwrap();
            sha
        };
        // The client resends its last chunk: the upload is recorded.
        let a = crashed(b"photo one");
        assert!(env.state.store().blob(&a).unwrap().is_none());
        let r = env
            .put(&format!("/sync/blobs/{a}"))
            .token(&li)
            .header("content-type", "image/jpeg")
            .header("content-range", "bytes 0-8/9")
            .body(b"photo one".to_vec())
            .send();
        assert_eq!(r.status, StatusCode::CREATED);
        let rec = env.state.store().blob(&a).unwrap().expect("recorded by the next upload");
        assert_eq!(rec.size, 9);

        // Or the client took it as uploaded and pushed the feature: the download records it.
        let b = crashed(b"photo two");
        let (id, c) = change(&env, "HS-JG-0001", &meta("li", None), &[("照片", Value::Attachments(vec![b.clone()]))]);
        let (_, resp) = push(&env, &li, &rep, &[(id, vec![c])]);
        assert_eq!(outcome(&resp, id)["outcome"], "accepted", "{resp}");
        let r = env.get(&format!("/sync/blobs/{b}")).token(&li).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.bytes(), b"photo two");
        assert!(env.state.store().blob(&b).unwrap().is_some());
        // A damaged file is not served as the attachment.
        let c = crashed(b"photo three");
        std::fs::write(blob_file(&env, &c), b"photo thr").unwrap();
        let (id, ch) = change(&env, "HS-JG-0002", &meta("li", None), &[("照片", Value::Attachments(vec![c.clone()]))]);
        push(&env, &li, &rep, &[(id, vec![ch])]);
        assert_ne!(env.get(&format!("/sync/blobs/{c}")).token(&li).send().status, StatusCode::OK);
    }

    fn put_chunk(env: &Env, token: &str, sha: &str, bytes: &[u8], start: usize, total: usize) -> StatusCode {
        env.put(&format!("/sync/blobs/{sha}"))
            .token(token)
            .header("content-range", &format!("bytes {start}-{}/{total}", start + bytes.len() - 1))
            .body(bytes.to_vec())
            .send()
            .status
    }

    fn received(env: &Env, token: &str, sha: &str) -> u64 {
        let r = env.head(&format!("/sync/blobs/{sha}")).token(token).send();
        r.headers.get("x-shikong-received").map_or(0, |v| v.to_str().unwrap().parse().unwrap())
    }

    #[test]
    fn partial_uploads_are_bounded_per_user_and_expire() {
        let env = photos().env_with(|c| {
            c.max_partial_uploads = 2;
            c.max_partial_bytes = 100_000;
        });
        let (li, wang) = (env.token("li"), env.token("wang"));
        let chunk = vec![7u8; 1000];
        // Two unfinished uploads of li's are allowed, a third is refused; wang has his own quota.
        let shas: Vec<String> = (0..3u8).map(|i| shikong_replica::sha256_hex(&[i; 5000])).collect();
        assert_eq!(put_chunk(&env, &li, &shas[0], &chunk, 0, 5000), StatusCode::ACCEPTED);
        assert_eq!(put_chunk(&env, &li, &shas[1], &chunk, 0, 5000), StatusCode::ACCEPTED);
        let p = problem(
            &env.put(&format!("/sync/blobs/{}", shas[2]))
                .token(&li)
                .header("content-range", "bytes 0-999/5000")
                .body(chunk.clone())
                .send(),
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert!(p["detail"].as_str().unwrap().contains("unfinished"), "{p}");
        assert_eq!(put_chunk(&env, &wang, &shas[2], &chunk, 0, 5000), StatusCode::ACCEPTED);
        // Continuing an upload is not a new one.
        assert_eq!(put_chunk(&env, &li, &shas[0], &chunk, 1000, 5000), StatusCode::ACCEPTED);
        assert_eq!(received(&env, &li, &shas[0]), 2000);
        // Each user resumes their own part.
        assert_eq!(received(&env, &wang, &shas[0]), 0);
        // Bytes: an upload whose declared size would pass the user's budget is refused up front.
        let big = shikong_replica::sha256_hex(&[9u8; 99_500]);
        let p = problem(
            &env.put(&format!("/sync/blobs/{big}"))
                .token(&wang)
                .header("content-range", "bytes 0-999/99500")
                .body(chunk.clone())
                .send(),
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert!(p["detail"].as_str().unwrap().contains("100000"), "{p}");

        // A part untouched for a day is removed; the quota frees up.
        let parts = env.dir.path().join("blobs/partial");
        let mut old = Vec::new();
        for e in walk(&parts) {
            if e.file_name().unwrap().to_string_lossy().starts_with(&shas[1]) {
                let f = std::fs::File::options().write(true).open(&e).unwrap();
                f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600)).unwrap();
                old.push(e);
            }
        }
        assert_eq!(old.len(), 1);
        assert_eq!(put_chunk(&env, &li, &shas[2], &chunk, 0, 5000), StatusCode::ACCEPTED);
        assert!(!old[0].exists(), "expired part removed");
        assert_eq!(received(&env, &li, &shas[1]), 0);
    }

    #[test]
    fn two_chunks_of_one_attachment_at_once_are_never_both_appended() {
        let env = photos().env();
        let wang = env.token("wang");
        // Two chunks of one attachment at once: one is appended, the other told to resume.
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
        for round in 0..8 {
            let mut data = data.clone();
            data[0] = round;
            let sha = shikong_replica::sha256_hex(&data);
            let first = &data[..300_000];
            let env_ref = &env;
            let statuses: Vec<StatusCode> = std::thread::scope(|s| {
                let hs: Vec<_> =
                    (0..2).map(|_| s.spawn(|| put_chunk(env_ref, &wang, &sha, first, 0, data.len()))).collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(statuses.contains(&StatusCode::ACCEPTED), "{statuses:?}");
            assert_eq!(received(&env, &wang, &sha), 300_000, "round {round}: {statuses:?}");
            assert_eq!(put_chunk(&env, &wang, &sha, &data[300_000..], 300_000, data.len()), StatusCode::CREATED);
            assert_eq!(env.get(&format!("/sync/blobs/{sha}")).token(&wang).send().bytes(), data);
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
