//! Seeded, replayable multi-replica simulation (proptest): replicas that start from one entity
//! (the deterministic base, or a device's create) edit, delete, restore, resolve and undo while
//! exchanging random subsets of their changes in random order with duplicates. Once everyone has
//! every change, all replicas must show the same state, list the same conflicts and hold every
//! edit ever made; resolving everything on one replica then settles it everywhere.
//!
//! A failure prints the minimal plan; proptest stores its seed under `proptest-regressions/` and
//! replays it first on the next run.

use proptest::prelude::*;
use shikong_model::Value;

use crate::test_support::{feature, meta, point, props, schema};
use crate::{
    Actor, ChangeHash, ConflictKind, ConflictValueKind, Edit, EditMeta, EntityDoc, Error, Resolved, ServerMeta,
    change_hash,
};

#[derive(Debug, Clone)]
enum Step {
    Set {
        replica: usize,
        field: usize,
        value: usize,
    },
    Move {
        replica: usize,
        dx: i8,
        dy: i8,
    },
    Delete {
        replica: usize,
    },
    Restore {
        replica: usize,
    },
    Resolve {
        replica: usize,
        pick: usize,
    },
    Undo {
        replica: usize,
    },
    /// A store version written outside sync, mirrored by replica 0 (the server: only one party
    /// may write the server actor's changes).
    Server {
        field: usize,
        value: usize,
        deleted: bool,
    },
    /// Sends the changes at `picks` (indices into the sender's changes, repeats allowed), or all
    /// of them shuffled by `picks` when `all`.
    Send {
        from: usize,
        to: usize,
        picks: Vec<usize>,
        all: bool,
    },
}

const FIELDS: [&str; 5] = ["名称", "深度", "数量", "完好", "状态"];

