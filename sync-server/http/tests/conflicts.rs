//! Conflict review (issue 16) in process: two devices' concurrent edits pushed through
//! `/sync/push`, listed by `GET /sync/conflicts` (filters, paging, identical values left out),
//! settled by `POST /sync/conflicts/resolve` (one version by the office user, audited, pulled by
//! devices without a conflict), with its permissions and its all-or-nothing refusals.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
use shikong_model::{EntityId, Value};
#[allow(unused_imports)] // supertraits of `dyn Store`, in scope for their methods
use shikong_store::{FeatureKey, FeatureStore, SyncBookkeeping};

use crate::support::*;

fn replica(env: &Env, token: &str) -> String {
    let r = env.post("/sync/replicas").token(token).json(&json!({"protocol": 1, "layers": ["manhole"]})).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("x-shikong-replica").to_owned()
}

/// A device edit of an unedited manhole (its document is the shared base), by a fresh actor.
fn change(env: &Env, code: &str, user: &str, device: &str, props: &[(&str, Value)]) -> (EntityId, Vec<u8>) {
    let layer = env.state.store().layer("manhole").unwrap();
    let f = env.state.store().get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap();
    let mut doc = EntityDoc::base(layer.schema(), &f.feature).unwrap();
    let meta = EditMeta { user: user.into(), device: Some(device.into()), time: jiff::Timestamp::now() };
    let props = props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let c = doc.edit(layer.schema(), Actor::random(), &meta, Edit::SetFields(props)).unwrap().unwrap();
    (f.feature.id, c)
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

fn push(env: &Env, token: &str, replica: &str, id: EntityId, change: &[u8]) -> Json {
    let body = json!({"protocol": 1, "replica": replica, "batch": uuid::Uuid::new_v4(),
        "entities": [{"layer": "manhole", "entity": id.to_string(), "changes": [b64(change)]}]});
    let r = env.post("/sync/push").token(token).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// Two devices (li's tablet, then wang's laptop) set `field` of `code` to `a` and `b`.
fn race(env: &Env, code: &str, field: &str, (ua, a): (&str, Value), (ub, b): (&str, Value)) -> (EntityId, Json) {
    let (id, ca) = change(env, code, ua, &format!("{ua} 的平板"), &[(field, a)]);
    let (_, cb) = change(env, code, ub, &format!("{ub} 的笔记本"), &[(field, b)]);
    let (ta, tb) = (env.token(ua), env.token(ub));
    let (ra, rb) = (replica(env, &ta), replica(env, &tb));
    push(env, &ta, &ra, id, &ca);
    (id, push(env, &tb, &rb, id, &cb))
}

fn list(env: &Env, token: &str, query: &str) -> Json {
    let r = env.get(&format!("/sync/conflicts{query}")).token(token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn fields(page: &Json) -> Vec<(String, String)> {
    page["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["code"].as_str().unwrap().to_owned(), c["field"].as_str().unwrap().to_owned()))
        .collect()
}

fn property(env: &Env, code: &str, field: &str) -> Option<Value> {
    let f = env.state.store().get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap();
    f.feature.properties.get(field).cloned()
}

#[test]
fn concurrent_edits_are_listed_once_with_both_values_and_filters_and_pages_work() {
    let env = manholes().env();
    let wang = env.token("wang");
    let before = jiff::Timestamp::now();
    let (a, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    let (b, _) =
        race(&env, "HS-JG-0002", "material", ("li", Value::Text("钢".into())), ("admin", Value::Text("铁".into())));
    // The same value from both sides is no conflict: not answered to the device, not listed.
    let (_, same) = race(&env, "HS-JG-0003", "depth", ("li", Value::Real(5.0)), ("wang", Value::Real(5.0)));
    assert_eq!(same["conflicts"], json!([]), "{same}");
    assert_eq!(property(&env, "HS-JG-0003", "depth"), Some(Value::Real(5.0)));

    let page = list(&env, &wang, "");
    assert_eq!(
        fields(&page),
        [("HS-JG-0001".into(), "depth".into()), ("HS-JG-0002".into(), "material".into())],
        "{page}"
    );
    assert!(page.get("next").is_none(), "{page}");
    let c = &page["conflicts"].as_array().unwrap().iter().find(|c| c["entity"] == a.to_string()).unwrap();
    assert_eq!((c["layer"].as_str(), c["kind"].as_str()), (Some("manhole"), Some("field")));
    let mut values: Vec<(f64, String, String)> = std::iter::once(&c["winner"])
        .chain(c["others"].as_array().unwrap())
        .map(|s| {
            (
                s["value"].as_f64().unwrap(),
                s["user"].as_str().unwrap().to_owned(),
                s["device"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    values.sort_by(|x, y| x.0.total_cmp(&y.0));
    assert_eq!(values, [(2.5, "li".into(), "li 的平板".into()), (3.5, "wang".into(), "wang 的笔记本".into())], "{c}");
    assert_eq!(c["base"], json!(1.2), "both started from the imported depth: {c}");
    assert!(c["winner"]["time"].is_string() && c["opened"].is_string(), "{c}");

    // Filters: layer, an author involved (user or device), opened since.
    assert_eq!(fields(&list(&env, &wang, "?layer=manhole")).len(), 2);
    assert_eq!(fields(&list(&env, &wang, "?layer=road")).len(), 0);
    let by_admin = list(&env, &wang, "?author=admin");
    assert_eq!(by_admin["conflicts"].as_array().unwrap().len(), 1, "{by_admin}");
    assert_eq!(by_admin["conflicts"][0]["entity"], b.to_string());
    assert_eq!(fields(&list(&env, &wang, &format!("?author={}", enc("wang 的笔记本")))).len(), 1);
    assert_eq!(fields(&list(&env, &wang, "?author=zhang")).len(), 0);
    assert_eq!(fields(&list(&env, &wang, &format!("?since={}", enc(&before.to_string())))).len(), 2);
    let later = before + jiff::SignedDuration::from_hours(1);
    assert_eq!(fields(&list(&env, &wang, &format!("?since={}", enc(&later.to_string())))).len(), 0);

    // Paging: one conflict a page, the cursor leads to the other, then the end.
    let first = list(&env, &wang, "?limit=1");
    assert_eq!(first["conflicts"].as_array().unwrap().len(), 1, "{first}");
    let next = first["next"].as_str().unwrap();
    let second = list(&env, &wang, &format!("?limit=1&after={}", enc(next)));
    assert_eq!(second["conflicts"].as_array().unwrap().len(), 1, "{second}");
    assert_ne!(first["conflicts"][0]["entity"], second["conflicts"][0]["entity"]);
    assert!(second.get("next").is_none(), "{second}");
    // Bad parameters are named.
    let p = problem(&env.get("/sync/conflicts?after=nonsense").token(&wang).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "after", "{p}");
    let p = problem(&env.get("/sync/conflicts?since=yesterday").token(&wang).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "since", "{p}");
}

#[test]
fn resolving_writes_one_version_by_the_office_user_and_devices_pull_it_without_conflict() {
    let env = manholes().env();
    let (wang, li, admin) = (env.token("wang"), env.token("li"), env.token("admin"));
    let li_replica = replica(&env, &li);
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    let page = list(&env, &wang, "");
    let c = page["conflicts"][0].clone();
    let chosen = c["others"][0]["value"].as_f64().unwrap();
    assert_ne!(Some(Value::Real(chosen)), property(&env, "HS-JG-0001", "depth"), "the losing value");
    let versions_before = env.store().history("manhole", &FeatureKey::Id(id)).unwrap().len();

    let action = uuid::Uuid::new_v4();
    let body = json!({"action_id": action, "resolutions": [
        {"layer": "manhole", "entity": id.to_string(), "field": "depth", "choose": "other:0"}]});
    let r = env.post("/sync/conflicts/resolve").token(&wang).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let resp = r.json();
    assert_eq!(resp["entities"][0]["entity"], id.to_string(), "{resp}");
    assert!(resp.get("replayed").is_none(), "{resp}");
    assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(chosen)));
    let history = env.store().history("manhole", &FeatureKey::Id(id)).unwrap();
    assert_eq!(history.len(), versions_before + 1, "one new version");
    assert_eq!(history.last().unwrap().tx.author, "wang");
    assert_eq!(resp["entities"][0]["version"], history.last().unwrap().version);

    // Audited like any write (the audit read drains the outbox first).
    let audit = env.get("/admin/audit?user=wang&layer=manhole&action=feature.update").token(&admin).send().json();
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["detail"].as_str().is_some_and(|d| d.contains(&action.to_string()))), "{audit}");
    // The conflict is closed in the list.
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));

    // li's tablet pulls the resolved value and a document with no conflict.
    let pulled = env.get(&format!("/sync/pull?replica={li_replica}&cursor=0")).token(&li).send();
    assert_eq!(pulled.status, StatusCode::OK, "{}", pulled.text());
    let page = pulled.json();
    let e = page["entities"].as_array().unwrap().iter().find(|e| e["entity"] == id.to_string()).unwrap().clone();
    let bytes = {
        use base64ct::Encoding;
        base64ct::Base64::decode_vec(e["doc"].as_str().unwrap()).unwrap()
    };
    let layer = env.state.store().layer("manhole").unwrap();
    let doc = EntityDoc::load(&bytes).unwrap();
    assert_eq!(doc.state(layer.schema()).unwrap().feature.properties.get("depth"), Some(&Value::Real(chosen)));
    assert_eq!(doc.conflicts(layer.schema()).unwrap(), []);

    // The same request again changes nothing.
    let r = env.post("/sync/conflicts/resolve").token(&wang).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["replayed"], true);
    assert_eq!(env.store().history("manhole", &FeatureKey::Id(id)).unwrap().len(), versions_before + 1);

    // A whole-feature choice with a value of the office's own.
    let (other, _) = race(&env, "HS-JG-0002", "depth", ("li", Value::Real(7.0)), ("admin", Value::Real(8.0)));
    let body = json!({"action_id": uuid::Uuid::new_v4(), "resolutions": [
        {"layer": "manhole", "entity": other.to_string(), "choose": {"value": 7.5}}]});
    let r = env.post("/sync/conflicts/resolve").token(&admin).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(property(&env, "HS-JG-0002", "depth"), Some(Value::Real(7.5)));
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));
}

#[test]
fn only_office_staff_and_admins_review_conflicts() {
    let env = manholes().env();
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    let body = json!({"action_id": uuid::Uuid::new_v4(), "resolutions": [
        {"layer": "manhole", "entity": id.to_string(), "field": "depth", "choose": "winner"}]});
    for user in ["li", "zhang"] {
        let t = env.token(user);
        problem(&env.get("/sync/conflicts").token(&t).send(), StatusCode::FORBIDDEN);
        problem(&env.post("/sync/conflicts/resolve").token(&t).json(&body).send(), StatusCode::FORBIDDEN);
    }
    problem(&env.get("/sync/conflicts").send(), StatusCode::UNAUTHORIZED);
    problem(&env.post("/sync/conflicts/resolve").json(&body).send(), StatusCode::UNAUTHORIZED);
    assert_eq!(list(&env, &env.token("admin"), "")["conflicts"].as_array().unwrap().len(), 1);
}

#[test]
fn a_bad_resolution_is_named_and_changes_nothing() {
    let env = manholes().env();
    let wang = env.token("wang");
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    let (other, _) =
        race(&env, "HS-JG-0002", "material", ("li", Value::Text("钢".into())), ("wang", Value::Text("铁".into())));
    let depth = property(&env, "HS-JG-0001", "depth");
    let material = property(&env, "HS-JG-0002", "material");
    let tx = env.store().latest_tx().unwrap();
    // A good resolution of another entity first: refused with the bad one.
    let good = json!({"layer": "manhole", "entity": other.to_string(), "field": "material", "choose": "other:0"});
    let cases = [
        (
            json!({"layer": "manhole", "entity": id.to_string(), "field": "material", "choose": "winner"}),
            "resolutions[1].field",
        ),
        (
            json!({"layer": "manhole", "entity": id.to_string(), "field": "depth", "choose": "other:5"}),
            "resolutions[1].choose",
        ),
        (
            json!({"layer": "manhole", "entity": id.to_string(), "field": "depth", "choose": {"value": "深"}}),
            "resolutions[1].choose.value",
        ),
        (json!({"layer": "manhole", "entity": id.to_string(), "field": "depth", "choose": "loser"}), "resolutions[1]"),
        (
            json!({"layer": "nowhere", "entity": id.to_string(), "field": "depth", "choose": "winner"}),
            "resolutions[1].layer",
        ),
        (
            json!({"layer": "manhole", "entity": uuid::Uuid::new_v4(), "field": "depth", "choose": "winner"}),
            "resolutions[1].entity",
        ),
    ];
    for (bad, member) in cases {
        let body = json!({"action_id": uuid::Uuid::new_v4(), "resolutions": [good, bad]});
        let p = problem(&env.post("/sync/conflicts/resolve").token(&wang).json(&body).send(), StatusCode::BAD_REQUEST);
        assert_eq!(p["member"], member, "{p}");
        assert!(p["detail"].as_str().unwrap().contains(member), "{p}");
        assert_eq!(env.store().latest_tx().unwrap(), tx, "nothing written for {member}");
        assert_eq!(property(&env, "HS-JG-0001", "depth"), depth);
        assert_eq!(property(&env, "HS-JG-0002", "material"), material);
    }
    let p = problem(
        &env.post("/sync/conflicts/resolve")
            .token(&wang)
            .json(&json!({"action_id": uuid::Uuid::new_v4(), "resolutions": []}))
            .send(),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["member"], "resolutions", "{p}");
    assert_eq!(list(&env, &wang, "")["conflicts"].as_array().unwrap().len(), 2, "both still open");
}

#[test]
fn a_resolution_pushed_by_a_device_closes_the_conflict_in_the_list() {
    let env = manholes().env();
    let (wang, li) = (env.token("wang"), env.token("li"));
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    assert_eq!(list(&env, &wang, "")["conflicts"].as_array().unwrap().len(), 1);
    // li's tablet merged the server's document and resolves there, as the app does.
    let layer = env.state.store().layer("manhole").unwrap();
    let (_, bytes) = env.state.store().sync_doc("manhole", id).unwrap().unwrap();
    let mut doc = EntityDoc::load(&bytes).unwrap();
    let meta = EditMeta { user: "li".into(), device: Some("li 的平板".into()), time: jiff::Timestamp::now() };
    let edit = Edit::Resolve { attribute: "depth".into(), value: shikong_crdt::Resolved::Value(Value::Real(2.5)) };
    let c = doc.edit(layer.schema(), Actor::random(), &meta, edit).unwrap().unwrap();
    let resp = push(&env, &li, &replica(&env, &li), id, &c);
    assert_eq!(resp["conflicts"], json!([]), "{resp}");
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));
    assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(2.5)));
}

