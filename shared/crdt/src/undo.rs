//! Undo of a device's own edits, as a new change (so it syncs and stays in history).
//!
//! Each undo names the change it undoes in its message (`"undoes"`), so repeated undos walk back
//! through the actor's edits instead of undoing the undo. Per key the undone change wrote:
//! - if its value is still among the current ones, the new value is the newest competing value
//!   by someone else (the undo withdraws only this actor's contribution), or else the value just
//!   before the change (read at the change's dependencies);
//! - if it was overwritten but the current value is still the one it wrote (an undo of a later
//!   edit put it back), the value before the change;
//! - otherwise someone else changed the key since, and the undo leaves it alone.
//!
//! A change none of whose keys can be reverted any more is skipped. Undoing a create deletes.

use std::collections::HashSet;

use automerge::{ChangeHash, ObjId, ROOT, ReadDoc, ScalarValue};
use shikong_model::LayerSchema;

use crate::codec::{self, Puts};
use crate::doc::{EntityDoc, normalized};
use crate::error::Result;
use crate::message::{self, Op};
use crate::{Actor, EditMeta};

/// What undo needs to know of one of the actor's changes.
struct Mine {
    hash: ChangeHash,
    seq: u64,
    deps: Vec<ChangeHash>,
    op: Option<String>,
    undoes: Option<ChangeHash>,
}

impl EntityDoc {
    /// Undoes the newest change by `actor` that is not an undo, not undone yet, and still has an
    /// effect (see the module docs). `None` when there is nothing to undo.
    pub fn undo(&mut self, _schema: &LayerSchema, actor: Actor, meta: &EditMeta) -> Result<Option<Vec<u8>>> {
        let mut mine: Vec<Mine> = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .filter(|m| actor.is(&m.actor))
            .map(|m| {
                let origin = message::parse(m.message.as_deref(), m.timestamp);
                Mine { hash: m.hash, seq: m.seq, deps: m.deps, op: origin.op, undoes: origin.undoes }
            })
            .collect();
        mine.sort_by_key(|m| std::cmp::Reverse(m.seq));
        let undone: HashSet<ChangeHash> = mine.iter().filter_map(|m| m.undoes).collect();
        for m in &mine {
            let puts = match m.op.as_deref() {
                None | Some("undo") => continue,
                _ if undone.contains(&m.hash) => continue,
                Some("create") => self.changed(Puts::from([(codec::DELETED.to_owned(), true.into())]))?,
                Some(_) => self.revert(actor, m)?,
            };
            if !puts.is_empty() {
                return self.device_commit(actor, meta, Op::Undo, Some(m.hash), &puts);
            }
        }
        Ok(None)
    }

    fn revert(&self, actor: Actor, m: &Mine) -> Result<Puts> {
        let ours = |op: &ObjId, counter: u64| matches!(op, ObjId::Id(c, a, _) if *c == counter && actor.is(a));
        let mut puts = Puts::new();
        for op in self.change_ops(&m.hash)? {
            // Deletions only remove competing values (a resolution): nothing of ours to take back.
            let Some(value) = op.value.clone().filter(|_| op.key != codec::ID) else { continue };
            let all = self.get_all(&op.key)?;
            let current = normalized(&op.key, all.last().map(|w| &w.value));
            let new = if all.iter().any(|w| ours(&w.op, op.counter)) {
                match all.iter().rev().find(|w| !ours(&w.op, op.counter)) {
                    Some(other) => other.value.clone(),
                    None => self.value_before(&op.key, &m.deps)?,
                }
            } else if current == normalized(&op.key, Some(&value)) {
                self.value_before(&op.key, &m.deps)?
            } else {
                continue;
            };
            let contested = all.iter().any(|w| normalized(&op.key, Some(&w.value)) != current);
            if contested || normalized(&op.key, Some(&new)) != current {
                puts.insert(op.key, new);
            }
        }
        Ok(puts)
    }

