//! Cold start to a usable map with a 100k-feature replica (issue 8), measured in-process and
//! printed (no thresholds): open the app's data folder, list the offline area, open the replica
//! for the map, build the style, render the first screen (Dioxus SSR of the app root) and encode
//! every replica tile of the first view (a 412×915 phone screen at zoom 15, plus the zoom-16
//! tiles of the first pan). The webview's own start and MapLibre's first draw are measured by the
//! end-to-end test in Chromium (`map ready: … ms` on the map screen). Then a sync-sized write
//! runs beside tile reads to show the map keeps answering while the replica is written.
//!
//! Run: `cargo bench -p shikong-mobile --bench cold_start [-- FEATURES]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Instant;

use dioxus::prelude::*;
use shikong_mobile::Device;
use shikong_mobile::app_core::platform::{ImageFolder, ManualLocation, TcpProbe};
use shikong_mobile::mapserver::{MapServer, MapSources};
use shikong_mobile::views::{App, AppContext, Screen};
use shikong_model::{Coord, EntityId, Feature, Geometry, ValidTime, Value};
use shikong_replica::{ReplicaInfo, ReplicaWriter};

fn slippy(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let r = lat.to_radians();
    (
        ((lon + 180.0) / 360.0 * n) as u32,
        ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n) as u32,
    )
}

fn main() {
    let n: u32 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let app_dir = dir.path().join("app");
    std::fs::create_dir_all(app_dir.join("replicas")).unwrap();
    let path = app_dir.join("replicas/洪山区.gpkg");
    let t = Instant::now();
    let info = ReplicaInfo {
        id: uuid::Uuid::new_v4(),
        server_url: "http://127.0.0.1:9".into(),
        user: "张三".into(),
        device: None,
        name: Some("洪山区".into()),
        area: None,
        created_at: jiff::Timestamp::now(),
    };
    let mut w = ReplicaWriter::create(&path, &info, &[shikong_app_core::testkit::manhole()]).unwrap();
    // A 316 × 316 grid over ~20 km × 20 km of 洪山区, the density of a city's manholes.
    let side = f64::from(n).sqrt().ceil() as u32;
    for i in 0..n {
        let f = Feature {
            id: EntityId(uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + u128::from(i))),
            code: format!("420111-JG-{i:06}"),
            geometry: Some(Geometry::Point(Coord::xy(
                114.25 + f64::from(i % side) * 0.2 / f64::from(side),
                30.42 + f64::from(i / side) * 0.18 / f64::from(side),
            ))),
            valid: ValidTime::ALWAYS,
            properties: [("名称".to_string(), Value::from(format!("井盖{i}"))), ("状态".to_string(), Value::from("1"))]
                .into(),
        };
        w.add_feature("manhole", &f, 1, None).unwrap();
    }
    w.finish("0").unwrap();
    eprintln!(
        "# shikong mobile cold start: replica of {n} features written in {:.2} s ({:.1} MB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() as f64 / 1e6
    );
    let mut s = Device::open(
        &app_dir,
        Arc::new(ManualLocation::default()),
        Arc::new(ImageFolder::new(dir.path())),
        Arc::new(TcpProbe),
    )
    .unwrap();
    s.settings.active = Some("洪山区".into());
    // Signed in earlier (the token is not used: nothing here talks to a server).
    s.settings.session = Some(shikong_mobile::app_core::Session {
        server: "http://127.0.0.1:9".into(),
        token: "offline".into(),
        username: "张三".into(),
        role: "inspector".into(),
        expires_at: String::new(),
        device: None,
    });
    s.save().unwrap();
    drop(s);

    for round in 1..=3 {
        let t0 = Instant::now();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let device = Device::open(
            &app_dir,
            Arc::new(ManualLocation::default()),
            Arc::new(ImageFolder::new(dir.path())),
            Arc::new(TcpProbe),
        )
        .unwrap();
        let list = device.replicas().unwrap();
        let t_open = t0.elapsed();
        let map = rt.block_on(MapServer::start(MapSources::default())).unwrap();
        let (rp, bp) = shikong_mobile::mapserver::paths(&app_dir, "洪山区");
        map.sources.show(Some(&rp), Some(&bp)).unwrap();
        let ext = shikong_mobile::mapserver::extent(&device.active_replica().unwrap()).unwrap();
        let style = map.sources.style(&map.base());
        let ctx = AppContext { device: Arc::new(std::sync::Mutex::new(device)), map: map.clone(), start: Screen::Map };
        let mut dom = VirtualDom::new(App).with_root_context(ctx);
        dom.rebuild_in_place();
        let html = dioxus_ssr::render(&dom);
        let t_ui = t0.elapsed();
        let (cx, cy) = ((ext[0] + ext[2]) / 2.0, (ext[1] + ext[3]) / 2.0);
        let mut tiles = 0;
        let mut bytes = 0;
        for (z, w, h) in [(15u8, 2i64, 3i64), (16, 3, 5)] {
            let (x0, y0) = slippy(cx, cy, z);
            for dx in -w / 2..=w / 2 {
                for dy in -h / 2..=h / 2 {
                    let b =
                        map.sources.replica_tile(z, (i64::from(x0) + dx) as u32, (i64::from(y0) + dy) as u32).unwrap();
                    tiles += 1;
                    bytes += b.len();
                }
            }
        }
        let t_map = t0.elapsed();
        assert!(
            html.contains("data-testid=\"map\"")
                && style["layers"].as_array().map_or(0, Vec::len) > 1
                && list.len() == 1
        );
        println!(
            "round {round}: data folder + area list {:.0} ms · map sources, style, first screen {:.0} ms · {tiles} first-view tiles ({:.0} KB) → usable map {:.0} ms",
            t_open.as_secs_f64() * 1e3,
            (t_ui - t_open).as_secs_f64() * 1e3,
            bytes as f64 / 1024.0,
            t_map.as_secs_f64() * 1e3
        );
        if round == 3 {
            // Map responsiveness while a sync writes: tile reads timed during a 2,000-edit write.
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let stop = stop.clone();
                let rp = rp.clone();
                std::thread::spawn(move || {
                    let mut r = shikong_replica::Replica::open(&rp).unwrap();
                    let meta =
                        shikong_replica::EditMeta { user: "张三".into(), device: None, time: jiff::Timestamp::now() };
                    let t = Instant::now();
                    r.batch(|r| {
                        for i in 0..2000u32 {
                            let key = shikong_replica::FeatureKey::Code(format!("420111-JG-{i:06}"));
                            r.set_fields("manhole", &key, [("状态".to_string(), Value::from("2"))].into(), &meta)?;
                        }
                        Ok(())
                    })
                    .unwrap();
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    t.elapsed()
                })
            };
            let mut worst = 0.0f64;
            let mut reads = 0;
            let (x0, y0) = slippy(cx, cy, 16);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                map.sources.replica_tile(16, x0, y0).unwrap();
                worst = worst.max(t.elapsed().as_secs_f64() * 1e3);
                reads += 1;
            }
            let wrote = writer.join().unwrap();
            println!(
                "while a 2000-edit write runs ({:.2} s): {reads} tile reads, slowest {worst:.0} ms",
                wrote.as_secs_f64()
            );
        }
        drop(rt);
    }
}
