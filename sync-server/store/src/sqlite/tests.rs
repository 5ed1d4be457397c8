//! The SQLite backend against the conformance suite (`crate::conformance`), plus what only this
//! backend has: files refused or reopened, migrations, query plans.

use std::sync::Arc;

use jiff::SignedDuration;

use super::*;
use crate::conformance::{history_fixture, new, t};
use crate::{FixedStepClock, OpenOptions, Store, StoreConfig};

/// A fresh store in a temporary directory, opened through the factory as callers open it.
fn fresh(clock: Arc<dyn Clock>) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions { create: true, clock: Some(clock) };
    let store = crate::open_with(&StoreConfig::in_dir(dir.path()), &options).unwrap();
    (dir, store)
}

mod conformance {
    crate::conformance_tests!(super::fresh);
}

/// A store whose transactions happen one day apart from 2025-01-01, as the concrete type.
fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedStepClock::new(t("2025-01-01T00:00:00+08:00"), SignedDuration::from_hours(24));
    let s = SqliteStore::open_or_create(dir.path().join("store.gpkg")).unwrap().with_clock(Arc::new(clock));
    (dir, s)
}

#[test]
fn reopening_and_refusing_newer_or_foreign_files() {
    let (d, s) = store();
    history_fixture(&s);
    let path = s.path().to_owned();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.count("manhole").unwrap(), 3);
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE sk_meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
    drop(conn);
    let e = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("newer shikong") && e.contains("version 99"), "{e}");
    let junk = d.path().join("junk.gpkg");
    std::fs::write(&junk, b"this is not a database").unwrap();
    assert!(matches!(SqliteStore::open(&junk), Err(StoreError::NotAStore { .. })));
    assert!(SqliteStore::open(d.path().join("missing.gpkg")).unwrap_err().to_string().contains("shikong init"));
}

/// "What did this user create" starts from the user's transactions, through an index.
#[test]
fn the_journal_is_indexed_by_author() {
    let (_d, s) = store();
    history_fixture(&s);
    let conn = s.reader().unwrap();
    let plan: String = conn
        .query_row("EXPLAIN QUERY PLAN SELECT tx FROM sk_transactions WHERE author = 'alice'", [], |r| r.get(3))
        .unwrap();
    assert!(plan.contains("sk_idx_transactions_author"), "{plan}");
}

