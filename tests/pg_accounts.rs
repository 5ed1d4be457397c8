//! Accounts in PostgreSQL (issue 17): two `shikong serve` processes with DIFFERENT data folders on
//! one PostgreSQL database share users, tokens, permission rules and the audit log (schema
//! `shikong_auth` in that database, not `auth.sqlite` in either folder). A token issued by one
//! process is accepted by the other; a revocation through one is refused by the other at the
//! next request; a rule set through one is enforced by the other; `shikong user add --store
//! postgres://…` is seen by a running server; one audit log lists the work of both, in order.

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::server::Server;
use crate::common::*;

const ADMIN_PW: &str = "管理员的密码123";
const OFFICE_PW: &str = "办公室密码123";
const INSPECTOR_PW: &str = "巡查员的密码123";

#[test]
fn two_processes_with_their_own_folders_share_the_accounts_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    for data in [&data_a, &data_b] {
        ok(&["init", "--data", s(data), "--store", &url]);
    }
    let a_store = ["--data", s(&data_a), "--store", url.as_str()];
    let b_store = ["--data", s(&data_b), "--store", url.as_str()];
    ok(&[&["import"][..], &a_store[..], &["--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]]
        .concat());
    // Accounts added through either folder land in the one database.
    ok_stdin(&[&["user", "add"][..], &a_store[..], &["--role", "admin", "root"]].concat(), &format!("{ADMIN_PW}\n"));
    ok_stdin(&[&["user", "add"][..], &b_store[..], &["--role", "office", "wang"]].concat(), &format!("{OFFICE_PW}\n"));
    let listed = ok(&[&["user", "list"][..], &a_store[..]].concat());
    assert!(listed.contains("root") && listed.contains("wang"), "{listed}");
    for data in [&data_a, &data_b] {
        assert!(!data.join("auth.sqlite").exists(), "no auth.sqlite in {}", data.display());
    }

    let a = Server::start(s(&data_a), &["--store", &url]);
    let b = Server::start(s(&data_b), &["--store", &url]);
    let http = reqwest::blocking::Client::new();
    let login = |server: &Server, user: &str, password: &str, request: &str| -> String {
        let r = http
            .post(server.url("/auth/login"))
            .header("x-request-id", request)
            .json(&json!({"username": user, "password": password}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login {user} at {}", server.base);
        r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
    };
    let items = |server: &Server, token: &str, request: &str| -> StatusCode {
        http.get(server.url("/collections/manhole/items?limit=5"))
            .bearer_auth(token)
            .header("x-request-id", request)
            .send()
            .unwrap()
            .status()
    };

    // Logged in through A, the token works on B.
    let wang = login(&a, "wang", OFFICE_PW, "a-login-wang");
    assert_eq!(items(&b, &wang, "b-read-wang"), StatusCode::OK);
    assert_eq!(items(&a, &wang, "a-read-wang"), StatusCode::OK);
    let admin = login(&b, "root", ADMIN_PW, "b-login-root");

    // A user added from the command line while both run: logs in through B, reads through A.
    ok_stdin(
        &[&["user", "add"][..], &b_store[..], &["--role", "inspector", "li"]].concat(),
        &format!("{INSPECTOR_PW}\n"),
    );
    let li = login(&b, "li", INSPECTOR_PW, "b-login-li");
    assert_eq!(items(&a, &li, "a-read-li"), StatusCode::OK);

    // A rule set through A (office may not read manholes) is enforced by B at the next request.
    let r = http
        .put(a.url("/admin/layers/manhole/rules"))
        .bearer_auth(&admin)
        .header("x-request-id", "a-rule")
        .json(&json!({"subject": "role:office", "grants": "none"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().unwrap_or_default());
    assert_eq!(items(&b, &wang, "b-read-wang-denied"), StatusCode::FORBIDDEN);
    let r = http.delete(a.url("/admin/layers/manhole/rules?subject=role:office")).bearer_auth(&admin).send().unwrap();
    assert!(r.status().is_success(), "remove the rule: {}", r.status());
    assert_eq!(items(&b, &wang, "b-read-wang-again"), StatusCode::OK);

    // Logged out (revoked) through B: A refuses the token at the next request.
    let r = http.post(b.url("/auth/logout")).bearer_auth(&wang).header("x-request-id", "b-logout").send().unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(items(&a, &wang, "a-read-wang-revoked"), StatusCode::UNAUTHORIZED);
    // li disabled through A: B refuses li's token (issued by B) at the next request.
    let r = http
        .post(a.url("/admin/users/li/disable"))
        .bearer_auth(&admin)
        .header("x-request-id", "a-disable-li")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().unwrap_or_default());
    assert_eq!(items(&b, &li, "b-read-li-disabled"), StatusCode::UNAUTHORIZED);

    // One audit log, the same through either process, with the work of both in order.
    let audit = |server: &Server| -> Vec<Json> {
        let r = http.get(server.url("/admin/audit?limit=1000")).bearer_auth(&admin).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Json>().unwrap()["entries"].as_array().unwrap().clone()
    };
    let (through_a, through_b) = (audit(&a), audit(&b));
    assert_eq!(through_a, through_b, "both processes read one audit log");
    let ids: Vec<i64> = through_a.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates: {ids:?}");
    let mut requests: Vec<(&str, &str)> = through_a
        .iter()
        .filter_map(|e| Some((e["request_id"].as_str()?, e["action"].as_str()?)))
        .filter(|(r, _)| r.starts_with("a-") || r.starts_with("b-"))
        .collect();
    requests.reverse();
    assert_eq!(
        requests,
        [
            ("a-login-wang", "login.ok"),
            ("b-login-root", "login.ok"),
            ("b-login-li", "login.ok"),
            ("a-rule", "permission.set"),
            ("b-logout", "token.revoke"),
            ("a-disable-li", "user.disable"),
        ],
        "the audit rows of both processes, oldest first"
    );
    let cli = through_a.iter().filter(|e| e["actor"]["local"] == "cli").count();
    assert_eq!(cli, 3, "the command line's three `user add` are in the log too");
}
