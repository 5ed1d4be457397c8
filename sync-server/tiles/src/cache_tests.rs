//! The cache's disk budget on a real store: least recently used tiles go first, secondary tiles
//! (attribute subsets, past instants) stay within their share, answers stay right after edits and
//! under concurrent requests.

use std::sync::Arc;

use shikong_store::{FeatureKey, Patch, TxMeta};
use shikong_tiles::{TileId, TileMatrixSet, decode_tile};

use super::tests::{fixture, point, t};
use super::*;

const WM: TileMatrixSet = TileMatrixSet::WebMercatorQuad;

/// A service without the memory layer (every hit is a cache file hit) within `budget` bytes.
fn service(dir: &Path, budget: u64) -> TileService {
    let config = TileConfig { freshness: Duration::ZERO, memory_budget: 0, ..TileConfig::new(dir.join("tiles")) };
    TileService::new(config.with_disk_budget(budget))
}

fn request<'a>(layers: &'a [Layer], tile: TileId, fields: Option<&'a [String]>) -> VectorRequest<'a> {
    VectorRequest { layers, tms: WM, tile, as_of: None, fields }
}

/// An empty tile far from the grid, one per `i`.
fn far(i: u32) -> TileId {
    TileId { z: 18, x: 1000 + i, y: 2000 }
}

/// A tile's layers with their features in a fixed order (a past state is read from history, in
/// another order than the current one).
fn decoded(raw: &[u8]) -> Vec<shikong_tiles::DecodedLayer> {
    let mut layers = decode_tile(raw).unwrap();
    for l in &mut layers {
        l.features.sort_by_cached_key(|f| format!("{f:?}"));
    }
    layers
}

/// The bytes of `cache.sqlite` and its WAL and shared-memory files.
fn cache_files(dir: &Path) -> u64 {
    files(dir).iter().sum()
}

fn files(dir: &Path) -> [u64; 3] {
    ["cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"]
        .map(|f| std::fs::metadata(dir.join("tiles").join(f)).map_or(0, |m| m.len()))
}

/// Fill half the budget, use the first tile again, then keep adding: the tiles evicted are the
/// least recently used ones, and the one used again stays.
#[test]
fn eviction_removes_the_least_recently_used_tiles() {
    const BUDGET: u64 = 1 << 20;
    // Tiles cached before the first is used again (more than one eviction round removes).
    const FIRST: u32 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path(), BUDGET);
    let layers = [s.layer("manhole").unwrap()];
    let get = |tile: TileId| svc.vector_tile(&*s, &request(&layers, tile, None)).unwrap().cache;
    let mut next = 0u32;
    let mut add = || {
        let status = get(far(next));
        next += 1;
        assert_eq!(status, CacheStatus::Miss);
        svc.flush().unwrap();
    };
    for _ in 0..FIRST {
        add();
    }
    assert_eq!(get(far(0)), CacheStatus::Hit, "the first tile is cached");
    svc.flush().unwrap();
    let mut most = svc.cached_tiles(None).unwrap();
    let mut evicted = false;
    for _ in 0..50_000 {
        add();
        let n = svc.cached_tiles(None).unwrap();
        if n < most {
            evicted = true;
            break;
        }
        most = n;
    }
    assert!(evicted, "{next} tiles cached, none evicted ({} bytes of cache files)", cache_files(dir.path()));
    assert!(cache_files(dir.path()) <= BUDGET, "{:?} bytes", files(dir.path()));
    println!("eviction after {next} tiles: {most} cached at most, {} bytes of files", cache_files(dir.path()));
    // What is left: the tile used again, and the newest tiles from some point on.
    let layer = layers[0].name();
    let cached = |tile: TileId| {
        let key = CacheKey { layer, tms: WM.code(), z: tile.z, x: tile.x, y: tile.y, tx: 0, variant: "" };
        svc.cache().unwrap().contains(&key).unwrap()
    };
    assert!(cached(far(0)), "the tile used again was evicted");
    let kept: Vec<bool> = (1..next).map(|i| cached(far(i))).collect();
    let first_kept = kept.iter().position(|k| *k).expect("some tiles kept") as u32 + 1;
    assert!(first_kept > 1, "the least recently used tile is still cached");
    assert!(first_kept < FIRST, "evicted {first_kept} tiles: the one used again was among them");
    let holes: Vec<u32> = (first_kept..next).filter(|i| !cached(far(*i))).collect();
    assert!(holes.is_empty(), "tiles evicted out of order of use: {holes:?}");
    println!("evicted tiles 1..{first_kept} (least recently used), kept tile 0 (used again) and {first_kept}..{next}");
}

