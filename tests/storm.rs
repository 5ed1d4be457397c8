//! The shift-change sync storm: tens of devices with offline edits on overlapping features all sync
//! at the same moment against the real `shikong serve` on loopback (each device a thread with its
//! own replica file and HTTP client, released together by a barrier), for several rounds; then a
//! settle round, every device syncing twice more one after another.
//!
//! Checked afterwards: every replica equals the server's store entity by entity; every uncontested
//! edit (a feature field only one device changed) holds that device's last value; every contested
//! field holds one of the contenders' values; every offline creation exists exactly once; no
//! device needed a repair from the end-of-sync verification (the safety net must stay idle — a
//! repair means the cursor passed over something), and the server's repair counter agrees.
//!
//! `SHIKONG_STORM="devices=100,edits=30,features=1000,rounds=1,seeds=1-10"` runs the long mode
//! (`scripts/bench.sh storm` does); the default is a modest storm for the normal test run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use shikong_model::{Bbox, Coord, EntityId, Feature, Geometry, Value};
use shikong_replica::{EditMeta, FeatureKey, NewFeature, Replica};
use shikong_store::{Query, StoreConfig};
use shikong_sync_client::{SyncClient, SyncReport};

use crate::common::server::Server;
use crate::common::{ok, ok_stdin, s};

const LAYER: &str = "storm";
const WORLD: Bbox = Bbox { min_x: 73.0, min_y: 3.0, max_x: 136.0, max_y: 54.0 };

#[derive(Debug, Clone)]
pub struct StormConfig {
    pub devices: usize,
    pub edits: usize,
    pub features: usize,
    pub rounds: usize,
    pub seeds: Vec<u64>,
}

impl StormConfig {
    /// The modest default, or `SHIKONG_STORM` (`key=value,…`).
    pub fn from_env() -> StormConfig {
        let mut c = StormConfig { devices: 24, edits: 24, features: 300, rounds: 3, seeds: vec![1] };
        let Ok(spec) = std::env::var("SHIKONG_STORM") else { return c };
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or_else(|| panic!("SHIKONG_STORM: `{part}` is not key=value"));
            let n = |v: &str| v.parse::<usize>().unwrap_or_else(|_| panic!("SHIKONG_STORM: `{part}`"));
            match k {
                "devices" => c.devices = n(v),
                "edits" => c.edits = n(v),
                "features" => c.features = n(v),
                "rounds" => c.rounds = n(v).max(1),
                "seeds" => {
                    c.seeds = match v.split_once('-') {
                        Some((a, b)) => (n(a) as u64..=n(b) as u64).collect(),
                        None => vec![n(v) as u64],
                    }
                }
                other => panic!("SHIKONG_STORM: unknown key `{other}`"),
            }
        }
        c
    }
}

/// What one storm run measured.
#[derive(Debug, Clone)]
pub struct StormOutcome {
    /// Wall time of each concurrent round (all devices syncing at once).
    pub concurrent: Vec<Duration>,
    pub settle: Duration,
    pub repaired: usize,
    pub conflicts: usize,
}

/// One device's offline edit, remembered to check the outcome.
#[derive(Debug, Clone)]
enum Edit {
    Field { code: String, field: &'static str, value: Value },
    Move { code: String, to: Coord },
    Create { code: String },
}

fn point(i: usize) -> Coord {
    Coord::xy(114.30 + (i % 40) as f64 * 0.002, 30.48 + (i / 40) as f64 * 0.002)
}

fn layer_file(dir: &Path, features: usize) -> PathBuf {
    let rows: Vec<String> = (0..features)
        .map(|i| {
            let c = point(i);
            format!(
                r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{},{}]}},"properties":{{"code":"S-{i:04}","status":"正常","depth":1.5,"note":"导入"}}}}"#,
                c.x, c.y
            )
        })
        .collect();
    let path = dir.join("storm.geojson");
    std::fs::write(&path, format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, rows.join(",\n")))
        .expect("write the layer file");
    path
}

/// Picks a feature: most edits fall on a hot tenth of the layer, so devices overlap a lot.
fn pick(rng: &mut fastrand::Rng, features: usize) -> usize {
    let hot = (features / 10).max(1);
    if rng.u8(0..10) < 7 { rng.usize(0..hot) } else { rng.usize(0..features) }
}