fn value(field: usize, v: usize) -> Value {
    match field {
        0 => ["雨水井", "污水井", "井盖"][v % 3].into(),
        1 => Value::Real([1.5, 2.0, 2.5][v % 3]),
        2 => [Value::Integer(1), Value::Integer(2), Value::Null][v % 3].clone(),
        3 => Value::Bool(v.is_multiple_of(2)),
        _ => ["1", "2"][v % 2].into(),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..6usize;
    prop_oneof![
        4 => (r.clone(), 0..FIELDS.len(), 0..3usize).prop_map(|(replica, field, value)| Step::Set { replica, field, value }),
        2 => (r.clone(), -2..3i8, -2..3i8).prop_map(|(replica, dx, dy)| Step::Move { replica, dx, dy }),
        1 => r.clone().prop_map(|replica| Step::Delete { replica }),
        1 => r.clone().prop_map(|replica| Step::Restore { replica }),
        2 => (r.clone(), 0..16usize).prop_map(|(replica, pick)| Step::Resolve { replica, pick }),
        1 => r.clone().prop_map(|replica| Step::Undo { replica }),
        1 => (0..FIELDS.len(), 0..3usize, prop::bool::weighted(0.2))
            .prop_map(|(field, value, deleted)| Step::Server { field, value, deleted }),
        4 => (r.clone(), r, prop::collection::vec(0..64usize, 0..8), prop::bool::weighted(0.3))
            .prop_map(|(from, to, picks, all)| Step::Send { from, to, picks, all }),
    ]
}

fn actor(i: usize) -> Actor {
    Actor([u8::try_from(i + 1).unwrap_or(u8::MAX); 16])
}

fn meta_of(i: usize, step: usize) -> EditMeta {
    let time = format!("2025-06-01T08:{:02}:{:02}+08:00", step / 60 % 60, step % 60);
    meta(&format!("用户{i}"), &format!("设备-{i}"), &time)
}

/// The resolution that picks side `k` of a conflict (0 = the winner).
fn choose(c: &crate::Conflict, k: usize) -> Edit {
    let sides: Vec<_> = std::iter::once(&c.winner).chain(&c.others).collect();
    let value = match &sides[k % sides.len()].value {
        ConflictValueKind::Value(v) => Resolved::Value(v.clone()),
        ConflictValueKind::Absent => Resolved::Value(Value::Null),
        ConflictValueKind::Geometry(g) => Resolved::Geometry(g.clone()),
        ConflictValueKind::Deleted(d) => Resolved::Deleted(*d),
    };
    Edit::Resolve { attribute: c.attribute.clone(), value }
}

/// Runs a plan; returns the replicas and every change any of them wrote.
fn run(n: usize, from_create: bool, steps: &[Step]) -> Result<(Vec<EntityDoc>, Vec<ChangeHash>), TestCaseError> {
    let s = schema();
    let mut made = Vec::new();
    let mut docs = if from_create {
        let (doc, change) = EntityDoc::create(&s, &feature(), actor(0), &meta_of(0, 0)).unwrap();
        made.push(change_hash(&change).unwrap());
        let mut docs = vec![doc];
        docs.extend((1..n).map(|_| EntityDoc::from_changes(std::slice::from_ref(&change)).unwrap()));
        docs
    } else {
        (0..n).map(|_| EntityDoc::base(&s, &feature()).unwrap()).collect()
    };
    for (k, st) in steps.iter().enumerate() {
        let edit = |replica: &usize, e: Edit| (replica % n, Some(e));
        let (i, e) = match st {
            Step::Set { replica, field, value: v } => {
                edit(replica, Edit::SetFields(props(&[(FIELDS[*field], value(*field, *v))])))
            }
            Step::Move { replica, dx, dy } => {
                edit(replica, Edit::SetGeometry(point(114.3 + f64::from(*dx) * 0.01, 30.5 + f64::from(*dy) * 0.01)))
            }
            Step::Delete { replica } => edit(replica, Edit::Delete),
            Step::Restore { replica } => edit(replica, Edit::Restore),
            Step::Resolve { replica, pick } => {
                let conflicts = docs[replica % n].conflicts(&s).unwrap();
                if conflicts.is_empty() {
                    continue;
                }
                edit(replica, choose(&conflicts[pick % conflicts.len()], pick / conflicts.len()))
            }
            Step::Undo { replica } => (replica % n, None),
            Step::Server { field, value: v, deleted } => {
                let mut target = docs[0].state(&s).unwrap();
                target.deleted = *deleted;
                target.feature.properties.insert(FIELDS[*field].into(), value(*field, *v));
                let version = i64::try_from(k).unwrap_or(i64::MAX);
                let m = ServerMeta { version, tx: version, author: "导入".into(), time: meta_of(0, k).time };
                made.extend(docs[0].server_change(&s, &target, &m).unwrap().map(|c| change_hash(&c).unwrap()));
                continue;
            }
            Step::Send { from, to, picks, all } => {
                let (from, to) = (from % n, to % n);
                let changes = docs[from].changes_after(&[]);
                let mut batch: Vec<Vec<u8>> = picks.iter().map(|p| changes[p % changes.len()].clone()).collect();
                if *all {
                    batch.extend(changes.iter().rev().cloned());
                }
                let heads = docs[to].heads();
                match docs[to].apply_changes(&batch) {
                    Ok(_) => {}
                    Err(Error::MissingDependencies) => prop_assert_eq!(docs[to].heads(), heads, "partial apply"),
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
                continue;
            }
        };
        let change = match e {
            Some(e) => docs[i].edit(&s, actor(i), &meta_of(i, k), e).unwrap(),
            None => docs[i].undo(&s, actor(i), &meta_of(i, k)).unwrap(),
        };
        made.extend(change.map(|c| change_hash(&c).unwrap()));
    }
    Ok((docs, made))
}

/// Gives every replica every change (in reverse, repeated: order and duplicates do not matter).
fn exchange_all(docs: &mut [EntityDoc]) {
    let mut all: Vec<Vec<u8>> = docs.iter().flat_map(|d| d.changes_after(&[])).collect();
    all.reverse();
    for d in docs.iter_mut() {
        d.apply_changes(&all).unwrap();
    }
}

fn assert_converged(docs: &[EntityDoc], made: &[ChangeHash]) -> Result<(), TestCaseError> {
    let s = schema();
    let first = &docs[0];
    for d in docs {
        prop_assert_eq!(d.heads(), first.heads());
        prop_assert_eq!(d.state(&s).unwrap(), first.state(&s).unwrap());
        prop_assert_eq!(d.conflicts(&s).unwrap(), first.conflicts(&s).unwrap());
        for h in made {
            prop_assert!(d.has_change(h), "change {} lost", h);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(n in 2..=6usize, from_create in any::<bool>(), steps in prop::collection::vec(step(), 1..48)) {
        let (mut docs, made) = run(n, from_create, &steps)?;
        exchange_all(&mut docs);
        assert_converged(&docs, &made)?;

        // One person settles everything on replica 0 (keeping what is shown); once that syncs,
        // no replica has a conflict left.
        let s = schema();
        let office = meta("王五", "办公室", "2025-06-02T10:00:00+08:00");
        for _ in 0..16 {
            let Some(c) = docs[0].conflicts(&s).unwrap().into_iter().next() else { break };
            let kind = c.kind;
            prop_assert!(docs[0].edit(&s, Actor([0xee; 16]), &office, choose(&c, 0)).unwrap().is_some(), "{:?} not written", kind);
            prop_assert!(kind == ConflictKind::Field || kind == ConflictKind::DeletedWhileEdited);
        }
        prop_assert_eq!(docs[0].conflicts(&s).unwrap(), vec![]);
        let settled = docs[0].state(&s).unwrap();
        exchange_all(&mut docs);
        for d in &docs {
            prop_assert_eq!(d.conflicts(&s).unwrap(), vec![]);
            prop_assert_eq!(&d.state(&s).unwrap(), &settled);
        }
    }
}
