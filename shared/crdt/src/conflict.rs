//! Conflict records: what automerge kept but does not show. For each attribute with competing
//! values, the visible winner and the others; for a deletion, the edits that raced it. Who and
//! when come from the messages of the changes that wrote each value: automerge maps an op id
//! (actor, counter) to its change ([`automerge::Automerge::hash_for_opid`]).
//!
//! The records are computed from the document alone, so every replica with the same changes
//! lists the same conflicts in the same order.

use std::collections::HashSet;

use automerge::legacy::{Key, OpType};
use automerge::{ChangeHash, ObjId, ScalarValue};
use shikong_model::{LayerSchema, Value};

use crate::codec::{self, Attribute};
use crate::doc::{EntityDoc, Written, normalized};
use crate::error::{Error, Result};
use crate::message::{self, Origin};
use crate::{Conflict, ConflictKind, ConflictSide, ConflictValueKind};

/// One root op of a change: key, the value put (`None` for a deletion of the key's ops) and
/// the op's Lamport counter.
#[derive(Debug, Clone)]
pub(crate) struct ChangeOp {
    pub key: String,
    pub value: Option<ScalarValue>,
    pub counter: u64,
}

impl EntityDoc {
    /// Open conflicts: per attribute (geometry, code, valid_from, valid_to, fields in column
    /// order, deleted) the competing values with distinct content, then a deletion that raced
    /// edits. Each side says who wrote it and when, from its change's message.
    pub fn conflicts(&self, schema: &LayerSchema) -> Result<Vec<Conflict>> {
        let mut out = Vec::new();
        // The keys holding more than one value, flagged by automerge in one pass over the map
        // (a sync merge lists every merged entity's conflicts, and most have none): any other
        // key has no competing value to look up.
        let contested: HashSet<String> = automerge::ReadDoc::map_range(&self.doc, automerge::ROOT, ..)
            .filter(|item| item.conflict)
            .map(|item| item.key.into_owned())
            .collect();
        for a in Attribute::all(schema) {
            let key = a.key()?;
            if !contested.contains(&key) {
                continue;
            }
            let all = self.get_all(&key)?;
            let Some(winner) = all.last() else { continue };
            let shown = normalized(&key, Some(&winner.value));
            let others: Vec<&Written> =
                all.iter().rev().skip(1).filter(|w| normalized(&key, Some(&w.value)) != shown).collect();
            if others.is_empty() {
                continue;
            }
            out.push(Conflict {
                kind: ConflictKind::Field,
                attribute: a.name(),
                winner: self.side(a, winner)?,
                others: others.into_iter().map(|w| self.side(a, w)).collect::<Result<_>>()?,
            });
        }
        let edits = self.concurrent_edits()?;
        // The winning `del` is looked up only when edits raced it.
        let deletion = if edits.is_empty() { None } else { self.get_all(codec::DELETED)?.pop() };
        if let Some(deletion) = deletion {
            let side = |value: bool, origin: Origin| ConflictSide {
                value: ConflictValueKind::Deleted(value),
                user: origin.user,
                device: origin.device,
                time: origin.time,
            };
            out.push(Conflict {
                kind: ConflictKind::DeletedWhileEdited,
                attribute: "deleted".into(),
                winner: side(true, self.origin_of_op(&deletion.op)),
                others: edits.iter().map(|h| side(false, self.origin_of_change(h))).collect(),
            });
        }
        Ok(out)
    }

    /// The value the competing writes of `attribute` started from: what each competing change
    /// saw (the attribute at its dependencies), when they all saw the same single value
    /// ([`ConflictValueKind::Absent`] when it was empty). `None` when unknown: the sides saw
    /// different values, or the attribute is not contested. Never for `deleted`.
    pub fn conflict_base(&self, schema: &LayerSchema, attribute: &str) -> Result<Option<ConflictValueKind>> {
        let a = Attribute::parse(schema, attribute)?;
        if matches!(a, Attribute::Deleted) {
            return Ok(None);
        }
        let key = a.key()?;
        let all = self.get_all(&key)?;
        if all.len() < 2 {
            return Ok(None);
        }
        let mut base: Option<Option<Written>> = None;
        for w in &all {
            let Some(meta) = self.doc.hash_for_opid(&w.op).and_then(|h| self.doc.get_change_meta_by_hash(&h)) else {
                return Ok(None);
            };
            let seen = automerge::ReadDoc::get_all_at(&self.doc, automerge::ROOT, key.as_str(), &meta.deps)?;
            let value = match seen.as_slice() {
                [] => None,
                [(automerge::Value::Scalar(s), op)] => Some(Written { value: s.clone().into_owned(), op: op.clone() }),
                _ => return Ok(None),
            };
            let norm = |v: &Option<Written>| normalized(&key, v.as_ref().map(|w| &w.value));
            match &base {
                None => base = Some(value),
                Some(b) if norm(b) == norm(&value) => {}
                Some(_) => return Ok(None),
            }
        }
        Ok(match base.flatten() {
            Some(w) => Some(self.side(a, &w)?.value),
            None => Some(ConflictValueKind::Absent),
        })
    }

