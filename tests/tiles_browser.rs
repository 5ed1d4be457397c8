//! The web map page in a real browser: Debian's Chromium, headless, driven by Playwright
//! (`playwright-core`, no downloaded browser) through `sync-server/http/web/test/browser.mjs`.
//! The page must render the layer's features (checked with MapLibre's rendered-features query),
//! switch to a past date (no features before the layer existed), and compare two dates side by
//! side. Screenshots go to `target/screenshots/` (map-now.png, map-2024-01-01.png,
//! map-2020-06-01.png, map-compare.png).

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use crate::tiles_common::*;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../http/web")
}

#[test]
fn the_web_map_renders_switches_date_and_compares() {
    let web = web_dir();
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix {}` (scripts/deps.sh test does)",
        web.display()
    );
    tool("chromium", "chromium");
    tool("node", "nodejs");
    let env = start(true);
    // Imagery as a time series: hillshades of 2019 and 2023 (GDAL-made MBTiles).
    let dir = env.dir.path();
    let y2019 = hillshade_mbtiles(dir, "hs2019", "315");
    let y2023 = hillshade_mbtiles(dir, "hs2023", "135");
    upload(&env, "hillshade", "date=2019-05-01&kind=hillshade", &y2019);
    upload(&env, "hillshade", "date=2023-08-01&kind=hillshade", &y2023);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let output = Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .arg(&env.server.base)
        .arg(&out)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output from the browser driver: {stderr}"));
    let r = json(line);
    assert_eq!(r["ok"], true, "browser run failed: {r:#}\nstderr: {stderr}");
    println!(
        "WebGL renderer: {}; rendered now {}, 2024-01-01 {}, compare {} | {}",
        r["webgl"], r["now"], r["past"], r["compareLeft"], r["compareRight"]
    );
    // The grid spans ~0.04°; at zoom 14 in a 1200×800 window centred on it, every point shows.
    let now = r["now"].as_u64().unwrap();
    assert!(now >= 100 && now <= (N * N) as u64 * 2, "{r:#}");
    assert_eq!(r["sample"]["名称"].as_str().map(|s| s.ends_with("号井盖")), Some(true), "{r:#}");
    assert_eq!(r["past"], 0, "{r:#}");
    assert!(r["pastUrl"].as_str().unwrap().contains("as-of=2024-01-01"), "{r:#}");
    assert_eq!(r["compareLeft"], 0, "{r:#}");
    assert!(r["compareRight"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["back"].as_u64().unwrap() > 0, "{r:#}");
    // The imagery followed the date: 2023-08-01 is in effect on 2024-01-01 and now; 2019 before.
    assert_eq!(r["rasterPast"], "2023-08-01", "{r:#}");
    assert_eq!(r["raster2020"], "2019-05-01", "{r:#}");
    for f in ["map-now.png", "map-2024-01-01.png", "map-2020-06-01.png", "map-compare.png"] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 10_000, "{f} is suspiciously small");
    }
}
