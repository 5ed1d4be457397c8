//! `shikong store copy` through the real binary: the demo data folder into PostgreSQL (a private
//! cluster of `shikong-pgtest`) and back into a new data folder, every layer, version and
//! transaction arriving as it was; a second copy into the now full database is refused.

use std::path::Path;

use shikong_store::{ChangeCursor, FeatureKey, Store, StoreConfig};

use crate::common::*;

/// What must be the same on every copy: layers, counts, the journal, each layer's first change
/// pages and the history of its first entities.
fn summary(store: &dyn Store) -> String {
    let mut out = format!("latest {:?}\n", store.latest_tx().unwrap());
    out.push_str(&format!("{:?}\n", store.transactions(None, 100_000).unwrap()));
    for layer in store.layers().unwrap() {
        let name = layer.name();
        out.push_str(&format!("{layer:?} count {}\n", store.count(name).unwrap()));
        let page = store.changes_since(name, ChangeCursor::default(), 20).unwrap();
        out.push_str(&format!("{page:?}\n"));
        for c in page.changes.iter().take(3) {
            out.push_str(&format!("{:?}\n", store.history(name, &FeatureKey::Id(c.id)).unwrap()));
        }
        let later = store.changes_since(name, ChangeCursor { tx: 2, kind: 0, key: 10 }, 5).unwrap();
        out.push_str(&format!("{later:?}\n"));
    }
    out
}

fn open(config: &str) -> std::sync::Arc<dyn Store> {
    shikong_store::open(&config.parse::<StoreConfig>().unwrap()).unwrap()
}

#[test]
fn the_demo_folder_moves_to_postgres_and_back_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo_data(&data);
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let expected = summary(&*open(s(&data)));
    let versions: u64 = {
        let conn = rusqlite::Connection::open(data.join("store.gpkg")).unwrap();
        let layers: Vec<String> = conn
            .prepare("SELECT name FROM sk_layers")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        layers
            .iter()
            .map(|l| {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT (SELECT count(*) FROM \"{l}\") + (SELECT count(*) FROM \"sk_hist_{l}\")"),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                n as u64
            })
            .sum()
    };

    let out = ok(&["store", "copy", "--from", s(&data), "--to", &url]);
    assert!(out.contains(&format!("{versions} versions")) && out.contains("layers"), "{out}");
    assert_eq!(summary(&*open(&url)), expected, "the PostgreSQL copy reads as the data folder");

    // The CLI reads the copy like any store (a layer as GeoJSON through `--store`).
    let fc = json(&ok(&["query", "--data", s(&data), "--store", &url, "--layer", "district"]));
    assert_eq!(fc["features"].as_array().unwrap().len(), 13, "Wuhan's 13 districts");

    // And back into a new data folder.
    let back = dir.path().join("back");
    let out = ok(&["store", "copy", "--from", &url, "--to", s(&back), "--from-data", s(&data)]);
    assert!(out.contains(&format!("{versions} versions")), "{out}");
    assert_eq!(summary(&*open(s(&back))), expected, "the copy back reads as the original");
    assert!(Path::new(&back.join("store.gpkg")).is_file());

    // A destination that holds a store is refused, naming what it holds, and left alone.
    let err = fails(&["store", "copy", "--from", s(&data), "--to", &url]);
    assert!(err.contains("must be an empty store") && err.contains("layers"), "{err}");
    assert_eq!(summary(&*open(&url)), expected);
}
