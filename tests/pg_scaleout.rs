//! Scale-out on PostgreSQL (issue 17): two `shikong serve` processes on one PostgreSQL database
//! (a fresh database in the private cluster of `shikong-pgtest`) and one data folder (the
//! attachments are files in it); the accounts are in the database (schema `shikong_auth`), so a
//! token issued by either works on the other (tests/pg_accounts.rs: separate data folders). Three devices driven through the
//! `shikong replica` command line cut their replicas from either process, edit at the same time
//! (one thread per device, each running real processes) and sync alternately through the two
//! processes; afterwards both processes serve the same features, every replica holds them, every
//! accepted edit is in the history, and a push replayed to the other process writes nothing new.

use std::collections::BTreeMap;

use crate::common::server::Server;
use crate::common::*;
use serde_json::{Value as Json, json};
use shikong_model::Bbox;
use shikong_protocol as wire;
use shikong_replica::Replica;

const WORLD: Bbox = Bbox { min_x: 73.0, min_y: 3.0, max_x: 136.0, max_y: 54.0 };
const USERS: [&str; 3] = ["li", "wu", "zhao"];
const ROUNDS: usize = 4;
/// Each device writes its own field of HS-JG-0002 (so the merged value is known exactly).
const OWN_FIELD: [&str; 3] = ["名称", "material", "depth"];

/// Every live feature as one process serves it: code → (geometry, properties).
fn served(server: &Server, token: &str) -> BTreeMap<String, (Json, Json)> {
    let fc = server.get_json("/collections/manhole/items?limit=1000", token);
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["properties"]["code"].as_str().unwrap().to_owned(), (f["geometry"].clone(), f["properties"].clone()))
        })
        .collect()
}

/// What the replicas are compared on: code → (depth, material, 名称).
type Fields = BTreeMap<String, (Json, Json, Json)>;

fn fields_of_served(s: &BTreeMap<String, (Json, Json)>) -> Fields {
    s.iter()
        .map(|(code, (_, p))| (code.clone(), (p["depth"].clone(), p["material"].clone(), p["名称"].clone())))
        .collect()
}

fn fields_of_replica(path: &std::path::Path) -> Fields {
    let r = Replica::open(path).unwrap();
    let get =
        |f: &shikong_model::Feature, k: &str| f.properties.get(k).map_or(Json::Null, shikong_model::Value::to_json);
    r.query_bbox("manhole", &WORLD)
        .unwrap()
        .into_iter()
        .map(|f| {
            let f = f.feature;
            (f.code.clone(), (get(&f, "depth"), get(&f, "material"), get(&f, "名称")))
        })
        .collect()
}

fn history(server: &Server, token: &str, code: &str) -> Json {
    server.get_json(&format!("/collections/manhole/items/{code}/history"), token)
}

/// How many of `h`'s device edits are `user`'s `op` writing `attribute`.
fn edits_by(h: &Json, user: &str, op: &str, attribute: &str) -> usize {
    h["edits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["user"] == user && e["op"] == op && e["attributes"].as_array().unwrap().iter().any(|a| a == attribute)
        })
        .count()
}

fn push(server: &Server, token: &str, batch: &wire::PushRequest) -> wire::PushResponse {
    let r = server.http.post(server.url("/sync/push")).bearer_auth(token).json(batch).send().unwrap();
    assert_eq!(r.status(), 200, "push to {}", server.base);
    r.json().unwrap()
}