#[test]
fn the_index_is_rebuilt_from_the_documents_of_an_older_store() {
    let env = manholes().env();
    let wang = env.token("wang");
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    race(&env, "HS-JG-0003", "depth", ("li", Value::Real(5.0)), ("wang", Value::Real(5.0)));
    // A store migrated to schema version 7 has documents with conflicts but no index rows: the
    // list reads the index only, so it shows nothing until the rebuild.
    let mut tx = env.state.store().begin(shikong_store::TxMeta::by("test")).unwrap();
    tx.put_conflicts("manhole", id, 0, &[]).unwrap();
    tx.commit().unwrap();
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));
    // A start with the marker of a built index does not read every document again …
    let marker = env.dir.path().join(shikong_http::CONFLICT_INDEX_MARKER);
    assert!(marker.exists(), "the first start built the index and left its marker");
    let env = env.restarted_with(|_| {});
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));
    // … the first start of an upgraded data folder (no marker) rebuilds it.
    std::fs::remove_file(&marker).unwrap();
    let env = env.restarted_with(|_| {});
    assert!(marker.exists());
    assert_eq!(fields(&list(&env, &wang, "")), [("HS-JG-0001".into(), "depth".into())]);
    // The rebuild by hand says how many entities have open conflicts.
    assert_eq!(shikong_sync_engine::conflicts::reindex(env.state.store(), "admin").unwrap(), 1);
}

