//! The PostgreSQL backend against the conformance suite (`crate::conformance`), plus what only
//! this backend has: a store kept across opens and refused when newer, the live layer as a plain
//! PostGIS table, several handles (processes) writing one database. Each test gets a fresh
//! database with PostGIS in the shared private cluster of `shikong-pgtest`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use shikong_pgtest::Cluster;

use super::*;
use crate::conformance::{history_fixture, new};
use crate::{OpenOptions, Store, StoreConfig};

/// A fresh store in a new database, opened through the factory as callers open it.
fn fresh(clock: Arc<dyn Clock>) -> ((), Arc<dyn Store>) {
    let url = Cluster::shared().fresh_db();
    let options = OpenOptions { create: true, clock: Some(clock) };
    let store = crate::open_with(&url.parse::<StoreConfig>().unwrap(), &options).unwrap();
    ((), store)
}

mod conformance {
    crate::conformance_tests!(super::fresh);
}

/// A store in a new database whose transactions happen one day apart from 2025-01-01.
fn dated(url: &str) -> PgStore {
    let clock = crate::FixedStepClock::new(
        crate::conformance::t("2025-01-01T00:00:00+08:00"),
        jiff::SignedDuration::from_hours(24),
    );
    PgStore::open(url, true).unwrap().with_clock(Arc::new(clock))
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

#[test]
fn reopening_keeps_the_store_and_a_newer_schema_is_refused() {
    let url = Cluster::shared().fresh_db();
    let config: StoreConfig = url.parse().unwrap();
    // `open` needs an existing store; `init` makes one.
    let missing = crate::open(&config).unwrap_err();
    assert!(
        matches!(missing, StoreError::NotAStore { .. }) && missing.to_string().contains("shikong init"),
        "{missing}"
    );
    let s = PgStore::open(&url, true).unwrap();
    let id = s.store_id().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    history_fixture(&s);
    drop(s);
    let s = PgStore::open(&url, false).unwrap();
    assert_eq!((s.store_id(), s.count("manhole").unwrap(), s.latest_tx().unwrap()), (id.as_str(), 3, TxId(5)));
    let a = s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap();
    assert_eq!(a.feature.properties.get("名称"), Some(&shikong_model::Value::Text("井盖A".into())));
    drop(s);
    // `init` on an existing store opens it as it is.
    assert_eq!(crate::init(&config).unwrap().count("manhole").unwrap(), 3);
    client(&url).execute("UPDATE sk_meta SET value = '99' WHERE key = 'schema_version'", &[]).unwrap();
    let e = PgStore::open(&url, false).unwrap_err().to_string();
    assert!(e.contains("newer shikong") && e.contains("version 99"), "{e}");
}

/// QGIS and GDAL read the live layer as a normal PostGIS table: typed columns named by the
/// fields, a CGCS2000 geometry column, the title as the table's comment. A field whose name
/// does not fit PostgreSQL's 63 bytes gets its own column name and the name as a comment.
#[test]
fn the_live_layer_is_a_plain_postgis_table() {
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    history_fixture(&s);
    let long = "井盖所在道路的管理单位名称以及其联系电话号码备注说明";
    assert!(long.len() > 63);
    let mut def = s.layer("manhole").unwrap().def;
    def.schema.fields.push(shikong_model::FieldDef::new(long, shikong_model::FieldType::Text));
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.update_layer("manhole", def).unwrap();
    let patch = Patch { set: crate::conformance::props(&[(long, "城管".into())]), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Code("C".into()), patch).unwrap();
    tx.commit().unwrap();

    let mut c = client(&url);
    let rows = c.query("SELECT ST_AsText(geom), \"名称\", depth FROM manhole ORDER BY code", &[]).unwrap();
    let got: Vec<(String, String, f64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        got,
        [
            ("POINT(114.32 30.52)".to_owned(), "井盖A".to_owned(), 3.0),
            ("POINT(114.6 30.8)".into(), "井盖C".into(), 2.5),
            ("POINT(114.305 30.505)".into(), "井盖D".into(), 0.5),
        ]
    );
    let r = c
        .query_one(
            "SELECT type, srid, obj_description('manhole'::regclass, 'pg_class') FROM geometry_columns \
             WHERE f_table_name = 'manhole' AND f_geometry_column = 'geom'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, i32>(1), r.get::<_, String>(2)),
        ("POINT".into(), 4490, "井盖".into())
    );
    let col = s.layer("manhole").unwrap().schema().field(long).map(layers::column_name).unwrap();
    assert!(col.starts_with("sk_f_c"), "{col}");
    let r = c
        .query_one(
            &format!(
                "SELECT m.{}, col_description('manhole'::regclass, a.attnum) FROM manhole m, pg_attribute a \
                 WHERE a.attrelid = 'manhole'::regclass AND a.attname = $1 AND m.code = 'C'",
                layers::column(s.layer("manhole").unwrap().schema().field(long).unwrap())
            ),
            &[&col],
        )
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, String>(1)), ("城管".to_owned(), long.to_owned()));
    // The store reads it back under its name, now and in history.
    let now = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap();
    assert_eq!(now.feature.properties.get(long), Some(&shikong_model::Value::Text("城管".into())));
    // The GiST index is there for GIS clients' bbox queries.
    let gist: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'manhole' AND indexdef LIKE '%USING gist (geom)%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(gist, 1);
}

