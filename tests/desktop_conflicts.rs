//! Conflict review in the desktop app (issue 16), end to end: two inspectors' CLI replicas edit
//! the same fields of three manholes differently (and a fourth manhole's depth to the same
//! value), and sync through the real server; the office user wang opens 冲突 in the real
//! `shikong-desktop` window (under Xvfb, through WebDriver) and sees the real conflicts grouped
//! by feature, with base, merged value, both values, authors and devices — and not the identical
//! edit —; the author filter narrows the list; a typed value the field cannot hold is refused
//! naming the feature and field; then one conflict is resolved by field (the losing side), one
//! feature by party (zhao's side for both its fields), one in bulk by "latest wins". The server
//! then holds the chosen values (a new version by wang, in history and audit), lists no
//! conflict, and the first inspector's replica receives the values at its next sync.
//! Screenshots: `target/screenshots/desktop/conflicts.png`, `conflict-resolved.png`.

use crate::common::desktop::{shots, signed_in};
use crate::common::{json, ok, ok_stdin, s, shikong_bin};
use serde_json::Value as Json;
use shikong_replica::{FeatureKey, Replica};

/// The manholes (untouched by the demo's inspection round): one contested field resolved by
/// field, one both inspectors set to the same depth, two contested fields resolved by feature,
/// one contested field resolved in bulk by "latest wins".
const CONTESTED: &str = "420111-JG-00100";
const SAME: &str = "420111-JG-00101";
const BY_FEATURE: &str = "420111-JG-00102";
const IN_BULK: &str = "420111-JG-00103";