#[test]
fn the_same_value_from_the_office_and_a_device_concurrently_is_no_conflict() {
    let env = manholes().env();
    let (wang, li) = (env.token("wang"), env.token("li"));
    let li_replica = replica(&env, &li);
    // li's tablet edits from the document it holds, while the office writes the same value over
    // the OGC API (a version written outside sync): no conflict, neither answered nor listed.
    let (id, c) = change(&env, "HS-JG-0001", "li", "li 的平板", &[("depth", Value::Real(5.0))]);
    let r = env
        .patch("/collections/manhole/items/HS-JG-0001")
        .token(&wang)
        .json(&json!({"properties": {"depth": 5.0}}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let resp = push(&env, &li, &li_replica, id, &c);
    assert_eq!(resp["conflicts"], json!([]), "{resp}");
    assert_eq!(list(&env, &wang, "")["conflicts"], json!([]));
    assert_eq!(property(&env, "HS-JG-0001", "depth"), Some(Value::Real(5.0)));
    // A different value on the same paths is one conflict, with both sides.
    let (other, c) = change(&env, "HS-JG-0002", "li", "li 的平板", &[("depth", Value::Real(6.0))]);
    let r = env
        .patch("/collections/manhole/items/HS-JG-0002")
        .token(&wang)
        .json(&json!({"properties": {"depth": 7.0}}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    push(&env, &li, &li_replica, other, &c);
    let page = list(&env, &wang, "");
    assert_eq!(fields(&page), [("HS-JG-0002".into(), "depth".into())], "{page}");
    let c = &page["conflicts"][0];
    let mut values: Vec<f64> = std::iter::once(&c["winner"])
        .chain(c["others"].as_array().unwrap())
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [6.0, 7.0], "{c}");
}

#[test]
fn a_resolution_applies_only_to_the_conflict_the_user_saw() {
    let env = manholes().env();
    let (wang, admin) = (env.token("wang"), env.token("admin"));
    // A third device edits from the same base; its change reaches the server only later.
    let (_, third) = change(&env, "HS-JG-0001", "admin", "admin 的电脑", &[("depth", Value::Real(4.5))]);
    let (id, _) = race(&env, "HS-JG-0001", "depth", ("li", Value::Real(2.5)), ("wang", Value::Real(3.5)));
    let seen = list(&env, &wang, "")["conflicts"][0].clone();
    let rev = seen["rev"].as_str().expect("each listed conflict carries its revision").to_owned();
    assert!(!rev.is_empty(), "{seen}");
    assert_eq!(list(&env, &wang, "")["conflicts"][0]["rev"], rev, "the same conflict lists the same revision");
    let chosen = seen["others"][0]["value"].clone();
    // The third side arrives between the listing and the resolution.
    let pushed = push(&env, &admin, &replica(&env, &admin), id, &third);
    assert_ne!(pushed["results"][0]["outcome"], "rejected", "{pushed}");
    let depth = property(&env, "HS-JG-0001", "depth");
    let tx = env.store().latest_tx().unwrap();

    // The resolution names what the user saw: refused as changed (409), nothing written.
    let resolve = |choose: &str, seen: Option<&str>, field: Option<&str>| {
        let mut r = json!({"layer": "manhole", "entity": id.to_string(), "choose": choose});
        if let Some(s) = seen {
            r["seen"] = json!(s);
        }
        if let Some(f) = field {
            r["field"] = json!(f);
        }
        let body = json!({"action_id": uuid::Uuid::new_v4(), "resolutions": [r]});
        env.post("/sync/conflicts/resolve").token(&wang).json(&body).send()
    };
    let p = problem(&resolve("other:0", Some(&rev), Some("depth")), StatusCode::CONFLICT);
    assert_eq!(p["member"], "resolutions[0].seen", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("changed"), "{p}");
    assert_eq!(env.store().latest_tx().unwrap(), tx, "nothing written");
    assert_eq!(property(&env, "HS-JG-0001", "depth"), depth);
    // `seen` belongs to one field's conflict.
    let p = problem(&resolve("winner", Some(&rev), None), StatusCode::BAD_REQUEST);
    assert_eq!(p["member"], "resolutions[0].seen", "{p}");

    // Listed again: three sides and a new revision; the user's value, at its new place, is taken.
    let now = list(&env, &wang, "")["conflicts"][0].clone();
    let fresh = now["rev"].as_str().unwrap().to_owned();
    assert_ne!(fresh, rev, "{now}");
    assert_eq!(now["others"].as_array().unwrap().len(), 2, "{now}");
    let choose = if now["winner"]["value"] == chosen {
        "winner".to_owned()
    } else {
        let n = now["others"].as_array().unwrap().iter().position(|s| s["value"] == chosen).unwrap();
        format!("other:{n}")
    };
    let r = resolve(&choose, Some(&fresh), Some("depth"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(property(&env, "HS-JG-0001", "depth").map(|v| v.to_json()), Some(chosen));
    // Resolved meanwhile (by another office user): the old revision is refused as changed too.
    let p = problem(&resolve("winner", Some(&fresh), Some("depth")), StatusCode::CONFLICT);
    assert_eq!(p["member"], "resolutions[0].seen", "{p}");
}