#[test]
fn three_devices_sync_alternately_through_two_servers_on_one_postgres_database() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let store = ["--data", data.as_str(), "--store", url.as_str()];
    ok(&[&["init"][..], &store[..]].concat());
    ok(&[&["import"][..], &store[..], &["--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]]
        .concat());
    for u in USERS {
        ok_stdin(&["user", "add", "--data", &data, "--store", &url, "--role", "inspector", u], "巡查员的密码123\n");
    }
    ok_stdin(&["user", "add", "--data", &data, "--store", &url, "--role", "office", "wang"], "办公室密码123\n");
    let servers = [Server::start(&data, &["--store", &url]), Server::start(&data, &["--store", &url])];
    assert_ne!(servers[0].base, servers[1].base);

    // A token issued by one process is good on the other (one account store in the database).
    let login: wire::api::LoginResponse = servers[1]
        .http
        .post(servers[1].url("/auth/login"))
        .json(&wire::api::LoginRequest { username: "wang".into(), password: "办公室密码123".into(), device: None })
        .send()
        .unwrap()
        .json()
        .unwrap();
    let office = login.token;
    assert_eq!(served(&servers[0], &office), served(&servers[1], &office));

    // Replicas cut from either process.
    let devices: Vec<(String, std::path::PathBuf)> = USERS
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let t = ok(&["user", "token", "--data", &data, "--store", &url, u]).trim().to_owned();
            let path = dir.path().join(format!("{u}.gpkg"));
            ok(&[
                "replica",
                "create",
                "--server",
                &servers[i % 2].base,
                "--token",
                &t,
                "--layers",
                "manhole",
                s(&path),
            ]);
            (t, path)
        })
        .collect();
    let sync = |i: usize, server: &Server| {
        let out = ok(&["replica", "sync", "--server", &server.base, "--token", &devices[i].0, s(&devices[i].1)]);
        assert!(out.contains(", 0 rejected"), "device {i}: {out}");
        out
    };

    // Rounds: every device edits (a field all three write, its own field of another feature, a
    // creation) and syncs, all three at the same time, each round through the other process.
    // Every value differs from the imported one (an edit to the same value records nothing).
    let value = |i: usize, round: usize| match OWN_FIELD[i] {
        "depth" => json!(f64::from(u32::try_from(round * 10 + i + 1).unwrap()) / 4.0),
        field => json!(format!("{field}-{}-{round}", USERS[i])),
    };
    for round in 0..ROUNDS {
        std::thread::scope(|sc| {
            for i in 0..3 {
                let (path, servers, sync, value) = (&devices[i].1, &servers, &sync, &value);
                sc.spawn(move || {
                    let edit =
                        |args: &[&str]| ok(&[&["replica", "edit", s(path), "--layer", "manhole"][..], args].concat());
                    edit(&["--code", "HS-JG-0001", "--set", &format!("depth={}.{}", round + 1, i + 5)]);
                    let own = value(i, round);
                    let own = own.as_str().map_or_else(|| own.to_string(), str::to_owned);
                    edit(&["--code", "HS-JG-0002", "--set", &format!("{}={own}", OWN_FIELD[i])]);
                    let point = format!("114.3{i},30.5{round}");
                    edit(&[
                        "--create",
                        "--point",
                        &point,
                        "--set",
                        &format!("code=D{i}-{round}"),
                        "--set",
                        "depth=1.5",
                    ]);
                    sync(i, &servers[(round + i) % 2]);
                });
            }
        });
    }
    // Quiescence: everyone syncs twice more, again alternating.
    for pass in 0..2 {
        for i in 0..3 {
            sync(i, &servers[(pass + i + 1) % 2]);
        }
    }

    // Both processes serve the same features; every replica holds them.
    let through_a = served(&servers[0], &office);
    assert_eq!(through_a, served(&servers[1], &office), "the two processes disagree");
    assert_eq!(through_a.len(), 3 + 3 * ROUNDS, "{:?}", through_a.keys());
    for i in 0..3 {
        for round in 0..ROUNDS {
            assert!(through_a.contains_key(&format!("D{i}-{round}")), "D{i}-{round} missing");
        }
    }
    let fields = fields_of_served(&through_a);
    for (i, (_, path)) in devices.iter().enumerate() {
        assert_eq!(fields_of_replica(path), fields, "device {i} ({}) differs from the servers", USERS[i]);
    }
    // Each device's own field of HS-JG-0002 holds its last value; HS-JG-0001's depth, written by
    // all, holds one of the last round's values.
    let p2 = &through_a["HS-JG-0002"].1;
    for i in 0..3 {
        assert_eq!(p2[OWN_FIELD[i]], value(i, ROUNDS - 1), "{p2}");
    }
    let last: Vec<Json> = (0..3).map(|i| json!(format!("{ROUNDS}.{}", i + 5).parse::<f64>().unwrap())).collect();
    assert!(last.contains(&through_a["HS-JG-0001"].1["depth"]), "{:?}", through_a["HS-JG-0001"]);

    // Every accepted edit is in the history, the same through both processes.
    for code in ["HS-JG-0001", "HS-JG-0002"] {
        let h = history(&servers[0], &office, code);
        assert_eq!(h, history(&servers[1], &office, code), "{code}: the histories differ");
        for (i, u) in USERS.iter().enumerate() {
            let field = if code == "HS-JG-0001" { "depth" } else { OWN_FIELD[i] };
            assert_eq!(edits_by(&h, u, "set", field), ROUNDS, "{code}: {u}'s edits of {field}: {h}");
        }
    }
    for (i, u) in USERS.iter().enumerate() {
        for round in 0..ROUNDS {
            let h = history(&servers[(i + round) % 2], &office, &format!("D{i}-{round}"));
            assert_eq!(h["edits"].as_array().unwrap().iter().filter(|e| e["op"] == "create").count(), 1, "{h}");
            assert_eq!(h["edits"][0]["user"], *u, "{h}");
        }
    }

    // A push replayed to the other process is idempotent: the same version, nothing new stored.
    let (li, li_path) = &devices[0];
    ok(&["replica", "edit", s(li_path), "--layer", "manhole", "--code", "HS-JG-0003", "--set", "depth=7.75"]);
    let versions = |server: &Server| history(server, &office, "HS-JG-0003")["versions"].as_array().unwrap().len();
    let before = versions(&servers[0]);
    let batch = Replica::open(li_path).unwrap().push_batch(wire::MAX_PUSH_ENTITIES).unwrap().expect("a pending edit");
    let first = push(&servers[0], li, &batch);
    let again = push(&servers[1], li, &batch);
    assert_eq!(first.results.len(), 1);
    let wire::Outcome::Accepted { version } = first.results[0].outcome else { panic!("{first:?}") };
    assert_eq!(again.results[0].outcome, wire::Outcome::Unchanged { version }, "the replay wrote a new version");
    assert_eq!((versions(&servers[0]), versions(&servers[1])), (before + 1, before + 1));
    // The device never heard the answers: its next sync sends the edit a third time, to no effect.
    let out = sync(0, &servers[1]);
    assert!(out.contains("0 accepted, 1 unchanged, 0 rejected"), "{out}");
    assert_eq!(versions(&servers[0]), before + 1);
    for server in &servers {
        assert_eq!(served(server, &office)["HS-JG-0003"].1["depth"], json!(7.75));
    }
    println!("pg_scaleout: {ROUNDS} rounds × 3 devices over two processes in {:.1?}", started.elapsed());
}