    /// The visible value of `key` at `heads` (before a change whose dependencies they are).
    fn value_before(&self, key: &str, heads: &[ChangeHash]) -> Result<ScalarValue> {
        if heads.is_empty() {
            return Ok(normalized(key, None));
        }
        Ok(match self.doc.get_at(ROOT, key, heads)? {
            Some((automerge::Value::Scalar(s), _)) => normalized(key, Some(&s)),
            _ => normalized(key, None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{Edit, EntityDoc, change_hash};
    use shikong_model::Value;

    fn base() -> EntityDoc {
        EntityDoc::base(&schema(), &crate::test_support::feature()).unwrap()
    }

    fn set(doc: &mut EntityDoc, actor: Actor, list: &[(&str, Value)]) -> Vec<u8> {
        doc.edit(&schema(), actor, &zhang(), Edit::SetFields(props(list))).unwrap().unwrap()
    }

    fn depth(doc: &EntityDoc) -> Option<Value> {
        doc.state(&schema()).unwrap().feature.properties.get("深度").cloned()
    }

    fn undo(doc: &mut EntityDoc, actor: Actor) -> Option<Vec<u8>> {
        doc.undo(&schema(), actor, &zhang()).unwrap()
    }

    #[test]
    fn undo_of_a_set_puts_back_the_previous_value() {
        let mut doc = base();
        assert_eq!(undo(&mut doc, A), None, "nothing of A's to undo (the base is nobody's edit)");
        let edit = set(&mut doc, A, &[("深度", Value::Real(2.0)), ("名称", Value::Null)]);
        let change = undo(&mut doc, A).unwrap();
        assert_eq!(depth(&doc), Some(Value::Real(1.5)));
        assert_eq!(doc.state(&schema()).unwrap().feature.properties.get("名称"), Some(&"井盖".into()));
        let origin = doc.origin_of_change(&change_hash(&change).unwrap());
        assert_eq!((origin.op.as_deref(), origin.undoes), (Some("undo"), Some(change_hash(&edit).unwrap())));
        assert_eq!(undo(&mut doc, A), None);
    }

    #[test]
    fn repeated_undo_walks_back() {
        let mut doc = base();
        set(&mut doc, A, &[("深度", Value::Real(2.0))]);
        set(&mut doc, A, &[("深度", Value::Real(3.0))]);
        doc.edit(&schema(), A, &zhang(), Edit::SetGeometry(point(114.4, 30.6))).unwrap().unwrap();
        undo(&mut doc, A).unwrap();
        assert_eq!(doc.state(&schema()).unwrap().feature.geometry, crate::test_support::feature().geometry);
        assert_eq!(depth(&doc), Some(Value::Real(3.0)));
        undo(&mut doc, A).unwrap();
        assert_eq!(depth(&doc), Some(Value::Real(2.0)));
        undo(&mut doc, A).unwrap();
        assert_eq!(depth(&doc), Some(Value::Real(1.5)));
        assert_eq!(undo(&mut doc, A), None);
        assert_eq!(doc.state(&schema()).unwrap().feature, crate::test_support::feature());
    }

    #[test]
    fn undo_of_a_create_deletes() {
        let (mut doc, _) = EntityDoc::create(&schema(), &crate::test_support::feature(), A, &zhang()).unwrap();
        undo(&mut doc, A).unwrap();
        assert!(doc.state(&schema()).unwrap().deleted);
        assert_eq!(undo(&mut doc, A), None);
    }

    #[test]
    fn undo_of_a_delete_restores() {
        let mut doc = base();
        doc.edit(&schema(), A, &zhang(), Edit::Delete).unwrap().unwrap();
        undo(&mut doc, A).unwrap();
        assert!(!doc.state(&schema()).unwrap().deleted);
    }

    #[test]
    fn undo_after_a_merge_only_undoes_the_actors_own_change() {
        let (mut a, mut b) = (base(), base());
        set(&mut a, A, &[("深度", Value::Real(2.0))]);
        let cb = set(&mut b, B, &[("数量", Value::Integer(9))]);
        a.apply_changes(&[cb]).unwrap();
        let later_b = set(&mut b, B, &[("名称", "雨水井".into())]);
        a.apply_changes(&[later_b]).unwrap();
        undo(&mut a, A).unwrap();
        let st = a.state(&schema()).unwrap().feature;
        assert_eq!(st.properties.get("深度"), Some(&Value::Real(1.5)));
        assert_eq!(st.properties.get("数量"), Some(&Value::Integer(9)));
        assert_eq!(st.properties.get("名称"), Some(&"雨水井".into()));
        assert_eq!(undo(&mut a, A), None);
    }

    #[test]
    fn undo_leaves_values_others_wrote_since() {
        let mut a = base();
        set(&mut a, A, &[("深度", Value::Real(2.0))]);
        let mut b = a.clone();
        set(&mut b, B, &[("深度", Value::Real(7.0))]);
        a.apply_changes(&b.changes_by(B)).unwrap();
        assert_eq!(undo(&mut a, A), None, "B overwrote A's only edit");
        assert_eq!(depth(&a), Some(Value::Real(7.0)));
    }

    #[test]
    fn undo_withdraws_a_competing_value() {
        let (mut a, mut b) = (base(), base());
        set(&mut a, A, &[("深度", Value::Real(2.0))]);
        set(&mut b, B, &[("深度", Value::Real(7.0))]);
        a.apply_changes(&b.changes_by(B)).unwrap();
        assert_eq!(a.conflicts(&schema()).unwrap().len(), 1);
        undo(&mut a, A).unwrap();
        assert_eq!(depth(&a), Some(Value::Real(7.0)));
        assert_eq!(a.conflicts(&schema()).unwrap(), vec![]);
        // B, on receiving the undo, agrees.
        b.apply_changes(&a.changes_by(A)).unwrap();
        assert_eq!((depth(&b), b.conflicts(&schema()).unwrap()), (Some(Value::Real(7.0)), vec![]));
    }
}
