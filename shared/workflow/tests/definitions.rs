//! Loading definitions: the shipped documents are valid, and each kind of broken document is
//! refused with a typed error naming the JSON path.
#![allow(clippy::expect_used)] // test code: a failed expect is a failed test

use serde_json::{Value, json};
use shikong_workflow::{ClassError, ClassKind, FlowDef, FlowError, FlowRef, FlowRegistry, Provenance, shipped};

fn standard_json() -> Value {
    serde_json::from_str(shipped::STANDARD_FLOW_JSON).expect("json")
}

fn load(v: &Value) -> Result<FlowDef, FlowError> {
    FlowDef::from_json(&v.to_string())
}

#[test]
fn shipped_flows_load_with_the_exact_action_words() {
    let standard = shipped::standard_flow().expect("standard");
    let words: Vec<&str> = standard.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        words,
        ["accept", "register", "dispatch", "handle", "verify", "close", "return", "extend", "suspend", "urge", "rate"]
    );
    for state in &standard.states {
        assert!(!state.label.zh.is_empty() && !state.label.en.is_empty(), "{}", state.id);
    }
    let hotline = shipped::hotline_flow().expect("hotline");
    let main: Vec<&str> = ["received", "dispatched", "handled", "replied", "concluded", "visited", "rated"].to_vec();
    assert_eq!(hotline.states.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), main);
    let registry = FlowRegistry::shipped().expect("registry");
    assert_eq!(registry.latest("city-standard").map(|f| f.version), Some(1));
    assert!(registry.get(&FlowRef { id: "hotline-12345".into(), version: 1 }).is_some());
}

#[test]
fn registry_keeps_versions_and_refuses_a_changed_document_under_the_same_version() {
    let mut registry = FlowRegistry::shipped().expect("registry");
    let mut v2 = standard_json();
    v2["version"] = json!(2);
    v2["states"][3]["limit"] = json!({ "working_days": 5 });
    registry.add(load(&v2).expect("v2")).expect("add v2");
    assert_eq!(registry.latest("city-standard").map(|f| f.version), Some(2));
    let v1 = registry.get(&FlowRef { id: "city-standard".into(), version: 1 }).expect("v1 kept");
    assert_eq!(v1.states[3].limit, Some(shikong_workflow::TimeLimit::WorkingDays(3)));
    registry.add(shipped::standard_flow().expect("same")).expect("identical re-add is fine");
    let mut changed = standard_json();
    changed["label"]["en"] = json!("changed");
    let err = registry.add(load(&changed).expect("valid")).expect_err("same version, other content");
    assert_eq!(err, FlowError::VersionExists { id: "city-standard".into(), version: 1 });
}

#[test]
fn unknown_state_names_its_path() {
    let mut v = standard_json();
    v["actions"][2]["rules"][0]["from"][1] = json!("limbo");
    assert_eq!(
        load(&v),
        Err(FlowError::UnknownState { path: "actions[2].rules[0].from[1]".into(), state: "limbo".into() })
    );
    let mut v = standard_json();
    v["initial"] = json!("nowhere");
    assert_eq!(load(&v), Err(FlowError::UnknownState { path: "initial".into(), state: "nowhere".into() }));
}

#[test]
fn unreachable_state_is_refused() {
    let mut v = standard_json();
    v["states"].as_array_mut().expect("states").push(json!({
        "id": "orphan", "label": { "zh": "孤立", "en": "Orphan" }, "terminal": true
    }));
    assert_eq!(load(&v), Err(FlowError::UnreachableState { path: "states[10]".into(), state: "orphan".into() }));
}

#[test]
fn action_without_roles_is_refused() {
    let mut v = standard_json();
    v["actions"][0]["rules"][0]["roles"] = json!([]);
    assert_eq!(
        load(&v),
        Err(FlowError::ActionWithoutRoles { path: "actions[0].rules[0].roles".into(), action: "accept".into() })
    );
    let mut v = standard_json();
    v["actions"][9]["rules"] = json!([]);
    assert_eq!(load(&v), Err(FlowError::ActionWithoutRoles { path: "actions[9].rules".into(), action: "urge".into() }));
}

#[test]
fn duplicate_ids_are_refused() {
    let mut v = standard_json();
    v["actions"][1]["id"] = json!("accept");
    assert_eq!(
        load(&v),
        Err(FlowError::DuplicateId {
            path: "actions[1].id".into(),
            id: "accept".into(),
            first: "actions[0].id".into()
        })
    );
    let mut v = standard_json();
    v["states"][2]["id"] = json!("reported");
    assert!(matches!(load(&v), Err(FlowError::DuplicateId { path, .. }) if path == "states[2].id"));
}

