//! `shikong store copy` through the real binary: the demo data folder into PostgreSQL (a private
//! cluster of `shikong-pgtest`) and back into a new data folder, every layer, version and
//! transaction arriving as it was, and the accounts with them: a device enrolled with the server
//! on the data folder goes on with its token against `shikong serve --store postgres://…` (no
//! re-enrolment), and people log in with the same passwords. A second copy into the now full
//! database is refused.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::server::Server;

use shikong_store::{ChangeCursor, FeatureKey, Store, StoreConfig};

use crate::common::*;

/// What must be the same on every copy: layers, counts, the journal, each layer's first change
/// pages and the history of its first entities.
fn summary(store: &dyn Store) -> String {
    let mut out = format!("latest {:?}\n", store.latest_tx().unwrap());
    out.push_str(&format!("{:?}\n", store.transactions(None, 100_000).unwrap()));
    for layer in store.layers().unwrap() {
        let name = layer.name();
        out.push_str(&format!("{layer:?} count {}\n", store.count(name).unwrap()));
        let page = store.changes_since(name, ChangeCursor::default(), 20).unwrap();
        out.push_str(&format!("{page:?}\n"));
        for c in page.changes.iter().take(3) {
            out.push_str(&format!("{:?}\n", store.history(name, &FeatureKey::Id(c.id)).unwrap()));
        }
        let later = store.changes_since(name, ChangeCursor { tx: 2, kind: 0, key: 10 }, 5).unwrap();
        out.push_str(&format!("{later:?}\n"));
    }
    out
}

fn open(config: &str) -> std::sync::Arc<dyn Store> {
    shikong_store::open(&config.parse::<StoreConfig>().unwrap()).unwrap()
}