#[test]
fn office_resolves_a_conflict_of_two_cli_replicas_in_the_desktop_app() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, wang, li) = crate::common::demo_with_office(dir.path());
    ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", "zhao"], "巡查员密码456\n");
    ok_stdin(&["user", "add", "--data", &data, "--role", "admin", "boss"], "管理员密码789\n");
    let zhao = ok(&["user", "token", "--data", &data, "zhao"]).trim().to_owned();
    let boss = ok(&["user", "token", "--data", &data, "boss"]).trim().to_owned();
    let http = reqwest::blocking::Client::new();
    let get = |path: &str, token: &str| -> Json {
        let r = http.get(server.url(path)).bearer_auth(token).send().unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        json(&r.text().unwrap())
    };
    let depth = |code: &str| get(&format!("/collections/manhole/items/{code}"), &wang)["properties"]["埋深"].clone();
    let base = depth(CONTESTED);
    let base = base.as_f64().unwrap_or_else(|| panic!("the demo's depth of {CONTESTED}: {base}"));
    let entity = get(&format!("/collections/manhole/items/{CONTESTED}"), &wang)["id"].as_str().unwrap().to_owned();

    // Two tablets offline: the same field differently, another field identically; then both sync.
    let tablets: Vec<(&str, std::path::PathBuf)> = [(li.as_str(), "li"), (zhao.as_str(), "zhao")]
        .into_iter()
        .map(|(t, u)| {
            let path = dir.path().join(format!("{u}.gpkg"));
            ok(&["replica", "create", "--server", &server.base, "--token", t, "--layers", "manhole", s(&path)]);
            (t, path)
        })
        .collect();
    // Each tablet names its device (the CLI's SHIKONG_DEVICE), as the review shows it.
    let edit = |i: usize, code: &str, sets: &[&str]| {
        let device = ["li 的平板", "zhao 的平板"][i];
        let out = std::process::Command::new(shikong_bin())
            .args(["replica", "edit", s(&tablets[i].1), "--layer", "manhole", "--code", code])
            .args(sets.iter().flat_map(|set| ["--set", set]))
            .env("SHIKONG_DEVICE", device)
            .output()
            .unwrap();
        assert!(out.status.success(), "replica edit on {device}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let sync = |i: usize| ok(&["replica", "sync", "--token", tablets[i].0, s(&tablets[i].1)]);
    edit(0, CONTESTED, &["埋深=2.5"]);
    edit(1, CONTESTED, &["埋深=3.5"]);
    edit(0, SAME, &["埋深=4.4"]);
    edit(1, SAME, &["埋深=4.4"]);
    // Two material codes (1–4) other than the feature's: setting a field to the value it has
    // writes nothing, so it could not conflict.
    let material = get(&format!("/collections/manhole/items/{BY_FEATURE}"), &wang)["properties"]["材质"].clone();
    let codes: Vec<&str> = ["1", "2", "3", "4"].into_iter().filter(|c| material.as_str() != Some(*c)).collect();
    let (li_material, zhao_material) = (codes[0], codes[1]);
    edit(0, BY_FEATURE, &["埋深=6.1", &format!("材质={li_material}")]);
    edit(1, BY_FEATURE, &["埋深=6.2", &format!("材质={zhao_material}")]);
    // li edits this one twice (the higher Lamport counter: li's value is the merged one), zhao
    // once and later (device times are to the nanosecond; a margin anyway): "latest wins" then
    // picks the side that is not merged.
    edit(0, IN_BULK, &["埋深=7.0"]);
    edit(0, IN_BULK, &["埋深=7.1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    edit(1, IN_BULK, &["埋深=7.2"]);
    sync(0);
    let out = sync(1);
    assert!(out.contains("4 open conflicts"), "zhao's tablet is told of the conflicts: {out}");

    // The server lists exactly the real conflicts: both values, and not the identical edit.
    let listed = get("/sync/conflicts", &wang);
    let conflicts = listed["conflicts"].as_array().unwrap();
    let fields: Vec<(&str, &str)> =
        conflicts.iter().map(|c| (c["code"].as_str().unwrap(), c["field"].as_str().unwrap())).collect();
    assert_eq!(
        fields,
        [(CONTESTED, "埋深"), (BY_FEATURE, "材质"), (BY_FEATURE, "埋深"), (IN_BULK, "埋深")],
        "{listed}"
    );
    assert_eq!(depth(SAME), Json::from(4.4), "the identical edit is simply the value");
    assert_eq!(
        (conflicts[3]["winner"]["value"].as_f64(), conflicts[3]["others"][0]["value"].as_f64()),
        (Some(7.1), Some(7.2))
    );
    let c = &conflicts[0];
    let mut values: Vec<f64> = std::iter::once(&c["winner"])
        .chain(c["others"].as_array().unwrap())
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [2.5, 3.5], "{c}");
    assert_eq!(c["base"].as_f64(), Some(base), "{c}");
    let merged = c["winner"]["value"].as_f64().unwrap();
    let (losing, loser) =
        (c["others"][0]["value"].as_f64().unwrap(), c["others"][0]["user"].as_str().unwrap().to_owned());
    assert_eq!(depth(CONTESTED).as_f64(), Some(merged), "the feature holds the merged value meanwhile");

    // The desktop app lists them in 冲突, grouped by feature, with base, merged, both sides.
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-conflicts");
    let at = |code: &str| format!("[data-testid=conflict-feature][data-code='{code}']");
    let feature = at(CONTESTED);
    app.find(&feature, 60);
    assert!(app.try_find(&at(SAME)).is_none(), "the identical edit is not listed");
    let row = app.text(&format!("{feature} [data-testid=conflict-field][data-field='埋深']"));
    for part in ["埋深", "li · li 的平板", "zhao · zhao 的平板", "2.5", "3.5"] {
        assert!(row.contains(part), "`{part}` in {row:?}");
    }
    assert_eq!(app.text(&format!("{feature} [data-testid=base-value]")), c["base"].to_string());
    assert_eq!(app.text(&format!("{feature} [data-testid=merged-value]")), c["winner"]["value"].to_string());
    let status = app.text("[data-testid=conflict-status]");
    assert!(status.contains("3 个要素") && status.contains("4 处冲突"), "{status}");
    let two = app.text(&at(BY_FEATURE));
    assert!(two.contains("材质") && two.contains("埋深") && two.contains("6.1") && two.contains("6.2"), "{two}");
    // The filters are the server's: an author nobody is, then zhao's tablet (a device name).
    app.type_into("#cf-author", "nobody");
    app.click("#cf-search");
    app.find("[data-testid=conflicts-empty]", 30);
    app.type_into("#cf-author", "zhao 的平板");
    app.click("#cf-search");
    app.find(&at(IN_BULK), 30);
    app.screenshot(&shots().join("conflicts.png"));

    // A typed value the field cannot hold: refused, naming the feature and the field; nothing written.
    app.type_into(&format!("{feature} [data-testid=typed-value]"), "很深");
    app.click(&format!("{feature} button.cf-use"));
    let err = app.wait_text("[data-testid=conflict-error]", 30, "a refused value", |t| !t.is_empty());
    assert!(err.contains(CONTESTED) && err.contains("埋深") && err.contains("400"), "{err}");
    assert_eq!(depth(CONTESTED).as_f64(), Some(merged));
    assert_eq!(get("/sync/conflicts", &wang)["conflicts"].as_array().unwrap().len(), 4);

    let gone = |code: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while app.try_find(&at(code)).is_some() {
            assert!(std::time::Instant::now() < deadline, "{code} still listed: {}", app.page_text());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    // By field: take the losing side; the list is read again and the feature is gone.
    let versions_before =
        get(&format!("/collections/manhole/items/{entity}/history"), &wang)["versions"].as_array().unwrap().len();
    app.click(&format!(
        "{feature} [data-testid=conflict-side][data-value='{}'] button.cf-take",
        c["others"][0]["value"]
    ));
    gone(CONTESTED);
    let status = app.text("[data-testid=conflict-status]");
    assert!(status.contains("已处理 1 项，写入 1 个要素") && status.contains("2 个要素，3 处冲突"), "{status}");
    assert_eq!(app.text("[data-testid=conflict-error]"), "");
    // By feature: zhao's side for both its fields.
    app.click(&format!("{} button.cf-feature-take[data-party='zhao@zhao 的平板']", at(BY_FEATURE)));
    gone(BY_FEATURE);
    let status = app.text("[data-testid=conflict-status]");
    assert!(status.contains("已处理 2 项，写入 1 个要素"), "{status}");
    // In bulk: the selected conflicts by "latest wins".
    app.click(&format!("{} input.cf-pick", at(IN_BULK)));
    app.execute("document.getElementById('cf-rule').value = 'latest_wins'", serde_json::json!([]));
    app.click("[data-testid=bulk-resolve]");
    app.find("[data-testid=conflicts-empty]", 30);
    let status = app.text("[data-testid=conflict-status]");
    assert!(status.contains("已处理 1 项，写入 1 个要素"), "{status}");
    assert_eq!(app.text("[data-testid=conflict-error]"), "");
    app.screenshot(&shots().join("conflict-resolved.png"));
    let value = |code: &str, field: &str| {
        get(&format!("/collections/manhole/items/{code}"), &wang)["properties"][field].clone()
    };
    assert_eq!((value(BY_FEATURE, "埋深"), value(BY_FEATURE, "材质")), (Json::from(6.2), Json::from(zhao_material)));
    assert_eq!(value(IN_BULK, "埋深"), Json::from(7.2), "the later edit won");

    // The server: the chosen value, no open conflict, one new version by wang, audited.
    assert_eq!(depth(CONTESTED).as_f64(), Some(losing), "{loser}'s value was chosen");
    assert_eq!(get("/sync/conflicts", &wang)["conflicts"], serde_json::json!([]));
    let history = get(&format!("/collections/manhole/items/{entity}/history"), &wang);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), versions_before + 1, "{history}");
    let last = versions.last().unwrap();
    assert_eq!(last["tx"]["author"], "wang", "{last}");
    assert!(last["tx"]["source"].as_str().is_some_and(|s| s.starts_with("conflict resolution")), "{last}");
    let audit = get("/admin/audit?user=wang&layer=manhole&action=feature.update", &boss);
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["detail"].as_str().is_some_and(|d| d.starts_with("conflict resolution"))),
        "{audit}"
    );

    // li's tablet receives the resolution at its next sync: the value, and no conflict left.
    sync(0);
    let r = Replica::open(&tablets[0].1).unwrap();
    let held = |code: &str, field: &str| {
        let f = r.get("manhole", &FeatureKey::Code(code.into())).unwrap().unwrap();
        f.feature.properties.get(field).map(shikong_model::Value::to_json)
    };
    assert_eq!(held(CONTESTED, "埋深"), Some(Json::from(losing)));
    assert_eq!(held(BY_FEATURE, "材质"), Some(Json::from(zhao_material)));
    assert_eq!(held(IN_BULK, "埋深"), Some(Json::from(7.2)));
    assert_eq!(r.conflicts().unwrap(), []);
    assert_eq!(ok(&["replica", "conflicts", s(&tablets[0].1)]).trim(), "no open conflicts");
    app.quit();

    for shot in ["conflicts", "conflict-resolved"] {
        let png = std::fs::metadata(shots().join(format!("{shot}.png"))).unwrap().len();
        assert!(png > 10_000, "{shot}.png is a real screenshot ({png} bytes)");
    }
}
