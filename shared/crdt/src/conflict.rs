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
        for a in Attribute::all(schema) {
            let key = a.key()?;
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
        if let (Some(deletion), false) = (self.get_all(codec::DELETED)?.last(), edits.is_empty()) {
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