/// Tiles of attribute subsets and of past instants share a small part of the budget; the default
/// current tiles are not pushed out by them.
#[test]
fn subsets_and_past_tiles_stay_within_their_share() {
    const BUDGET: u64 = 2 << 20;
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path(), BUDGET);
    let layers = [s.layer("manhole").unwrap()];
    // The default tiles of the grid at z 14–16.
    let area = Bbox { min_x: 114.29, min_y: 30.49, max_x: 114.40, max_y: 30.60 };
    let mut tiles = Vec::new();
    for z in 14..=16u8 {
        tiles.extend(WM.tiles_for(&area, z, 0.0).unwrap().iter());
    }
    for tile in &tiles {
        svc.vector_tile(&*s, &request(&layers, *tile, None)).unwrap();
    }
    svc.flush().unwrap();
    let defaults = svc.cached_tiles(None).unwrap();
    // Hostile: every subset of the attributes, now and as of each day, for every tile.
    let names = ["id", "code", "名称", "depth"];
    let times = [None, Some(t("2025-01-02T12:00:00+08:00")), Some(t("2030-01-01T00:00:00+08:00"))];
    for tile in &tiles {
        for m in 1..(1u32 << names.len()) - 1 {
            let fields: Vec<String> =
                names.iter().enumerate().filter(|(i, _)| m & (1 << i) != 0).map(|(_, n)| (*n).to_owned()).collect();
            for as_of in times {
                let req = VectorRequest { as_of, ..request(&layers, *tile, Some(&fields)) };
                svc.vector_tile(&*s, &req).unwrap();
            }
        }
        for as_of in &times[1..] {
            svc.vector_tile(&*s, &VectorRequest { as_of: *as_of, ..request(&layers, *tile, None) }).unwrap();
        }
    }
    svc.flush().unwrap();
    let usage = svc.cache_usage().unwrap();
    println!("{} default tiles; after the hostile requests: {usage:?}", defaults);
    assert!(usage.secondary_bytes <= BUDGET / 8, "{usage:?}");
    assert!(usage.file_bytes <= BUDGET, "{usage:?}");
    assert!(usage.secondary_tiles > 0, "secondary tiles are cached within their share");
    // Every default tile is still cached.
    for tile in &tiles {
        assert_eq!(svc.vector_tile(&*s, &request(&layers, *tile, None)).unwrap().cache, CacheStatus::Hit, "{tile}");
    }
}