    fn side(&self, a: Attribute<'_>, w: &Written) -> Result<ConflictSide> {
        let value = match a {
            Attribute::Geometry => ConflictValueKind::Geometry(codec::decode_geometry(&w.value)?),
            Attribute::Deleted => ConflictValueKind::Deleted(codec::decode_deleted(&w.value)?),
            Attribute::Code if matches!(w.value, ScalarValue::Null) => ConflictValueKind::Absent,
            Attribute::Code => ConflictValueKind::Value(Value::Text(codec::decode_code(&w.value)?)),
            Attribute::ValidFrom | Attribute::ValidTo => match codec::decode_time(&a.key()?, &w.value)? {
                Some(t) => ConflictValueKind::Value(Value::DateTime(t)),
                None => ConflictValueKind::Absent,
            },
            Attribute::Field(f) => match codec::decode_value(f, &w.value)? {
                Value::Null => ConflictValueKind::Absent,
                v => ConflictValueKind::Value(v),
            },
        };
        let origin = self.origin_of_op(&w.op);
        Ok(ConflictSide { value, user: origin.user, device: origin.device, time: origin.time })
    }

    /// Who wrote the op `op`: the message of the change holding it.
    pub(crate) fn origin_of_op(&self, op: &ObjId) -> Origin {
        self.doc.hash_for_opid(op).map(|h| self.origin_of_change(&h)).unwrap_or_default()
    }

    pub(crate) fn origin_of_change(&self, h: &ChangeHash) -> Origin {
        self.doc
            .get_change_meta_by_hash(h)
            .map(|m| message::parse(m.message.as_deref(), m.timestamp))
            .unwrap_or_default()
    }

    /// The changes that edited the entity (put any key but `del`) concurrently with the change
    /// holding the winning `del = true`: neither its ancestors nor its descendants. Ordered by
    /// change time, then hash. Empty when the entity is not deleted.
    pub(crate) fn concurrent_edits(&self) -> Result<Vec<ChangeHash>> {
        let Some(winner) = self.get_all(codec::DELETED)?.pop() else { return Ok(Vec::new()) };
        if normalized(codec::DELETED, Some(&winner.value)) != ScalarValue::Boolean(true) {
            return Ok(Vec::new());
        }
        let Some(deletion) = self.doc.hash_for_opid(&winner.op) else { return Ok(Vec::new()) };
        // Everything that is not the deletion or one of its ancestors …
        let later: Vec<_> = self.doc.get_changes_meta(&[deletion]).into_iter().filter(|m| m.hash != deletion).collect();
        // … minus its descendants (changes made after the deletion was seen).
        let mut descendants = HashSet::new();
        loop {
            let before = descendants.len();
            for m in &later {
                if m.deps.iter().any(|d| *d == deletion || descendants.contains(d)) {
                    descendants.insert(m.hash);
                }
            }
            if descendants.len() == before {
                break;
            }
        }
        let mut edits = Vec::new();
        for m in later.iter().filter(|m| !descendants.contains(&m.hash)) {
            if self.change_ops(&m.hash)?.iter().any(|op| op.key != codec::DELETED) {
                edits.push((m.timestamp, m.hash));
            }
        }
        edits.sort();
        Ok(edits.into_iter().map(|(_, h)| h).collect())
    }

    /// The root puts and deletions of change `h`, in op order.
    pub(crate) fn change_ops(&self, h: &ChangeHash) -> Result<Vec<ChangeOp>> {
        use automerge::ReadDoc;
        let change =
            self.doc.get_change_by_hash(h).ok_or_else(|| Error::Invalid(format!("no change {h} in the document")))?;
        let start = change.start_op().get();
        Ok(change
            .decode()
            .operations
            .into_iter()
            .zip(start..)
            .filter_map(|(op, counter)| match (op.key, op.action) {
                (Key::Map(key), OpType::Put(value)) => {
                    Some(ChangeOp { key: key.to_string(), value: Some(value), counter })
                }
                (Key::Map(key), OpType::Delete) => Some(ChangeOp { key: key.to_string(), value: None, counter }),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;
    use crate::{Actor, ConflictValueKind, Edit, EntityDoc};

    const A: Actor = Actor([1; 16]);
    const B: Actor = Actor([2; 16]);

    #[test]
    fn the_base_of_a_conflict_is_what_both_sides_started_from() {
        let base = EntityDoc::base(&schema(), &feature()).unwrap();
        let start = base.state(&schema()).unwrap().feature.properties.get("名称").cloned().unwrap();
        let (mut a, mut b) = (base.clone(), base);
        let set = |d: &mut EntityDoc, actor, meta, v: &str| {
            d.edit(&schema(), actor, &meta, Edit::SetFields(props(&[("名称", v.into())]))).unwrap().unwrap()
        };
        set(&mut a, A, zhang(), "雨水井");
        set(&mut b, B, li(), "污水井");
        a.merge(&mut b).unwrap();
        assert_eq!(a.conflicts(&schema()).unwrap().len(), 1);
        assert_eq!(a.conflict_base(&schema(), "名称").unwrap(), Some(ConflictValueKind::Value(start)));
        // Not contested: no base to tell.
        assert_eq!(a.conflict_base(&schema(), "geometry").unwrap(), None);
    }
}