#[test]
fn the_demo_folder_moves_to_postgres_and_back_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo_data(&data);
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let expected = summary(&*open(s(&data)));
    let versions: u64 = {
        let conn = rusqlite::Connection::open(data.join("store.gpkg")).unwrap();
        let layers: Vec<String> = conn
            .prepare("SELECT name FROM sk_layers")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        layers
            .iter()
            .map(|l| {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT (SELECT count(*) FROM \"{l}\") + (SELECT count(*) FROM \"sk_hist_{l}\")"),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                n as u64
            })
            .sum()
    };

    // Accounts on the data folder (auth.sqlite): an office user, and an inspector whose tablet
    // was enrolled through the server on the folder.
    ok_stdin(&["user", "add", "--data", s(&data), "--role", "office", "wang"], &format!("{OFFICE_PW}\n"));
    ok_stdin(&["user", "add", "--data", s(&data), "--role", "inspector", "li"], &format!("{INSPECTOR_PW}\n"));
    let http = reqwest::blocking::Client::new();
    let login = |server: &Server, user: &str, password: &str| -> reqwest::blocking::Response {
        http.post(server.url("/auth/login")).json(&json!({"username": user, "password": password})).send().unwrap()
    };
    let me = |server: &Server, token: &str| -> (StatusCode, Json) {
        let r = http.get(server.url("/auth/me")).bearer_auth(token).send().unwrap();
        (r.status(), r.json().unwrap_or(Json::Null))
    };
    let (device_token, device, wang_session) = {
        let embedded = Server::start(s(&data), &[]);
        let r = login(&embedded, "li", INSPECTOR_PW);
        assert_eq!(r.status(), StatusCode::OK);
        let li: Json = r.json().unwrap();
        let r = http.post(embedded.url("/auth/enrolments")).bearer_auth(li["token"].as_str().unwrap()).send().unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let code: Json = r.json().unwrap();
        let r = http
            .post(embedded.url("/auth/enrol"))
            .json(&json!({"code": code["code"], "device": {"name": "李的平板", "platform": "android"}}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let enrolled: Json = r.json().unwrap();
        let r = login(&embedded, "wang", OFFICE_PW);
        assert_eq!(r.status(), StatusCode::OK);
        let wang: Json = r.json().unwrap();
        let device_token = enrolled["token"].as_str().unwrap().to_owned();
        assert_eq!(me(&embedded, &device_token).0, StatusCode::OK);
        assert!(embedded.stop());
        (device_token, enrolled["device"].as_str().unwrap().to_owned(), wang["token"].as_str().unwrap().to_owned())
    };

    let out = ok(&["store", "copy", "--from", s(&data), "--to", &url]);
    assert!(out.contains(&format!("{versions} versions")) && out.contains("layers"), "{out}");
    assert!(out.contains("accounts: ") && out.contains("1 devices") && out.contains("auth schema version"), "{out}");
    assert_eq!(summary(&*open(&url)), expected, "the PostgreSQL copy reads as the data folder");

    // A server on the database (a new data folder: no auth.sqlite in it) knows the tablet and
    // the people: the device token works as it is, wang's session too, passwords are the same.
    let served = dir.path().join("served");
    ok(&["init", "--data", s(&served), "--store", &url]);
    {
        let on_pg = Server::start(s(&served), &["--store", &url]);
        let (status, who) = me(&on_pg, &device_token);
        assert_eq!(status, StatusCode::OK, "the enrolled device goes on without re-enrolling: {who}");
        assert_eq!((who["username"].as_str(), who["device"].as_str()), (Some("li"), Some(device.as_str())), "{who}");
        assert_eq!(me(&on_pg, &wang_session).1["username"], "wang");
        assert_eq!(login(&on_pg, "wang", OFFICE_PW).status(), StatusCode::OK, "same password");
        assert_eq!(login(&on_pg, "wang", "not the password").status(), StatusCode::UNAUTHORIZED);
        let r = http.get(on_pg.url("/collections/district/items?limit=1")).bearer_auth(&device_token).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(on_pg.stop());
    }
    assert!(!served.join("auth.sqlite").exists(), "the accounts are in the database");

    // The CLI reads the copy like any store (a layer as GeoJSON through `--store`).
    let fc = json(&ok(&["query", "--data", s(&data), "--store", &url, "--layer", "district"]));
    assert_eq!(fc["features"].as_array().unwrap().len(), 13, "Wuhan's 13 districts");

    // And back into a new data folder.
    let back = dir.path().join("back");
    let out = ok(&["store", "copy", "--from", &url, "--to", s(&back), "--from-data", s(&data)]);
    assert!(out.contains(&format!("{versions} versions")), "{out}");
    assert_eq!(summary(&*open(s(&back))), expected, "the copy back reads as the original");
    assert!(Path::new(&back.join("store.gpkg")).is_file());
    let users = ok(&["user", "list", "--data", s(&back)]);
    assert!(users.contains("wang") && users.contains("li"), "the accounts came back too: {users}");

    // A destination that holds a store and accounts is refused, naming what it holds, and left
    // alone (the accounts are checked first, before anything is written).
    let err = fails(&["store", "copy", "--from", s(&data), "--to", &url]);
    assert!(err.contains("empty account store") && err.contains("2 users"), "{err}");
    assert_eq!(summary(&*open(&url)), expected);
    // A folder holding a store but no accounts: the accounts are written first but not
    // committed, the store copy is refused, and the accounts are rolled back with it.
    let only = dir.path().join("only");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::copy(back.join("store.gpkg"), only.join("store.gpkg")).unwrap();
    let err = fails(&["store", "copy", "--from", s(&data), "--to", s(&only)]);
    assert!(err.contains("must be an empty store") && err.contains("layers"), "{err}");
    let users = ok(&["user", "list", "--data", s(&only)]);
    assert!(!users.contains("wang"), "no accounts were left behind: {users}");
}

const OFFICE_PW: &str = "办公室密码123";
const INSPECTOR_PW: &str = "巡查员的密码123";