/// Migration 4 fills the typed `replica` of transactions written before it from their
/// `sync push <replica> <batch>` label — only where the label has exactly that shape.
#[test]
fn migration_4_backfills_the_pushing_replica_from_the_label() {
    let (_d, s) = store();
    history_fixture(&s);
    let replica = "0191d2c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6";
    let labels = [
        (format!("sync push {replica} 7"), Some(replica)),
        (format!("sync push {replica} 8"), Some(replica)),
        (format!("sync push {}", replica.to_uppercase()) + " 9", None),
        (format!("sync push {replica}"), None),
        (format!("sync push {replica}x 1"), None),
        (format!("import sync push {replica} 1"), None),
        ("api create".to_owned(), None),
    ];
    let first = s.latest_tx().unwrap().0 + 1;
    for (i, (label, _)) in labels.iter().enumerate() {
        let mut tx = s.begin(TxMeta::by("li").source(label.clone())).unwrap();
        tx.insert("manhole", new(&format!("P{i}"), 114.3, 30.5, "井盖", 1.0)).unwrap();
        tx.commit().unwrap();
    }
    let path = s.path().to_owned();
    drop(s);
    // The store as schema version 3 left it: no `replica` column. (ALTER TABLE checks the
    // schema's triggers, so the GeoPackage R-tree triggers' functions must exist.)
    let conn = rusqlite::Connection::open(&path).unwrap();
    shikong_gpkg::register_functions(&conn).unwrap();
    conn.execute_batch(
        "ALTER TABLE sk_transactions DROP COLUMN replica; UPDATE sk_meta SET value = '3' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).unwrap();
    let journal = s.transactions(None, 100).unwrap();
    let got: Vec<(Option<String>, Option<String>)> = journal
        .iter()
        .filter(|r| r.tx.0 >= first)
        .map(|r| (r.source.clone(), r.replica.map(|u| u.to_string())))
        .collect();
    let expected: Vec<(Option<String>, Option<String>)> =
        labels.iter().map(|(l, r)| (Some(l.clone()), r.map(str::to_owned))).collect();
    assert_eq!(got, expected);
    assert!(journal.iter().filter(|r| r.tx.0 < first).all(|r| r.replica.is_none()));
    let version: String = s
        .reader()
        .unwrap()
        .query_row("SELECT value FROM sk_meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

/// A statement run under a cancelled token is interrupted by the progress handler and the call
/// fails as `Cancelled`; the same call without a token (or with a live one) answers.
#[test]
fn a_cancelled_token_interrupts_a_running_query() {
    let (_d, s) = store();
    history_fixture(&s);
    let mut tx = s.begin(TxMeta::by("bulk")).unwrap();
    for i in 0..2000 {
        tx.insert("manhole", new(&format!("N{i}"), 114.3, 30.5, "井盖", 1.0)).unwrap();
    }
    tx.commit().unwrap();
    let run = || s.query(&Query::layer("manhole"), &mut |_| true);
    assert_eq!(run().unwrap().returned, 2003);
    let live = crate::cancel::CancelToken::new(None);
    assert_eq!(crate::cancel::scope(&live, run).unwrap().returned, 2003);
    let before = crate::cancel::cancelled_total();
    let token = crate::cancel::CancelToken::new(None);
    token.cancel();
    let r = crate::cancel::scope(&token, run);
    assert!(matches!(r, Err(StoreError::Cancelled(crate::cancel::CancelReason::Abandoned))), "{r:?}");
    assert!(crate::cancel::cancelled_total() > before);
    // The interrupted connection went back to the pool and still works.
    assert_eq!(run().unwrap().returned, 2003);
    let r = crate::cancel::scope(&token, || s.diff_page("manhole", t("2025-01-01"), t("2030-01-01"), None, 10));
    assert!(matches!(r, Err(StoreError::Cancelled(_))), "{r:?}");
}

/// A store written before schema version 5 gets the attachment references of what it already
/// holds (current rows and history) when it is opened.
#[test]
fn migration_5_fills_in_attachment_references() {
    use crate::SyncBookkeeping;
    let (_d, s) = store();
    let mut def = crate::conformance::manhole_layer();
    def.schema.fields.push(shikong_model::FieldDef::new("照片", shikong_model::FieldType::Attachments));
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(def).unwrap();
    let mut f = new("A", 114.3, 30.5, "井盖A", 1.0);
    f.properties.insert("照片".into(), shikong_model::Value::Attachments(vec![a.clone()]));
    let id = tx.insert("manhole", f).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    let set = crate::conformance::props(&[("照片", shikong_model::Value::Attachments(vec![b.clone()]))]);
    tx.update("manhole", &FeatureKey::Id(id), Patch { set, ..Patch::default() }).unwrap();
    tx.commit().unwrap();
    let path = s.path().to_owned();
    drop(s);
    // As a version 4 store was: no reference table.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE sk_blob_refs; UPDATE sk_meta SET value = '4' WHERE key = 'schema_version';")
        .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.blob_layers(&a).unwrap(), ["manhole"], "from history");
    assert_eq!(s.blob_layers(&b).unwrap(), ["manhole"], "from the current row");
}

/// `ensure_index` makes an index the query planner uses, records no transaction, is idempotent,
/// and refuses a field the layer does not have.
#[test]
fn an_ensured_index_is_used_and_leaves_no_transaction() {
    let (_d, s) = store();
    history_fixture(&s);
    let before = s.latest_tx().unwrap();
    for _ in 0..2 {
        let mut tx = s.begin(TxMeta::by("system")).unwrap();
        tx.ensure_index("manhole", &["depth"]).unwrap();
        assert!(tx.commit().unwrap().tx.is_none());
    }
    assert_eq!(s.latest_tx().unwrap(), before, "no transaction recorded");
    let conn = s.reader().unwrap();
    let plan: String =
        conn.query_row("EXPLAIN QUERY PLAN SELECT fid FROM manhole WHERE depth > 2", [], |r| r.get(3)).unwrap();
    assert!(plan.contains("sk_idx_manhole_depth"), "{plan}");
    let mut tx = s.begin(TxMeta::by("system")).unwrap();
    let e = tx.ensure_index("manhole", &["no_such_field"]).unwrap_err().to_string();
    assert!(e.contains("no_such_field"), "{e}");
}
