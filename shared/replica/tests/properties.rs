//! Invariants over random edit sequences: the row always shows the document's state, a refused
//! edit leaves no trace, and the outbox replayed on the server gives exactly the replica's state.

use proptest::prelude::*;
use shikong_model::{Properties, Value};
use shikong_replica::FeatureKey;

use crate::support::*;

#[derive(Debug, Clone)]
enum Step {
    /// 0–25: values above 20 are refused by the schema.
    Depth(u8),
    Ok(bool),
    Status(bool),
    Delete,
    Restore,
    Undo,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..=25).prop_map(Step::Depth),
        any::<bool>().prop_map(Step::Ok),
        any::<bool>().prop_map(Step::Status),
        Just(Step::Delete),
        Just(Step::Restore),
        Just(Step::Undo),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_outbox_replayed_on_the_server_gives_the_replicas_state(steps in proptest::collection::vec(step(), 1..14)) {
        let dir = tempfile::tempdir().unwrap();
        let mut r = open(&cut(dir.path(), "p.gpkg", 2));
        let k = FeatureKey::Code("420111-JG-000001".into());
        let mut changes = 0u64;
        for (i, s) in steps.iter().enumerate() {
            let m = meta("张三", &format!("2025-06-02T10:{:02}:00+08:00", i));
            let set = |name: &str, v: Value| -> Properties { [(name.to_string(), v)].into() };
            let before = (r.pending().unwrap(), r.get("manhole", &k).unwrap());
            let done = match s {
                Step::Depth(d) => r.set_fields("manhole", &k, set("depth", Value::Real(f64::from(*d))), &m),
                Step::Ok(b) => r.set_fields("manhole", &k, set("ok", Value::Bool(*b)), &m),
                Step::Status(b) => r.set_fields("manhole", &k, set("status", Value::from(if *b { "1" } else { "2" })), &m),
                Step::Delete => r.delete("manhole", &k, &m),
                Step::Restore => r.restore("manhole", &k, &m),
                Step::Undo => r.undo("manhole", &k, &m).map(|()| true),
            };
            match done {
                Ok(true) => changes += 1,
                Ok(false) | Err(_) => {
                    prop_assert_eq!((r.pending().unwrap(), r.get("manhole", &k).unwrap()), before, "step {:?} left a trace", s);
                }
            }
            prop_assert_eq!(r.pending().unwrap(), changes);
        }
        let shown = r.get("manhole", &k).unwrap().map(|f| f.feature);
        let mut server = FakeServer::new(2);
        sync_push(&mut r, &mut server);
        prop_assert_eq!(r.pending().unwrap(), 0);
        let st = server.docs[&id(1)].0.state(&manhole().schema).unwrap();
        prop_assert_eq!(if st.deleted { None } else { Some(st.feature) }, shown.clone());
        prop_assert_eq!(r.get("manhole", &k).unwrap().map(|f| f.feature), shown);
    }
}