/// The tiles served under a tight budget (evicting all along), before and after edits, are the
/// tiles rendered afresh from the store, for every attribute selection and instant.
#[test]
fn answers_stay_right_after_edits_under_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path(), 512 << 10);
    let area = Bbox { min_x: 114.29, min_y: 30.49, max_x: 114.40, max_y: 30.60 };
    let mut tiles = Vec::new();
    for z in 10..=16u8 {
        tiles.extend(WM.tiles_for(&area, z, 0.0).unwrap().iter());
    }
    let subset = ["code".to_owned(), "depth".to_owned()];
    let check = |round: &str| {
        let layer = s.layer("manhole").unwrap();
        let layers = [layer.clone()];
        for tile in &tiles {
            for fields in [None, Some(&subset[..])] {
                for as_of in [None, Some(t("2025-01-02T12:00:00+08:00"))] {
                    let req = VectorRequest { as_of, ..request(&layers, *tile, fields) };
                    let served = gunzip(&svc.vector_tile(&*s, &req).unwrap().gzip).unwrap();
                    let fresh = render_layer(&*s, &layer, WM, *tile, as_of, fields).unwrap();
                    assert_eq!(decoded(&served), decoded(&fresh), "{round}: {tile} {fields:?} {as_of:?}");
                }
            }
        }
    };
    check("before");
    check("cached");
    // JG-4-4 moves, JG-5-5 is deleted, JG-6-6's depth changes.
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    tx.update(
        "manhole",
        &FeatureKey::Code("JG-4-4".into()),
        Patch { geometry: Some(point(114.345, 30.545)), ..Patch::default() },
    )
    .unwrap();
    tx.delete("manhole", &FeatureKey::Code("JG-5-5".into())).unwrap();
    let patch = Patch { set: [("depth".to_owned(), shikong_model::Value::Real(99.0))].into(), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Code("JG-6-6".into()), patch).unwrap();
    tx.commit().unwrap();
    check("after the edit");
    check("after the edit, cached");
    assert!(cache_files(dir.path()) <= 512 << 10, "{:?} bytes", files(dir.path()));
}

/// Threads asking for the same tiles at once (two writers of one tile; eviction while others
/// read) all get the right tiles, the byte accounting matches the rows, and the budget holds.
#[test]
fn concurrent_requests_under_eviction() {
    const BUDGET: u64 = 512 << 10;
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = Arc::new(service(dir.path(), BUDGET));
    let layer = s.layer("manhole").unwrap();
    let area = Bbox { min_x: 114.29, min_y: 30.49, max_x: 114.40, max_y: 30.60 };
    let mut tiles = Vec::new();
    for z in 12..=17u8 {
        tiles.extend(WM.tiles_for(&area, z, 0.0).unwrap().iter());
    }
    tiles.extend((0..400).map(far));
    let subset = vec!["code".to_owned()];
    let expected: Vec<_> = tiles
        .iter()
        .map(|tile| {
            (
                decoded(&render_layer(&*s, &layer, WM, *tile, None, None).unwrap()),
                decoded(&render_layer(&*s, &layer, WM, *tile, None, Some(&subset)).unwrap()),
            )
        })
        .collect();
    let s = &s;
    std::thread::scope(|scope| {
        for worker in 0..4usize {
            let (svc, tiles, expected, layer, subset) = (&svc, &tiles, &expected, &layer, &subset);
            scope.spawn(move || {
                let layers = [layer.clone()];
                for round in 0..3 {
                    for i in 0..tiles.len() {
                        // Workers walk the list from different ends half of the time.
                        let i = if (worker + round) % 2 == 0 { i } else { tiles.len() - 1 - i };
                        let tile = tiles[i];
                        let fields = (i % 3 == 0).then_some(&subset[..]);
                        let served = svc.vector_tile(&**s, &request(&layers, tile, fields)).unwrap();
                        let got = decoded(&gunzip(&served.gzip).unwrap());
                        let want = if fields.is_some() { &expected[i].1 } else { &expected[i].0 };
                        assert_eq!(&got, want, "worker {worker}, {tile}");
                    }
                }
            });
        }
    });
    svc.flush().unwrap();
    let usage = svc.cache_usage().unwrap();
    let counted = svc.cache().unwrap().recount().unwrap();
    println!("after 4 × 3 × {} concurrent requests: {usage:?}", tiles.len());
    assert_eq!((usage.tiles, usage.bytes, usage.secondary_tiles, usage.secondary_bytes), counted);
    assert!(usage.file_bytes <= BUDGET, "{usage:?}");
    assert!(cache_files(dir.path()) <= BUDGET, "{} bytes", cache_files(dir.path()));
}