/// Two handles on one database (as two server processes) writing from several threads while a
/// reader pulls the change feed: ids stay unique, transaction numbers and times follow commit
/// order, and an incremental pull sees every entity exactly once (a cursor never passes a
/// commit it did not see).
#[test]
fn two_handles_write_one_database_in_commit_order() {
    let url = Cluster::shared().fresh_db();
    let a: Arc<dyn Store> = crate::init(&url.parse().unwrap()).unwrap();
    let b: Arc<dyn Store> = crate::open(&url.parse().unwrap()).unwrap();
    let mut tx = a.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(crate::conformance::manhole_layer()).unwrap();
    tx.commit().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, done) = (Arc::clone(&b), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut cursor = ChangeCursor::default();
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = s.changes_since("manhole", cursor, 7).unwrap();
                assert!(page.next >= cursor, "the cursor never moves back");
                cursor = page.next;
                seen.extend(page.changes.iter().map(|c| c.id));
                if finished && !page.more {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = Arc::clone(if w % 2 == 0 { &a } else { &b });
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..20 {
                    let mut tx = s.begin(TxMeta::by(format!("w{w}"))).unwrap();
                    ids.push(tx.insert("manhole", new(&format!("W{w}-{i}"), 114.3, 30.5, "井盖", 1.0)).unwrap());
                    if i % 3 == 0 {
                        ids.push(
                            tx.insert("manhole", crate::NewFeature { code: None, ..new("", 114.3, 30.5, "井盖", 1.0) })
                                .unwrap(),
                        );
                    }
                    tx.commit().unwrap();
                }
                ids
            })
        })
        .collect();
    let written: Vec<EntityId> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);
    let pulled = reader.join().unwrap();
    let unique: HashSet<EntityId> = written.iter().copied().collect();
    assert_eq!(unique.len(), written.len(), "entity ids are unique");
    assert_eq!(pulled.len(), written.len(), "each entity pulled once");
    assert_eq!(pulled.iter().copied().collect::<HashSet<_>>(), unique);
    // Generated codes are unique too (the unique index would have refused otherwise).
    assert_eq!(a.count("manhole").unwrap(), written.len() as u64);
    let journal = a.transactions(None, 1000).unwrap();
    assert_eq!(journal.len(), 81);
    for (i, pair) in journal.windows(2).enumerate() {
        assert_eq!(pair[1].tx.0, pair[0].tx.0 + 1, "numbers without gaps at {i}");
        assert!(pair[1].time > pair[0].time, "times strictly increase at {i}");
    }
}