#[test]
fn other_definition_errors() {
    let mut v = standard_json();
    v["actions"][3]["rules"][0]["roles"][0] = json!("wizard");
    assert_eq!(
        load(&v),
        Err(FlowError::UnknownRole { path: "actions[3].rules[0].roles[0]".into(), role: "wizard".into() })
    );
    let mut v = standard_json();
    v["states"][6]["terminal"] = json!(false);
    v["actions"][2]["rules"][0]["from"] = json!(["registered", "dispatched"]);
    v["actions"][5]["rules"].as_array_mut().expect("rules").remove(1);
    assert_eq!(load(&v), Err(FlowError::DeadEnd { path: "states[6]".into(), state: "suspended".into() }));
    let mut v = standard_json();
    v["states"][0]["limit"] = json!({ "working_hours": 0 });
    assert_eq!(load(&v), Err(FlowError::ZeroLimit { path: "states[0].limit".into() }));
    let mut v = standard_json();
    v["actions"][7]["rules"][0]["to"] = json!("registered");
    assert_eq!(load(&v), Err(FlowError::ExtendMovesState { path: "actions[7].rules[0].to".into() }));
    let mut v = standard_json();
    v["id"] = json!("City Standard");
    assert_eq!(load(&v), Err(FlowError::InvalidId { path: "id".into(), id: "City Standard".into() }));
    let mut v = standard_json();
    v["states"][1]["label"]["zh"] = json!(" ");
    assert_eq!(load(&v), Err(FlowError::EmptyLabel { path: "states[1].label.zh".into() }));
    let mut v = standard_json();
    v["states"][1]["colour"] = json!("red");
    assert!(matches!(load(&v), Err(FlowError::Json { .. })), "unknown fields are refused, not ignored");
}

#[test]
fn shipped_classification_is_valid_and_honest_about_sources() {
    let c = shipped::classification().expect("classification");
    let majors = |list: &[shikong_workflow::MajorClass]| -> Vec<(String, String)> {
        list.iter().map(|m| (m.code.clone(), m.label.zh.clone())).collect()
    };
    let want = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    };
    assert_eq!(
        majors(&c.components),
        want(&[
            ("01", "公用设施"),
            ("02", "道路交通"),
            ("03", "市容环境"),
            ("04", "园林绿化"),
            ("05", "房屋土地"),
            ("06", "其他设施")
        ])
    );
    assert_eq!(
        majors(&c.events),
        want(&[
            ("01", "市容环境"),
            ("02", "宣传广告"),
            ("03", "施工管理"),
            ("04", "突发事件"),
            ("05", "街面秩序"),
            ("06", "其他事件")
        ])
    );
    let (major, minor) = c.minor(ClassKind::Component, "0101").expect("上水井盖");
    assert_eq!((major.code.as_str(), minor.label.zh.as_str()), ("01", "上水井盖"));
    assert_eq!(c.minor(ClassKind::Event, "0102").map(|(_, m)| m.provenance), Some(Provenance::Corroborated));
    for major in c.components.iter().chain(&c.events) {
        for minor in &major.minors {
            if minor.code.ends_with("99") {
                assert_eq!(minor.provenance, Provenance::Local, "{} is a catch-all added here", minor.code);
            }
        }
    }
    assert!(c.notes.contains("could not be sourced"));
}

#[test]
fn classification_errors_name_the_path() {
    let mut v: Value = serde_json::from_str(shipped::CLASSIFICATION_JSON).expect("json");
    v["events"][1]["minors"][0]["code"] = json!("0301");
    let err = shikong_workflow::Classification::from_json(&v.to_string()).expect_err("outside its major");
    assert_eq!(
        err,
        ClassError::MinorOutsideMajor {
            path: "events[1].minors[0].code".into(),
            code: "0301".into(),
            major: "02".into()
        }
    );
    let mut v: Value = serde_json::from_str(shipped::CLASSIFICATION_JSON).expect("json");
    v["components"][0]["minors"][1]["code"] = json!("0101");
    let err = shikong_workflow::Classification::from_json(&v.to_string()).expect_err("duplicate");
    assert_eq!(
        err,
        ClassError::DuplicateCode {
            path: "components[0].minors[1].code".into(),
            code: "0101".into(),
            first: "components[0].minors[0].code".into()
        }
    );
    let mut v: Value = serde_json::from_str(shipped::CLASSIFICATION_JSON).expect("json");
    v["components"][2]["code"] = json!("3");
    let err = shikong_workflow::Classification::from_json(&v.to_string()).expect_err("bad code");
    assert_eq!(err, ClassError::InvalidCode { path: "components[2].code".into(), code: "3".into(), digits: 2 });
}
