//! Push batches that name an entity more than once (issue 14). However a device's changes are
//! split into entries and ordered, the store ends where merging every change into one document
//! ends, each entity gets one answer, and none is reported accepted while its edit was lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
use shikong_model::{EntityId, Value};
use shikong_protocol as wire;
use shikong_store::{FeatureKey, Store, StoreConfig};
use support::{AllowAll, li};

const FIELDS: [&str; 3] = ["a", "b", "c"];
const ENTITIES: usize = 3;
const ACTORS: usize = 3;

/// A store with `ENTITIES` features of three real fields, all at version 1.
fn store(dir: &std::path::Path) -> (std::sync::Arc<dyn Store>, Vec<EntityId>) {
    let store = shikong_store::init(&StoreConfig::in_dir(dir)).unwrap();
    let ids = support::seed_manholes(&*store, &FIELDS, ENTITIES);
    (store, ids)
}

/// `(entity, actor, field, value)` edits; `joins[i]`: change `i` goes into the previous entry
/// when it is of the same entity; `keys`: the order of the entries.
type Case = (Vec<(usize, usize, usize, i8)>, Vec<bool>, Vec<u16>);

fn cases() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((0..ENTITIES, 0..ACTORS, 0..FIELDS.len(), any::<i8>()), 1..14),
        proptest::collection::vec(any::<bool>(), 14),
        proptest::collection::vec(any::<u16>(), 14),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn repeated_entities_in_a_batch_merge_every_change(case in cases()) {
        let (edits, joins, keys) = case;
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store(dir.path());
        let layer = store.layer("manhole").unwrap();
        let schema = layer.schema();
        // The documents every party derives for the unedited entities (read before the push).
        let bases: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| {
                let f = store.get("manhole", &FeatureKey::Id(*id), None).unwrap().unwrap().feature;
                EntityDoc::base(schema, &f).unwrap().save()
            })
            .collect();
        let base = |e: usize| EntityDoc::load(&bases[e]).unwrap();
        // Each actor edits its own copy of each entity (devices working concurrently).
        let actors: Vec<Actor> = (0..ACTORS).map(|_| Actor::random()).collect();
        let mut docs: BTreeMap<(usize, usize), EntityDoc> = BTreeMap::new();
        let meta = EditMeta { user: "li".into(), device: None, time: jiff::Timestamp::now() };
        let mut changes: Vec<(usize, Vec<u8>)> = Vec::new();
        for &(e, a, f, v) in &edits {
            let doc = docs.entry((e, a)).or_insert_with(|| base(e));
            let props = [(FIELDS[f].to_owned(), Value::Real(f64::from(v)))].into();
            if let Some(c) = doc.edit(schema, actors[a], &meta, Edit::SetFields(props)).unwrap() {
                changes.push((e, c));
            }
        }
        prop_assume!(!changes.is_empty());
        // Entries: runs of changes of one entity, some split, in a shuffled order.
        let mut entries: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
        for (i, (e, c)) in changes.iter().enumerate() {
            match entries.last_mut() {
                Some((last, cs)) if *last == *e && joins[i] => cs.push(c.clone()),
                _ => entries.push((*e, vec![c.clone()])),
            }
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (keys[i % keys.len()], i));
        let req = wire::PushRequest {
            protocol: wire::PROTOCOL_VERSION,
            replica: uuid::Uuid::now_v7(),
            batch: uuid::Uuid::now_v7(),
            entities: order
                .iter()
                .map(|&i| wire::EntityChanges {
                    layer: "manhole".into(),
                    entity: ids[entries[i].0].0,
                    changes: entries[i].1.iter().cloned().map(wire::Bytes).collect(),
                })
                .collect(),
            seen: None,
        };
        let resp = shikong_sync_engine::sync::push(&*store, &AllowAll, &li(), &req, &|_| true).unwrap();

        // Expected: every change of an entity merged into its base document.
        for (e, id) in ids.iter().enumerate() {
            let mine: Vec<Vec<u8>> = changes.iter().filter(|(x, _)| *x == e).map(|(_, c)| c.clone()).collect();
            let answers: Vec<&wire::EntityResult> = resp.results.iter().filter(|r| r.entity == id.0).collect();
            if mine.is_empty() {
                prop_assert!(answers.is_empty());
                continue;
            }
            prop_assert_eq!(answers.len(), 1, "one answer per entity: {:?}", resp.results);
            prop_assert!(
                matches!(answers[0].outcome, wire::Outcome::Accepted { .. } | wire::Outcome::Unchanged { .. }),
                "{:?}", answers[0].outcome
            );
            let mut expected = base(e);
            expected.apply_changes(&mine).unwrap();
            let expected = expected.state(schema).unwrap().feature.properties;
            let stored = store.get("manhole", &FeatureKey::Id(*id), None).unwrap().unwrap();
            prop_assert_eq!(&stored.feature.properties, &expected);
            prop_assert!(stored.version <= 2, "one version per entity per push");
            let (_, doc) = store.sync_doc("manhole", *id).unwrap().unwrap();
            prop_assert_eq!(EntityDoc::load(&doc).unwrap().state(schema).unwrap().feature.properties, expected);
        }
    }
}