/// A cancelled caller's read stops with `Cancelled`; a write transaction that hit a failed
/// statement cannot commit.
#[test]
fn cancelled_reads_stop_and_a_failed_statement_never_commits() {
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    history_fixture(&s);
    let token = crate::cancel::CancelToken::new(None);
    token.cancel();
    let r = crate::cancel::scope(&token, || s.query(&Query::layer("manhole"), &mut |_| true));
    assert!(matches!(r, Err(StoreError::Cancelled(_))), "{r:?}");
    let past = crate::cancel::CancelToken::new(Some(std::time::Instant::now()));
    let r = crate::cancel::scope(&past, || s.count("manhole"));
    assert!(matches!(r, Err(StoreError::Cancelled(crate::cancel::CancelReason::Deadline))), "{r:?}");
    assert_eq!(s.query(&Query::layer("manhole"), &mut |_| true).unwrap().returned, 3);

    // A statement failing inside a transaction poisons it; a savepoint taken before recovers it.
    use crate::StoreTx;
    let mut tx = tx::PgTx::begin(&s, TxMeta::by("eve")).unwrap();
    tx.insert("manhole", new("E", 114.3, 30.5, "井盖E", 1.0)).unwrap();
    tx.savepoint().unwrap();
    assert!(tx.fail_a_statement().is_err());
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(Box::new(tx).commit().unwrap().inserted, 1);
    let mut tx = tx::PgTx::begin(&s, TxMeta::by("eve")).unwrap();
    tx.insert("manhole", new("F", 114.3, 30.5, "井盖F", 1.0)).unwrap();
    assert!(tx.fail_a_statement().is_err());
    let e = Box::new(tx).commit().unwrap_err();
    assert!(matches!(e, StoreError::CommitFailed(_)), "{e}");
    assert!(s.get("manhole", &FeatureKey::Code("F".into()), None).unwrap().is_none());
    assert!(s.get("manhole", &FeatureKey::Code("E".into()), None).unwrap().is_some());
}

/// `ensure_index` makes an index, records no transaction, is idempotent and refuses unknown
/// fields.
#[test]
fn an_ensured_index_exists_and_leaves_no_transaction() {
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    history_fixture(&s);
    let before = s.latest_tx().unwrap();
    for _ in 0..2 {
        let mut tx = s.begin(TxMeta::by("system")).unwrap();
        tx.ensure_index("manhole", &["depth", "名称"]).unwrap();
        assert!(tx.commit().unwrap().tx.is_none());
    }
    assert_eq!(s.latest_tx().unwrap(), before);
    let n: i64 = client(&url)
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'manhole' AND indexdef LIKE '%(depth, \"名称\")%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let mut tx = s.begin(TxMeta::by("system")).unwrap();
    let e = tx.ensure_index("manhole", &["no_such_field"]).unwrap_err().to_string();
    assert!(e.contains("no_such_field"), "{e}");
}

/// CQL2 filters go to PostgreSQL through shikong-query's dialect, on typed columns for live rows
/// and on the JSON properties of history rows: the rows read are only those that match.
#[test]
fn filters_are_decided_in_sql_on_both_halves() {
    let url = Cluster::shared().fresh_db();
    let s = dated(&url);
    history_fixture(&s);
    let layer = s.layer("manhole").unwrap();
    let run = |filter: &str, as_of: Option<&str>| {
        let f = shikong_query::Filter::parse_text(filter, layer.schema()).unwrap();
        let mut codes = Vec::new();
        let q = Query { filter: Some(&f), as_of: as_of.map(crate::conformance::t), ..Query::layer("manhole") };
        let stats = s
            .query(&q, &mut |f| {
                codes.push(f.feature.code);
                true
            })
            .unwrap();
        codes.sort();
        (codes, stats.scanned)
    };
    // Now: A (3.0), C (2.5), D (0.5); only A is read.
    assert_eq!(run("depth > 2.6", None), (vec!["A".to_owned()], 1));
    // Day 2: live C (2.5, never changed since) and closed versions A (1.0) and B (1.5).
    assert_eq!(run("depth > 1.2", Some("2025-01-02T12:00:00")), (vec!["B".to_owned(), "C".into()], 2));
    assert_eq!(
        run("\"名称\" LIKE '井盖_' AND depth < 2", Some("2025-01-02T12:00:00")),
        (vec!["A".to_owned(), "B".into()], 2)
    );
    assert_eq!(run("code IN ('D', 'A') AND version >= 4", None), (vec!["A".to_owned()], 1));
}