fn offline_edits(
    r: &mut Replica,
    dev: usize,
    round: usize,
    n: usize,
    features: usize,
    rng: &mut fastrand::Rng,
) -> Vec<Edit> {
    // The user whose token this device syncs with (`tokens[d % users]`, at most 10 users): the
    // server refuses edits that claim another user.
    let meta = EditMeta {
        user: format!("storm{}", dev % 10),
        device: Some(format!("平板-{dev}")),
        time: jiff::Timestamp::now(),
    };
    let mut done = Vec::new();
    for e in 0..n {
        let i = pick(rng, features);
        let code = format!("S-{i:04}");
        let key = FeatureKey::Code(code.clone());
        let edit = match rng.u8(0..20) {
            0 => {
                let code = format!("N-{dev}-{round}-{e}");
                let f = NewFeature {
                    code: Some(code.clone()),
                    geometry: Some(Geometry::Point(point(i))),
                    properties: [
                        ("status".to_owned(), Value::from("新增")),
                        ("note".to_owned(), Value::from(format!("设备{dev}新建"))),
                    ]
                    .into(),
                    ..NewFeature::default()
                };
                r.create_feature(LAYER, f, &meta).expect("create offline");
                Edit::Create { code }
            }
            1 => {
                let to = Coord::xy(114.30 + rng.f64() * 0.08, 30.48 + rng.f64() * 0.05);
                r.set_geometry(LAYER, &key, Some(Geometry::Point(to)), &meta).expect("move offline");
                Edit::Move { code, to }
            }
            k => {
                let (field, value) = match k % 3 {
                    0 => ("status", Value::from(format!("设备{dev}-{round}-{e}"))),
                    1 => ("depth", Value::Real(f64::from(rng.u32(0..10_000)) / 100.0)),
                    _ => ("note", Value::from(format!("备注 {dev}/{round}/{e}"))),
                };
                r.set_fields(LAYER, &key, [(field.to_owned(), value.clone())].into(), &meta).expect("edit offline");
                Edit::Field { code, field, value }
            }
        };
        done.push(edit);
    }
    done
}

