//! Bundles the front end (`ui/src` → `ui/dist`: the app's script with MapLibre GL JS, its CSS
//! and `index.html`) with esbuild, then lets `tauri-build` embed `ui/dist` in the binary.
//!
//! The npm packages are the web map's (`sync-server/http/web`: maplibre-gl and esbuild pinned by
//! its package-lock.json, installed by `scripts/deps.sh desktop`), so one MapLibre version serves
//! the server's `/map` and the desktop. No CDN and nothing fetched at run time.

use std::path::Path;
use std::process::Command;

fn main() {
    let ui = Path::new("ui");
    for p in ["ui/src", "ui/index.html", "../sync-server/http/web/src", "../sync-server/http/web/package-lock.json"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let modules = Path::new("../sync-server/http/web/node_modules");
    let esbuild = modules.join("esbuild/bin/esbuild");
    assert!(
        esbuild.is_file() && modules.join("maplibre-gl/package.json").is_file(),
        "the desktop's front end needs the web map's npm packages in {}: run scripts/deps.sh desktop \
         (npm ci --prefix sync-server/http/web)",
        modules.display()
    );
    let dist = ui.join("dist");
    std::fs::create_dir_all(&dist).unwrap_or_else(|e| panic!("create {}: {e}", dist.display()));
    let bundle = |entry: &str, out: &str, extra: &[&str]| {
        // npm's install of esbuild puts the native binary in place of its Node.js launcher
        let status = Command::new(&esbuild)
            .arg(ui.join("src").join(entry))
            .args(["--bundle", "--minify", "--log-level=warning"])
            .args(extra)
            .arg(format!("--outfile={}", dist.join(out).display()))
            .env("NODE_PATH", modules)
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", esbuild.display()));
        assert!(status.success(), "esbuild failed on ui/src/{entry}");
    };
    bundle("app.js", "app.js", &["--format=iife", "--target=es2020"]);
    bundle("app.css", "app.css", &[]);
    std::fs::copy(ui.join("index.html"), dist.join("index.html")).unwrap_or_else(|e| panic!("copy ui/index.html: {e}"));
    tauri_build::build();
}
