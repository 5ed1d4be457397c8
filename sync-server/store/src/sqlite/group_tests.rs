//! Group commit under real concurrency: threads running grouped and plain transactions on the
//! same feature at the same time lose no update, see every earlier write, and share disk syncs.

use std::sync::{Arc, Barrier};

use shikong_model::Value;

use super::*;
use crate::conformance::{manhole_layer, new, props};

const THREADS: usize = 16;
const ROUNDS: usize = 30;

fn depth(f: &StoredFeature) -> f64 {
    match f.feature.properties.get("depth") {
        Some(Value::Real(d)) => *d,
        other => panic!("depth is {other:?}"),
    }
}

fn store_with_a() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open_or_create(dir.path().join("store.gpkg")).unwrap();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    tx.insert("manhole", new("A", 114.30, 30.50, "井盖A", 0.0)).unwrap();
    tx.commit().unwrap();
    (dir, Arc::new(s))
}

/// Increments A's depth by one in a grouped (or plain) transaction, reading it the way each
/// kind must; `keep == false` writes and then drops the transaction. Returns the depth written.
fn increment(s: &SqliteStore, who: String, grouped: bool, keep: bool) -> f64 {
    let a = FeatureKey::Code("A".into());
    let mut tx = if grouped { s.begin_grouped(TxMeta::by(who)) } else { s.begin(TxMeta::by(who)) }.unwrap();
    let now = if grouped { tx.get("manhole", &a).unwrap() } else { s.get("manhole", &a, None).unwrap() };
    let next = depth(&now.unwrap()) + 1.0;
    let patch = Patch { set: props(&[("depth", next.into())]), ..Patch::default() };
    tx.update("manhole", &a, patch).unwrap();
    if keep {
        tx.commit().unwrap();
    }
    next
}

#[test]
fn concurrent_grouped_transactions_lose_no_update_and_share_syncs() {
    let (_d, s) = store_with_a();
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (s, start) = (s.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut kept = 0;
                for r in 0..ROUNDS {
                    // Mixed: mostly grouped, some plain; one in five dropped after writing.
                    let grouped = (t + r) % 7 != 0;
                    let keep = (t * 3 + r) % 5 != 0;
                    let wrote = increment(&s, format!("u{t}"), grouped, keep);
                    if keep {
                        kept += 1;
                        // Committed means visible to every reader at once.
                        let seen = depth(&s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap());
                        assert!(seen >= wrote, "wrote {wrote}, a reader saw {seen} after the commit returned");
                    }
                }
                kept
            })
        })
        .collect();
    let kept: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let a = s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap();
    assert_eq!(depth(&a), kept as f64, "every committed increment counted once");
    // Every kept increment is a version of its own (1 for the insert).
    let versions = s.history("manhole", &FeatureKey::Code("A".into())).unwrap();
    assert_eq!(versions.len(), kept + 1);
    let (groups, members) = s.group_commits();
    assert!(members > 0 && groups < members, "{members} grouped commits in {groups} disk syncs");
    // And all of it survives a reopen.
    let path = s.path().to_owned();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(depth(&s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap()), kept as f64);
}

#[test]
fn a_failing_member_leaves_its_group_intact() {
    let (_d, s) = store_with_a();
    // Holding a grouped member open makes the next members queue behind it.
    let mut first = s.begin_grouped(TxMeta::by("first")).unwrap();
    first.insert("manhole", new("B", 114.31, 30.51, "井盖B", 1.0)).unwrap();
    let s2 = s.clone();
    let second = std::thread::spawn(move || {
        let mut tx = s2.begin_grouped(TxMeta::by("second")).unwrap();
        // Sees the first member's write through itself once the first has committed.
        assert!(tx.get("manhole", &FeatureKey::Code("B".into())).unwrap().is_some());
        // A write the layer refuses (depth below its minimum): the caller drops the transaction.
        let bad = tx.insert("manhole", new("C", 114.32, 30.52, "井盖C", -1.0));
        assert!(bad.is_err());
        drop(tx);
        let mut tx = s2.begin_grouped(TxMeta::by("third")).unwrap();
        tx.insert("manhole", new("D", 114.33, 30.53, "井盖D", 2.0)).unwrap();
        tx.commit().unwrap();
    });
    // Let the second thread queue for the writer, then commit the first.
    while s.durability.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    first.commit().unwrap();
    second.join().unwrap();
    for code in ["A", "B", "D"] {
        assert!(s.get("manhole", &FeatureKey::Code(code.into()), None).unwrap().is_some(), "{code} is kept");
    }
    assert!(s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().is_none());
}

#[test]
fn a_plain_transaction_starts_after_the_group_is_durable() {
    let (_d, s) = store_with_a();
    let s2 = s.clone();
    let mut member = s.begin_grouped(TxMeta::by("member")).unwrap();
    member.insert("manhole", new("B", 114.31, 30.51, "井盖B", 1.0)).unwrap();
    let plain = std::thread::spawn(move || {
        let tx = s2.begin(TxMeta::by("plain")).unwrap();
        // Begun: the member's group is committed, so the store's own reads see it.
        let b = s2.get("manhole", &FeatureKey::Code("B".into()), None).unwrap();
        drop(tx);
        b.is_some()
    });
    while s.durability.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    member.commit().unwrap();
    assert!(plain.join().unwrap());
}

/// A caller that hung up does not stop a group member half-way (an interrupted write would roll
/// back the whole group), while a plain transaction still stops.
#[test]
fn a_cancelled_caller_does_not_interrupt_a_group_member() {
    let (_d, s) = store_with_a();
    let token = crate::cancel::CancelToken::new(None);
    token.cancel();
    let scan = |tx: &mut dyn StoreTx| -> Result<()> {
        // Enough statements (and VM steps) for the progress handler to run many times.
        for i in 0..300 {
            tx.insert("manhole", new(&format!("N{i}"), 114.3 + f64::from(i) * 1e-4, 30.5, "井盖", 1.0))?;
        }
        Ok(())
    };
    let plain = crate::cancel::scope(&token, || {
        let mut tx = s.begin(TxMeta::by("plain")).unwrap();
        scan(tx.as_mut())
    });
    assert!(matches!(plain, Err(StoreError::Cancelled(_))), "{plain:?}");
    crate::cancel::scope(&token, || {
        let mut tx = s.begin_grouped(TxMeta::by("member")).unwrap();
        scan(tx.as_mut()).unwrap();
        tx.commit().unwrap();
    });
    assert_eq!(s.count("manhole").unwrap(), 301);
}