/// Many threads reading at once share at most `MAX_CONNECTIONS` connections (a server's blocking
/// threads must not exhaust PostgreSQL's `max_connections`), and a writer queues in its process
/// without holding one.
#[test]
fn connections_stay_under_the_cap() {
    let url = Cluster::shared().fresh_db();
    let s = Arc::new(PgStore::open(&url, true).unwrap());
    history_fixture(s.as_ref());
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (url, done) = (url.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut c = client(&url);
            let mut most = 0i64;
            while !done.load(Ordering::SeqCst) {
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                most = most.max(n);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            most
        })
    };
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for _ in 0..15 {
                    if i % 16 == 0 {
                        let mut tx = s.begin(TxMeta::by("w")).unwrap();
                        tx.insert("manhole", crate::NewFeature { code: None, ..new("", 114.3, 30.5, "井盖", 1.0) })
                            .unwrap();
                        tx.commit().unwrap();
                    } else {
                        assert!(s.query(&Query::layer("manhole"), &mut |_| true).unwrap().returned >= 3);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let most = monitor.join().unwrap();
    assert!(most <= MAX_CONNECTIONS as i64, "{most} connections open at once");
    assert!(most >= 2, "the threads did run concurrently ({most})");
    assert_eq!(s.count("manhole").unwrap(), 3 + 4 * 15);
}

/// A bulk load buffers its inserts (`bulk.rs`) and the transaction still behaves as one that
/// writes each at once: duplicates refused at the call, its own rows visible to its reads,
/// savepoints and dropping undo them, batches larger than one statement all land.
#[test]
fn buffered_bulk_inserts_keep_the_transaction_semantics() {
    use crate::conformance::{codes, manhole_layer, props};
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    tx.commit().unwrap();
    let code = |c: &str| FeatureKey::Code(c.into());

    let mut tx = s.begin(TxMeta::by("alice")).unwrap();
    tx.bulk_load("manhole").unwrap();
    let a = tx.insert("manhole", new("A", 114.30, 30.50, "井盖A", 1.0)).unwrap();
    let b = tx.insert("manhole", new("B", 114.31, 30.51, "井盖B", 1.5)).unwrap();
    let dup = tx.insert("manhole", new("A", 114.0, 30.0, "又一个A", 1.0)).unwrap_err();
    assert!(matches!(dup, StoreError::DuplicateCode { .. }), "{dup}");
    let again = tx.insert("manhole", NewFeature { id: Some(a), ..new("A2", 114.0, 30.0, "x", 1.0) }).unwrap_err();
    assert!(matches!(again, StoreError::DuplicateId { .. }), "{again}");
    let generated = tx.insert("manhole", NewFeature { code: None, ..new("", 114.2, 30.2, "自动", 0.5) }).unwrap();
    // Read-your-writes through the transaction.
    assert_eq!(tx.get("manhole", &code("A")).unwrap().unwrap().feature.id, a);
    assert_eq!(tx.find_by_field("manhole", "code", &"B".into()).unwrap(), Some(b));
    // Rows inserted after a savepoint go with a rollback to it.
    tx.savepoint().unwrap();
    tx.insert("manhole", new("C", 114.6, 30.8, "井盖C", 2.5)).unwrap();
    tx.rollback_to_savepoint().unwrap();
    assert!(tx.get("manhole", &code("C")).unwrap().is_none());
    tx.insert("manhole", new("C", 114.6, 30.8, "井盖C", 2.5)).unwrap();
    let dup = tx.insert("manhole", new("B", 114.0, 30.0, "又一个B", 1.0)).unwrap_err();
    assert!(matches!(dup, StoreError::DuplicateCode { .. }), "{dup}");
    tx.update("manhole", &code("A"), Patch { set: props(&[("depth", 2.0.into())]), ..Patch::default() }).unwrap();
    tx.delete("manhole", &code("B")).unwrap();
    let reused = tx.insert("manhole", NewFeature { id: Some(b), ..new("B2", 114.0, 30.0, "x", 1.0) }).unwrap_err();
    assert!(matches!(reused, StoreError::DuplicateId { .. }), "{reused}");
    let info = tx.commit().unwrap();
    assert_eq!((info.inserted, info.deleted), (4, 1), "{info:?}");
    assert_eq!(s.count("manhole").unwrap(), 3);
    assert!(s.get("manhole", &FeatureKey::Id(generated), None).unwrap().is_some());
    assert_eq!(crate::conformance::depth_of(&s, "A", None), Some(2.0.into()));

    // More rows than one statement takes; dropping the transaction writes none of them.
    let mut def = manhole_layer();
    def.name = "bulk".into();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(def).unwrap();
    tx.commit().unwrap();
    let load = |keep: bool| {
        let mut tx = s.begin(TxMeta::by("import")).unwrap();
        tx.bulk_load("bulk").unwrap();
        for i in 0..2_500 {
            let x = 114.0 + i as f64 / 10_000.0;
            tx.insert("bulk", new(&format!("P{i}"), x, 30.5, &format!("井{i}"), 1.0)).unwrap();
        }
        let dup = tx.insert("bulk", new("P7", 114.0, 30.0, "x", 1.0)).unwrap_err();
        assert!(matches!(dup, StoreError::DuplicateCode { .. }), "{dup}");
        if keep {
            assert_eq!(tx.commit().unwrap().inserted, 2_500);
        }
    };
    load(false);
    assert_eq!(s.count("bulk").unwrap(), 0);
    load(true);
    assert_eq!(s.count("bulk").unwrap(), 2_500);
    let extent = s.layer("bulk").unwrap().extent.unwrap();
    assert_eq!((extent.min_x, extent.max_x), (114.0, 114.0 + 2_499.0 / 10_000.0));
    assert_eq!(codes(&s, &Query::layer("bulk")).len(), 2_500);
}

/// Updates wait to be written in batches (`updates.rs`) and the transaction still behaves as one
/// that writes each at once: the same entity updated again by id or code, a code freed and taken,
/// its own reads, a rollback to a savepoint, more updates than one statement takes.
#[test]
fn deferred_updates_keep_the_transaction_semantics() {
    use crate::conformance::{codes, depth_of, manhole_layer, props, pt};
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    for i in 0..1_200 {
        tx.insert("manhole", new(&format!("P{i}"), 114.0 + i as f64 / 10_000.0, 30.5, "井", 1.0)).unwrap();
    }
    tx.commit().unwrap();
    let code = |c: &str| FeatureKey::Code(c.into());
    let depth = |d: f64| Patch { set: props(&[("depth", d.into())]), ..Patch::default() };

    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    for i in 0..1_200 {
        assert_eq!(tx.update("manhole", &code(&format!("P{i}")), depth(2.0)).unwrap(), Some(2));
    }
    // Again, by id and by code: still version 2 (one version per entity per transaction).
    let p1 = tx.get("manhole", &code("P1")).unwrap().unwrap();
    assert_eq!(p1.feature.properties.get("depth"), Some(&2.0.into()));
    assert_eq!(tx.update("manhole", &FeatureKey::Id(p1.feature.id), depth(3.0)).unwrap(), Some(2));
    assert_eq!(tx.update("manhole", &code("P1"), depth(4.0)).unwrap(), Some(2));
    // A code moves away and is taken by a new entity; the old one is refused.
    tx.update("manhole", &code("P2"), Patch { code: Some("Q2".into()), ..Patch::default() }).unwrap();
    assert!(tx.get("manhole", &code("P2")).unwrap().is_none());
    tx.insert("manhole", new("P2", 114.9, 30.9, "新井", 1.0)).unwrap();
    let taken = tx.update("manhole", &code("P3"), Patch { code: Some("Q2".into()), ..Patch::default() }).unwrap_err();
    assert!(matches!(taken, StoreError::DuplicateCode { .. }), "{taken}");
    // A rolled-back update is gone, one before the savepoint stays.
    tx.update("manhole", &code("P5"), depth(5.0)).unwrap();
    tx.savepoint().unwrap();
    tx.update("manhole", &code("P5"), depth(6.0)).unwrap();
    tx.update("manhole", &code("P6"), depth(6.0)).unwrap();
    tx.rollback_to_savepoint().unwrap();
    tx.update("manhole", &code("P7"), Patch { geometry: Some(pt(114.7, 30.7)), ..Patch::default() }).unwrap();
    tx.delete("manhole", &code("P8")).unwrap();
    let info = tx.commit().unwrap();
    assert_eq!((info.inserted, info.updated, info.deleted), (1, 1_200, 1), "{info:?}");

    assert_eq!(depth_of(&s, "P1", None), Some(4.0.into()));
    assert_eq!(depth_of(&s, "P5", None), Some(5.0.into()));
    assert_eq!(depth_of(&s, "P6", None), Some(2.0.into()));
    assert_eq!(depth_of(&s, "Q2", None), Some(2.0.into()));
    assert_eq!(depth_of(&s, "P2", None), Some(1.0.into()));
    assert_eq!(s.count("manhole").unwrap(), 1_200);
    let p7 = s.get("manhole", &code("P7"), None).unwrap().unwrap();
    assert_eq!(p7.feature.geometry, pt(114.7, 30.7));
    // Every superseded version is in history, closed at this transaction.
    let h = s.history("manhole", &code("P1")).unwrap();
    assert_eq!(h.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(codes(&s, &Query { bbox: None, ..Query::layer("manhole") }).len(), 1_200);
    let before = crate::conformance::t("2000-01-01T00:00:00Z");
    assert!(s.get("manhole", &code("P1"), Some(before)).unwrap().is_none());
}

/// Deferred updates write every field type and a 3-D geometry as a direct write would.
#[test]
fn deferred_updates_write_every_field_type() {
    use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    let kinds = [
        ("t", FieldType::Text),
        ("i", FieldType::Integer),
        ("r", FieldType::Real),
        ("b", FieldType::Bool),
        ("d", FieldType::Date),
        ("dt", FieldType::DateTime),
        ("a", FieldType::Attachments),
    ];
    let mut def = LayerDef::new(
        "all_types",
        GeometryKind::Point,
        LayerSchema { fields: kinds.iter().map(|(n, t)| FieldDef::new(*n, *t)).collect() },
    );
    def.has_z = true;
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(def).unwrap();
    let at = |z| Some(Geometry::Point(Coord::xyz(114.3, 30.5, z)));
    let id = tx
        .insert("all_types", NewFeature { code: Some("X".into()), geometry: at(1.0), ..NewFeature::default() })
        .unwrap();
    tx.commit().unwrap();
    let values: Vec<(&str, Value)> = vec![
        ("t", "文本 'quoted'".into()),
        ("i", Value::Integer(-7)),
        ("r", Value::Real(2.5)),
        ("b", Value::Bool(true)),
        ("d", Value::Date("2025-03-04".parse().unwrap())),
        ("dt", Value::DateTime("2025-03-04T05:06:07Z".parse().unwrap())),
        ("a", Value::Attachments(vec!["ab".repeat(32)])),
    ];
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    let set = crate::conformance::props(&values);
    tx.update("all_types", &FeatureKey::Id(id), Patch { set, geometry: Some(at(9.0)), ..Patch::default() }).unwrap();
    tx.commit().unwrap();
    let f = s.get("all_types", &FeatureKey::Code("X".into()), None).unwrap().unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(f.feature.geometry, at(9.0));
    for (name, v) in &values {
        assert_eq!(f.feature.properties.get(*name), Some(v), "{name}");
    }
    let h = s.history("all_types", &FeatureKey::Id(id)).unwrap();
    assert_eq!(h.len(), 2);
}

/// Lazy savepoints (`tx.rs`): a savepoint is sent only before the next statement, after the
/// writes queued before it, so a statement failing after it is undone by the rollback to it
/// while everything queued before stays; the queued writes after it are dropped.
#[test]
fn a_lazy_savepoint_is_sent_before_the_next_statement() {
    use crate::conformance::{depth_of, props};
    use crate::{StoreTx, SyncBookkeeping, SyncBookkeepingTx};
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    history_fixture(&s);
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap().feature.id;
    let depth = |v: f64| Patch { set: props(&[("depth", v.into())]), ..Patch::default() };
    let d = s.get("manhole", &FeatureKey::Code("D".into()), None).unwrap().unwrap().feature.id;
    let mut tx = tx::PgTx::begin(&s, TxMeta::by("eve")).unwrap();
    // D's row read ahead: its update below sends nothing, so it is still queued when the
    // failing statement sends the savepoint.
    assert_eq!(tx.get_many("manhole", &[d]).unwrap().len(), 1);
    tx.update("manhole", &FeatureKey::Code("A".into()), depth(4.0)).unwrap();
    tx.put_sync_doc("manhole", c, 1, b"before").unwrap();
    tx.savepoint().unwrap();
    tx.update("manhole", &FeatureKey::Id(d), depth(4.0)).unwrap();
    tx.put_sync_doc("manhole", c, 1, b"after").unwrap();
    assert!(tx.fail_a_statement().is_err());
    tx.rollback_to_savepoint().unwrap();
    let info = Box::new(tx).commit().unwrap();
    assert_eq!(info.updated, 1, "{info:?}");
    assert_eq!(depth_of(&s, "A", None), Some(4.0.into()));
    assert_eq!(depth_of(&s, "D", None), Some(0.5.into()));
    assert_eq!(s.sync_doc("manhole", c).unwrap(), Some((1, b"before".to_vec())));

    // A savepoint never sent, released, leaves its writes to the commit; one rolled back sends
    // nothing and keeps nothing.
    let mut tx = tx::PgTx::begin(&s, TxMeta::by("eve")).unwrap();
    tx.savepoint().unwrap();
    tx.update("manhole", &FeatureKey::Code("D".into()), depth(5.0)).unwrap();
    tx.release_savepoint().unwrap();
    tx.savepoint().unwrap();
    tx.update("manhole", &FeatureKey::Code("C".into()), depth(5.0)).unwrap();
    tx.rollback_to_savepoint().unwrap();
    assert!(tx.rollback_to_savepoint().is_err(), "no savepoint left");
    assert_eq!(Box::new(tx).commit().unwrap().updated, 1);
    assert_eq!(depth_of(&s, "D", None), Some(5.0.into()));
    assert_eq!(depth_of(&s, "C", None), Some(2.5.into()));
}

/// A process caches layer definitions for its single-statement reads: another process
/// renaming a field, adding one, or dropping and making the layer again must never make it
/// decode rows with the old definition.
#[test]
fn a_layer_changed_by_another_handle_is_read_afresh() {
    let url = Cluster::shared().fresh_db();
    let a: Arc<dyn Store> = crate::init(&url.parse().unwrap()).unwrap();
    let b: Arc<dyn Store> = crate::open(&url.parse().unwrap()).unwrap();
    let mut tx = a.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(crate::conformance::manhole_layer()).unwrap();
    tx.insert("manhole", new("M1", 114.3, 30.5, "井盖", 1.0)).unwrap();
    tx.commit().unwrap();
    let read = |s: &Arc<dyn Store>| {
        let mut out = Vec::new();
        let q = Query { layer: "manhole", ..Query::default() };
        s.query(&q, &mut |f| {
            out.push(f);
            true
        })
        .unwrap();
        out
    };
    for _ in 0..3 {
        assert_eq!(read(&b).len(), 1); // cached by now
    }
    // Add `备注` through the other handle: the same statement text would still run, so only the
    // revalidation notices.
    let mut def = a.layer("manhole").unwrap().def.clone();
    def.schema.fields.push(shikong_model::FieldDef::new("备注", shikong_model::FieldType::Text));
    let mut tx = a.begin(TxMeta::by("admin")).unwrap();
    tx.update_layer("manhole", def).unwrap();
    let mut f = new("M2", 114.31, 30.51, "井盖", 2.0);
    f.properties.insert("备注".into(), "新井".into());
    tx.insert("manhole", f).unwrap();
    tx.commit().unwrap();
    let got = read(&b);
    assert_eq!(got.len(), 2);
    let m2 = got.iter().find(|f| f.feature.code == "M2").unwrap();
    assert_eq!(m2.feature.properties.get("备注"), Some(&"新井".into()));
    // Rename `material` (the cached statement names a column that is gone).
    read(&b);
    let mut def = a.layer("manhole").unwrap().def.clone();
    def.schema.fields.iter_mut().find(|f| f.name == "material").unwrap().name = "材质".into();
    let mut tx = a.begin(TxMeta::by("admin")).unwrap();
    tx.update_layer("manhole", def).unwrap();
    let mut f = new("M3", 114.32, 30.52, "井盖", 2.0);
    f.properties.insert("材质".into(), "铸铁".into());
    tx.insert("manhole", f).unwrap();
    tx.commit().unwrap();
    let got = read(&b);
    assert_eq!(got.len(), 3);
    let m3 = got.iter().find(|f| f.feature.code == "M3").unwrap();
    assert_eq!(m3.feature.properties.get("材质"), Some(&"铸铁".into()));
    // A query of a layer that does not exist is refused as before.
    let q = Query { layer: "nosuch", ..Query::default() };
    assert!(matches!(b.query(&q, &mut |_| true), Err(StoreError::NoSuchLayer(_))));
}

/// A bulk load above one statement's rows reaches the live table sorted on the geometry (a
/// city block on one or two heap pages, `bulk.rs`), while `fid` still follows the insert calls
/// and a read in the middle of the load sees every row inserted so far.
#[test]
fn a_bulk_load_is_stored_in_spatial_order_with_fids_in_call_order() {
    let url = Cluster::shared().fresh_db();
    let s = PgStore::open(&url, true).unwrap();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(crate::conformance::manhole_layer()).unwrap();
    tx.commit().unwrap();
    // A 60 × 50 grid visited in a scrambled order (a multiplicative permutation).
    let point = |i: u64| {
        let j = (i * 1_237) % 3_000;
        (114.0 + (j % 60) as f64 / 100.0, 30.3 + (j / 60) as f64 / 100.0)
    };
    let mut tx = s.begin(TxMeta::by("import")).unwrap();
    tx.bulk_load("manhole").unwrap();
    for i in 0..2_500 {
        let (x, y) = point(i);
        tx.insert("manhole", new(&format!("P{i}"), x, y, "井", 1.0)).unwrap();
    }
    // Staged and waiting rows alike are seen by a read through the transaction.
    assert!(tx.find_by_field("manhole", "code", &"P2499".into()).unwrap().is_some());
    assert!(tx.find_by_field("manhole", "code", &"P1".into()).unwrap().is_some());
    for i in 2_500..3_000 {
        let (x, y) = point(i);
        tx.insert("manhole", new(&format!("P{i}"), x, y, "井", 1.0)).unwrap();
    }
    assert_eq!(tx.commit().unwrap().inserted, 3_000);
    let mut c = client(&url);
    let codes: Vec<String> =
        c.query("SELECT code FROM manhole ORDER BY fid", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(codes, (0..3_000).map(|i| format!("P{i}")).collect::<Vec<_>>());
    // The heap holds the first 2,500 (moved in by the read) in geometry order, then the rest.
    let fids = |sql: &str| -> Vec<i64> { client(&url).query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect() };
    let first = "fid IN (SELECT fid FROM manhole ORDER BY fid LIMIT 2500)";
    let by_heap = fids(&format!("SELECT fid FROM manhole WHERE {first} ORDER BY ctid"));
    let by_geom = fids(&format!("SELECT fid FROM manhole WHERE {first} ORDER BY geom, fid"));
    assert_eq!(by_heap.len(), 2_500);
    assert_eq!(by_heap, by_geom);
    let by_heap = fids(&format!("SELECT fid FROM manhole WHERE NOT {first} ORDER BY ctid"));
    let by_geom = fids(&format!("SELECT fid FROM manhole WHERE NOT {first} ORDER BY geom, fid"));
    assert_eq!((by_heap.len(), &by_heap), (500, &by_geom));
    assert_eq!(s.count("manhole").unwrap(), 3_000);
}

/// An as-of query of a layer the process has read before is one statement (live rows and closed
/// versions in one `UNION ALL`); it answers exactly as the snapshot read of a fresh handle does,
/// at every instant of the history (before the store existed included), with a box, a filter
/// decided on both halves, a valid-time filter and an offset with a limit.
#[test]
fn an_as_of_read_in_one_statement_answers_as_the_snapshot_read() {
    let url = Cluster::shared().fresh_db();
    let s = dated(&url);
    history_fixture(&s);
    let layer = s.layer("manhole").unwrap();
    let f = shikong_query::Filter::parse_text("depth > 1.2 OR \"名称\" LIKE '井盖%'", layer.schema()).unwrap();
    let bbox = shikong_model::Bbox { min_x: 114.0, min_y: 30.0, max_x: 114.305, max_y: 30.9 };
    let mut instants = vec![crate::conformance::t("2024-06-01T00:00:00")];
    for tx in 1..=s.latest_tx().unwrap().0 {
        let at = s.tx_time(TxId(tx)).unwrap().unwrap();
        instants.extend([at, at - jiff::SignedDuration::from_secs(1)]);
    }
    let valid = shikong_model::time::ValidFilter::At(crate::conformance::t("2025-01-03T00:00:00"));
    let read = |store: &PgStore, q: &Query<'_>| {
        let mut out = Vec::new();
        let stats = store
            .query(q, &mut |f| {
                out.push(f);
                true
            })
            .unwrap();
        format!("{stats:?} {out:?}")
    };
    let cached = dated(&url);
    read(&cached, &Query::layer("manhole")); // the layer is cached from here on
    for at in instants {
        let queries = [
            Query { as_of: Some(at), ..Query::layer("manhole") },
            Query { as_of: Some(at), bbox: Some(bbox), ..Query::layer("manhole") },
            Query { as_of: Some(at), filter: Some(&f), ..Query::layer("manhole") },
            Query { as_of: Some(at), valid: Some(valid), ..Query::layer("manhole") },
            Query { as_of: Some(at), offset: 1, limit: Some(2), ..Query::layer("manhole") },
        ];
        for q in &queries {
            let fresh = dated(&url);
            assert_eq!(read(&cached, q), read(&fresh, q), "as of {at}");
        }
    }
}
