//! What the window may call beyond the app's own commands: Tauri's core defaults and, of the
//! dialog plugin, only the native open and save dialogs the 选择… buttons use (`ui/src/filepick.js`,
//! through `invoke`). A native GTK dialog cannot be driven by WebDriver; the end-to-end test
//! `tests/desktop_offline.rs` checks in the window that the buttons are there, that these two
//! commands pass the permission check and that the plugin's message dialog does not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

#[test]
fn the_window_is_granted_only_the_open_and_save_dialogs_of_the_plugin() {
    let cap: serde_json::Value = serde_json::from_str(&read("capabilities/default.json")).unwrap();
    assert_eq!(cap["windows"], serde_json::json!(["main"]));
    let granted: Vec<&str> = cap["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(granted, ["core:default", "dialog:allow-open", "dialog:allow-save"]);
    // The front end calls exactly those two of the plugin's commands.
    let js = read("ui/src/filepick.js");
    let mut called: Vec<&str> = js.split("'plugin:dialog|").skip(1).filter_map(|s| s.split('\'').next()).collect();
    called.sort_unstable();
    called.dedup();
    assert_eq!(called, ["open", "save"]);
}
