//! The read replica and failover against real servers: a private primary and a streaming
//! standby of `shikong-pgtest` (one pair per test, a few seconds each).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shikong_pgtest::{Cluster, Replication};

use crate::conformance::{manhole_layer, new};
use crate::read_route::replica_allowed;
use crate::{FeatureKey, PgStore, Store, TxMeta};

fn write(s: &dyn Store, code: &str) {
    let mut tx = s.begin(TxMeta::by("replica test")).unwrap();
    tx.insert("manhole", new(code, 114.3, 30.5, "井盖", 1.0)).unwrap();
    tx.commit().unwrap();
}

fn found(s: &dyn Store, code: &str) -> bool {
    s.get("manhole", &FeatureKey::Code(code.into()), None).unwrap().is_some()
}

fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// Sessions named `app` on the standby's database that ran a statement since `since`.
fn standby_reads(standby: &Cluster, db: &str, app: &str, since: &str) -> i64 {
    admin(&standby.url("postgres"))
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 \
             AND query_start > $3::text::timestamptz",
            &[&db, &app, &since],
        )
        .unwrap()
        .get(0)
}

fn clock(c: &Cluster) -> String {
    admin(&c.url("postgres")).query_one("SELECT clock_timestamp()::text", &[]).unwrap().get(0)
}

#[test]
fn marked_reads_go_to_the_standby_and_a_writer_reads_its_own_writes() {
    let primary = Cluster::start(false).unwrap();
    let url = primary.fresh_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let setup: Arc<dyn Store> = Arc::new(PgStore::open(&url, true).unwrap());
    let mut tx = setup.begin(TxMeta::by("setup")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    tx.insert("manhole", new("JG-1", 114.3, 30.5, "一号", 1.0)).unwrap();
    tx.commit().unwrap();
    let standby = primary.standby(Replication::Async).unwrap();
    let replica = format!("{}?application_name=sk_test_reader", standby.url(&db));
    let s: Arc<dyn Store> = Arc::new(PgStore::open_with_replica(&url, Some(&replica), false).unwrap());

    // Marked reads run on the standby; unmarked ones never do.
    let since = clock(&standby);
    assert!(found(s.as_ref(), "JG-1"));
    assert_eq!(s.layers().unwrap().len(), 1);
    assert_eq!(standby_reads(&standby, &db, "sk_test_reader", &since), 0, "unmarked reads use the primary");
    assert!(replica_allowed(|| found(s.as_ref(), "JG-1") && s.layer("manhole").is_ok()));
    assert!(standby_reads(&standby, &db, "sk_test_reader", &since) > 0, "marked reads use the standby");

    // Replay paused: this process's write is read back at once (from the primary, after at most
    // about 200 ms of waiting for the standby).
    let mut standby_admin = admin(&standby.url("postgres"));
    standby_admin.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    write(s.as_ref(), "JG-2");
    let asked = Instant::now();
    assert!(replica_allowed(|| found(s.as_ref(), "JG-2")), "read-your-writes through a paused standby");
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(150), "it waited for the standby first: {waited:?}");
    let mut seen = Vec::new();
    let stats = replica_allowed(|| {
        s.query(&crate::Query::layer("manhole"), &mut |f| {
            seen.push(f.feature.code);
            true
        })
    })
    .unwrap();
    assert_eq!(seen, ["JG-1", "JG-2"], "queries too (the standby is skipped for a while)");
    // Those answers came from the primary: the standby has not replayed JG-2's transaction.
    let on_standby: i64 =
        admin(&standby.url(&db)).query_one("SELECT max(tx) FROM sk_transactions", &[]).unwrap().get(0);
    assert!(on_standby < stats.tx.unwrap().0, "the standby is behind the answer");
    // Another handle (another process) wrote nothing this one knows of: once the standby caught
    // up, reads are served there again.
    standby_admin.batch_execute("SELECT pg_wal_replay_resume()").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // the skip after falling behind
    let since = clock(&standby);
    assert!(replica_allowed(|| found(s.as_ref(), "JG-2")));
    assert!(standby_reads(&standby, &db, "sk_test_reader", &since) > 0, "back on the standby");

    // The standby stops: marked reads still answer, from the primary, and see new writes.
    standby.stop().unwrap();
    write(s.as_ref(), "JG-3");
    for _ in 0..3 {
        assert!(replica_allowed(|| found(s.as_ref(), "JG-3") && s.layers().unwrap().len() == 1));
    }
    let mut n = 0;
    replica_allowed(|| {
        s.query(&crate::Query::layer("manhole"), &mut |_| {
            n += 1;
            true
        })
    })
    .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn a_store_on_two_hosts_reconnects_after_a_failover_and_loses_no_commit() {
    let primary = Cluster::start(false).unwrap();
    let url = primary.fresh_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    drop(PgStore::open(&url, true).unwrap());
    let standby = primary.standby(Replication::Sync).unwrap();
    let both = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let s: Arc<dyn Store> = Arc::new(PgStore::open(&both, false).unwrap());
    let mut tx = s.begin(TxMeta::by("setup")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    tx.commit().unwrap();
    // Several idle connections in the pool, all to the primary.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| assert_eq!(s.count("manhole").unwrap(), 0));
        }
    });
    for i in 0..10 {
        write(s.as_ref(), &format!("A-{i}"));
    }
    primary.stop_immediate().unwrap();
    // Down, not promoted yet: a write fails as unavailable (the HTTP layer's 503).
    let e = s.begin(TxMeta::by("during")).map(|_| ()).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    standby.promote().unwrap();
    // At most one failure more (a broken connection found in the pool closes the other idle
    // ones), then writes and reads work again on the promoted standby.
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.begin(TxMeta::by("after")).and_then(|mut tx| {
            tx.insert("manhole", new("B-0", 114.3, 30.5, "井盖", 1.0))?;
            tx.commit()
        });
        match r {
            Ok(_) => break,
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                failures += 1;
                assert!(Instant::now() < deadline, "no write succeeded after the promotion: {e}");
            }
        }
    }
    assert!(failures <= 1, "{failures} writes failed after the promotion");
    assert_eq!(s.count("manhole").unwrap(), 11, "every acknowledged commit and the new one");
    for i in 0..10 {
        assert!(found(s.as_ref(), &format!("A-{i}")));
    }
}