/// A budget of 0 caches nothing (tiles are still served); a secondary share of 0 caches only the
/// default current tiles.
#[test]
fn zero_budgets_cache_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let layers = [s.layer("manhole").unwrap()];
    let tile = TileId { z: 14, x: 13392, y: 6794 };
    let fields = ["code".to_owned()];
    let svc = service(dir.path(), 0);
    for _ in 0..2 {
        let v = svc.vector_tile(&*s, &request(&layers, tile, None)).unwrap();
        assert_eq!(v.cache, CacheStatus::Miss);
    }
    assert_eq!(svc.cached_tiles(None).unwrap(), 0);
    drop(svc);
    let config =
        TileConfig { freshness: Duration::ZERO, memory_budget: 0, ..TileConfig::new(dir.path().join("tiles")) };
    let svc = TileService::new(TileConfig { secondary_budget: 0, ..config.with_disk_budget(1 << 20) });
    svc.vector_tile(&*s, &request(&layers, tile, Some(&fields))).unwrap();
    svc.vector_tile(
        &*s,
        &VectorRequest { as_of: Some(t("2025-01-02T12:00:00+08:00")), ..request(&layers, tile, None) },
    )
    .unwrap();
    svc.vector_tile(&*s, &request(&layers, tile, None)).unwrap();
    assert_eq!(svc.cache_usage().unwrap().tiles, 1);
    assert_eq!(svc.cache_usage().unwrap().secondary_tiles, 0);
}

/// A cache file of the earlier layout (no byte costs, no last uses) is emptied at open.
#[test]
fn a_cache_of_the_earlier_layout_is_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    std::fs::create_dir_all(dir.path().join("tiles")).unwrap();
    let old = rusqlite::Connection::open(dir.path().join("tiles/cache.sqlite")).unwrap();
    old.execute_batch(
        "CREATE TABLE tiles (layer TEXT NOT NULL, tms INTEGER NOT NULL, z INTEGER NOT NULL, x INTEGER NOT NULL,
           y INTEGER NOT NULL, tx INTEGER NOT NULL, variant TEXT NOT NULL, data BLOB NOT NULL,
           PRIMARY KEY (layer, tms, z, x, y, tx, variant)) WITHOUT ROWID;
         INSERT INTO tiles VALUES ('manhole', 0, 14, 13392, 6794, 0, '', x'00');",
    )
    .unwrap();
    drop(old);
    let svc = service(dir.path(), 1 << 20);
    let layers = [s.layer("manhole").unwrap()];
    let tile = TileId { z: 14, x: 13392, y: 6794 };
    assert_eq!(svc.vector_tile(&*s, &request(&layers, tile, None)).unwrap().cache, CacheStatus::Miss);
    assert_eq!(svc.cached_tiles(None).unwrap(), 1);
    assert_eq!(svc.vector_tile(&*s, &request(&layers, tile, None)).unwrap().cache, CacheStatus::Hit);
}

/// A cache filled under a larger budget shrinks to a smaller one at the first write after a
/// restart (least recently used tiles evicted, the freed pages returned to the file system).
#[test]
fn a_smaller_budget_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let layers = [s.layer("manhole").unwrap()];
    let svc = service(dir.path(), 8 << 20);
    for i in 0..20_000 {
        svc.vector_tile(&*s, &request(&layers, far(i), None)).unwrap();
    }
    drop(svc);
    let big = cache_files(dir.path());
    assert!(big > (3 << 20) / 2, "{big} bytes");
    let svc = service(dir.path(), 1 << 20);
    svc.vector_tile(&*s, &request(&layers, far(20_000), None)).unwrap();
    svc.flush().unwrap();
    let small = cache_files(dir.path());
    println!("cache files {big} bytes under an 8 MiB budget, {small} after a restart with 1 MiB");
    assert!(small <= 1 << 20, "{:?} bytes", files(dir.path()));
    assert!(svc.vector_tile(&*s, &request(&layers, far(19_999), None)).unwrap().cache == CacheStatus::Hit);
}