fn features_of(r: &Replica) -> BTreeMap<EntityId, Feature> {
    let rows = r.query_bbox(LAYER, &WORLD).expect("read replica");
    let n = rows.len();
    let map: BTreeMap<EntityId, Feature> = rows.into_iter().map(|f| (f.feature.id, f.feature)).collect();
    assert_eq!(map.len(), n, "{}: duplicate entity rows", r.path().display());
    map
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = reqwest::blocking::get(server.url("/metrics")).expect("metrics").text().expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Runs one storm and checks it; panics with the seed on any loss.
pub fn run_storm(c: &StormConfig, seed: u64) -> StormOutcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    let file = layer_file(dir.path(), c.features);
    ok(&["import", "--data", &data, "--layer", LAYER, "--title", "风暴", s(&file)]);
    let users = c.devices.min(10);
    for u in 0..users {
        ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", &format!("storm{u}")], "巡查员的密码123\n");
    }
    let server = Server::start(&data, &[]);
    let tokens: Vec<String> =
        (0..users).map(|u| ok(&["user", "token", "--data", &data, &format!("storm{u}")]).trim().to_owned()).collect();
    let mut devices: Vec<(usize, Replica, SyncClient)> = (0..c.devices)
        .map(|d| {
            let client = SyncClient::new(&server.base, &tokens[d % users]).expect("client");
            let path = dir.path().join(format!("device{d}.gpkg"));
            client.create_replica(&[LAYER.to_owned()], None, Some(&format!("平板-{d}")), &path).expect("replica");
            (d, Replica::open(&path).expect("open replica"), client)
        })
        .collect();

    let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); c.devices];
    let mut concurrent = Vec::new();
    let mut repaired = 0;
    let per_round = c.edits.div_ceil(c.rounds);
    for round in 0..c.rounds {
        let barrier = Arc::new(Barrier::new(c.devices + 1));
        let handles: Vec<_> = devices
            .drain(..)
            .map(|(d, mut r, client)| {
                let barrier = barrier.clone();
                let features = c.features;
                std::thread::spawn(move || {
                    let mut rng =
                        fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003).wrapping_add((d * 97 + round) as u64));
                    let done = offline_edits(&mut r, d, round, per_round, features, &mut rng);
                    barrier.wait();
                    let report = client.sync(&mut r, &mut |_| {});
                    (d, r, client, done, report)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            let (d, r, client, done, report) = h.join().expect("device thread");
            let report: SyncReport = report.unwrap_or_else(|e| panic!("seed {seed}: device {d} sync failed: {e}"));
            assert!(report.rejected.is_empty(), "seed {seed}: device {d} had refusals: {:?}", report.rejected);
            repaired += report.repaired;
            edits[d].extend(done);
            devices.push((d, r, client));
        }
        concurrent.push(start.elapsed());
        devices.sort_by_key(|(d, _, _)| *d);
    }
    let start = Instant::now();
    let mut conflicts = 0;
    for _ in 0..2 {
        for (d, r, client) in &mut devices {
            let report = client.sync(r, &mut |_| {}).unwrap_or_else(|e| panic!("seed {seed}: device {d} settle: {e}"));
            repaired += report.repaired;
            conflicts = conflicts.max(report.conflicts);
        }
    }
    let settle = start.elapsed();

    // The server's own counter of repairs agrees with what the devices reported.
    assert_eq!(metric(&server, "shikong_sync_repaired_entities_total"), repaired as f64, "seed {seed}");
    let store = shikong_store::open(&StoreConfig::in_dir(&data)).expect("open the server's store");
    let mut server_state = BTreeMap::new();
    store
        .query(&Query::layer(LAYER), &mut |f| {
            server_state.insert(f.feature.id, f.feature);
            true
        })
        .expect("query the store");
    let creates: usize = edits.iter().flatten().filter(|e| matches!(e, Edit::Create { .. })).count();
    assert_eq!(server_state.len(), c.features + creates, "seed {seed}: feature count");
    let by_code: HashMap<&str, &Feature> = server_state.values().map(|f| (f.code.as_str(), f)).collect();
    assert_eq!(by_code.len(), server_state.len(), "seed {seed}: duplicate codes on the server");
    for (d, r, _) in &devices {
        assert_eq!(r.pending().expect("pending"), 0, "seed {seed}: device {d} still has pending edits");
        let local = features_of(r);
        if local != server_state {
            let differ: Vec<&str> = server_state
                .iter()
                .filter(|(id, f)| local.get(id) != Some(f))
                .map(|(_, f)| f.code.as_str())
                .chain(local.iter().filter(|(id, _)| !server_state.contains_key(id)).map(|(_, f)| f.code.as_str()))
                .collect();
            let first = server_state.iter().find(|(id, f)| local.get(id) != Some(f));
            let example = first.map(|(id, f)| format!("server {f:?}\ndevice {:?}", local.get(id)));
            panic!(
                "seed {seed}: device {d} differs from the server on {} rows: {differ:?}\n{}",
                differ.len(),
                example.unwrap_or_default()
            );
        }
    }
    // Uncontested edits hold; contested fields hold one contender's value.
    let mut last: BTreeMap<(String, &'static str), BTreeMap<usize, Value>> = BTreeMap::new();
    for (d, list) in edits.iter().enumerate() {
        for e in list {
            match e {
                Edit::Field { code, field, value } => {
                    last.entry((code.clone(), *field)).or_default().insert(d, value.clone());
                }
                Edit::Move { code, to } => {
                    last.entry((code.clone(), "geometry")).or_default().insert(d, Value::from(format!("{to:?}")));
                }
                Edit::Create { code } => {
                    assert!(by_code.contains_key(code.as_str()), "seed {seed}: creation {code} lost")
                }
            }
        }
    }
    let mut uncontested = 0;
    for ((code, field), values) in &last {
        let f = by_code.get(code.as_str()).unwrap_or_else(|| panic!("seed {seed}: {code} missing"));
        let actual = match *field {
            "geometry" => match &f.geometry {
                Some(Geometry::Point(p)) => Value::from(format!("{p:?}")),
                other => panic!("seed {seed}: {code} geometry {other:?}"),
            },
            name => f.properties.get(name).cloned().unwrap_or(Value::Null),
        };
        let candidates: BTreeSet<String> = values.values().map(|v| format!("{v:?}")).collect();
        assert!(
            candidates.contains(&format!("{actual:?}")),
            "seed {seed}: {code}.{field} is {actual:?}, not one of the devices' values {candidates:?}"
        );
        if values.len() == 1 {
            uncontested += 1;
        }
    }
    assert!(uncontested > 0, "seed {seed}: the storm had no uncontested edit to check");
    assert_eq!(repaired, 0, "seed {seed}: devices needed {repaired} repairs: a sync passed over changes");
    drop(server);
    StormOutcome { concurrent, settle, repaired, conflicts }
}

#[test]
fn sync_storm_loses_nothing() {
    let c = StormConfig::from_env();
    for &seed in &c.seeds {
        let o = run_storm(&c, seed);
        let rounds: Vec<String> = o.concurrent.iter().map(|d| format!("{:.2} s", d.as_secs_f64())).collect();
        println!(
            "storm seed {seed}: {} devices × {} edits on {} features in {} concurrent rounds [{}], settle {:.2} s, repairs {}, open conflicts per device ≤ {}",
            c.devices,
            c.edits,
            c.features,
            c.rounds,
            rounds.join(", "),
            o.settle.as_secs_f64(),
            o.repaired,
            o.conflicts
        );
    }
}
